package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/broken"
	"expserver-go/tests/harness"
)

// TestMain removes the binaries the tests built once they have all run.
func TestMain(m *testing.M) {
	defer harness.RemoveBuilds()
	m.Run()
}

// grade runs the tool as `grade -stage N -bin BIN -json … -junit …` would,
// with the repository's upstream so the result does not depend on python3.
func grade(t *testing.T, stage int, bin string) (code int, out string, rep report) {
	t.Helper()
	dir := t.TempDir()
	o := options{stage: stage, bin: bin, upstream: "go",
		jsonOut: filepath.Join(dir, "r.json"), junitOut: filepath.Join(dir, "r.xml")}
	var buf bytes.Buffer
	code, err := run(o, &buf)
	if err != nil {
		t.Fatalf("grade: %v\n%s", err, buf.String())
	}
	b, err := os.ReadFile(o.jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("the JSON report does not parse: %v", err)
	}
	x, err := os.ReadFile(o.junitOut)
	if err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(x, &suites); err != nil || len(suites.Suites) != 1 || suites.Suites[0].Tests != len(rep.Cases) || suites.Suites[0].Failures != rep.Failed {
		t.Fatalf("the JUnit report does not match the JSON one: %v\n%s", err, x)
	}
	return code, buf.String(), rep
}

// TestGradeOurStage grades our own stage 12 binary: every case passes.
func TestGradeOurStage(t *testing.T) {
	bin, err := harness.BuildStage(12)
	if err != nil {
		t.Fatal(err)
	}
	code, out, rep := grade(t, 12, bin)
	if code != 0 || rep.Failed != 0 || rep.Passed != len(cases(12, "")) {
		t.Fatalf("grading stage 12: exit %d, %d passed, %d failed\n%s", code, rep.Passed, rep.Failed, out)
	}
	if !strings.Contains(out, "passed, 0 failed") {
		t.Errorf("the summary line is missing:\n%s", out)
	}
}

// TestGradeBrokenServer grades a stage 12 server that serves files from
// outside its root: exactly the confinement case fails, and the tool says
// so and exits 1.
func TestGradeBrokenServer(t *testing.T) {
	b, ok := broken.Find("serves-outside-the-root")
	if !ok {
		t.Fatal("no broken server serves-outside-the-root")
	}
	bin, cleanup, err := b.Build()
	if cleanup != nil {
		t.Cleanup(cleanup)
	}
	if err != nil {
		t.Fatal(err)
	}
	code, out, rep := grade(t, b.Stage, bin)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	var failed []string
	for _, c := range rep.Cases {
		if !c.Passed {
			failed = append(failed, c.ID)
			if !strings.Contains(out, c.ID) {
				t.Errorf("the output does not name the failing case %s", c.ID)
			}
		}
	}
	slices.Sort(failed)
	if diff := cmp.Diff(b.Failing, failed); diff != "" {
		t.Errorf("failed cases (-want +got):\n%s\n%s", diff, out)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-stage", "5", "-bin", "x"},
		{"-stage", "18", "-bin", "x"},
		{"-stage", "12"},
		{"-stage", "12", "-bin", "x", "-upstream", "auto"},
		{"-stage", "12", "-bin", "x", "extra"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted bad flags", args)
		}
	}
	o, err := parseFlags([]string{"-stage", "12", "-bin", "bin/stage-12", "-case", "file", "-long"}, &bytes.Buffer{})
	if err != nil || o.stage != 12 || o.match != "file" || !o.long {
		t.Fatalf("parseFlags: %+v, %v", o, err)
	}
	for _, m := range cases(12, "file") {
		if !strings.Contains(m.ID, "file") && !strings.Contains(m.Title, "file") {
			t.Errorf("-case file selected %s", m.ID)
		}
	}
	for _, m := range cases(7, "") {
		if m.Lesson {
			t.Errorf("the lesson %s is graded", m.ID)
		}
	}
}
