package main

import (
	"bytes"
	"debug/elf"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/broken"
	"expserver-go/tests/harness"
)

// asTool makes this test binary behave as the grading tool, for the tests
// that run it as a command (with no private network namespace, the tool is
// started without a hidden subcommand in front of its flags).
const asTool = "GRADE_TEST_AS_TOOL"

// TestMain lets the tests run this test binary as the tool itself — the
// tool starts copies of itself for the upstream and for -class — and
// removes the binaries the tests built once they have all run.
func TestMain(m *testing.M) {
	if code, ok := hidden(os.Args[1:]); ok {
		os.Exit(code)
	}
	if os.Getenv(asTool) == "1" {
		os.Exit(command(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	harness.RemoveBuilds()
	os.Exit(code)
}

var (
	isoOnce sync.Once
	iso     isolation
)

// gradeCommand runs the tool at bin with args, in dir, with env (nil: this
// process's), in a private network namespace when the machine can make
// one — so that the tests run side by side and never wait for the
// machine's course ports — and returns its exit status and output.
func gradeCommand(t *testing.T, bin, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	isoOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		iso = findIsolation(self)
	})
	cmd := iso.command(bin, args)
	cmd.Dir = dir
	cmd.Env = append(env, asTool+"=1")
	if env == nil {
		cmd.Env = append(os.Environ(), asTool+"=1")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s: %v", bin, err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// grade runs this test binary as the tool: `grade -stage N -bin BIN -json …
// -junit … args…`, and reads both reports.
func grade(t *testing.T, tool string, dir string, env []string, stage, bin string, args ...string) (code int, out string, rep report) {
	t.Helper()
	tmp := t.TempDir()
	jsonOut, junitOut := filepath.Join(tmp, "r.json"), filepath.Join(tmp, "r.xml")
	code, out = gradeCommand(t, tool, dir, env, append([]string{"-stage", stage, "-bin", bin, "-json", jsonOut, "-junit", junitOut}, args...)...)
	return code, out, readReports(t, jsonOut, junitOut, out)
}

// readReports reads a JSON report and checks the JUnit one beside it tells
// the same story.
func readReports(t *testing.T, jsonOut, junitOut, out string) report {
	t.Helper()
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatalf("no JSON report: %v\n%s", err, out)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("the JSON report does not parse: %v", err)
	}
	x, err := os.ReadFile(junitOut)
	if err != nil {
		t.Fatalf("no JUnit report: %v\n%s", err, out)
	}
	var suites junitSuites
	if err := xml.Unmarshal(x, &suites); err != nil || len(suites.Suites) != 1 {
		t.Fatalf("the JUnit report does not parse: %v\n%s", err, x)
	}
	s := suites.Suites[0]
	if s.Tests != len(rep.Cases) || s.Failures != rep.Failed || s.Skipped != rep.Skipped+rep.NotRun {
		t.Fatalf("the JUnit report (%d tests, %d failures, %d skipped) does not match the JSON one (%d cases, %d failed, %d skipped, %d not run)\n%s",
			s.Tests, s.Failures, s.Skipped, len(rep.Cases), rep.Failed, rep.Skipped, rep.NotRun, x)
	}
	return rep
}

func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func buildStage(t *testing.T, n int) string {
	t.Helper()
	bin, err := harness.BuildStage(n)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// crashingScript prints a line and dies of SIGSEGV, as a C server with a
// bad pointer in its start-up does.
const crashingScript = "echo 'xps: listening on 8001'\nkill -SEGV $$\n"

func byID(rep report) map[string]caseResult {
	m := map[string]caseResult{}
	for _, c := range rep.Cases {
		m[c.ID] = c
	}
	return m
}

// TestStandaloneBinary builds the tool as `make grader` does, copies it into
// an empty folder and runs it there with nothing but /usr/bin and /bin on
// the PATH — no Go, no repository — against a correct server (exit 0), a
// server that crashes at start (exit 3) and a wrong one (exit 1); each run
// writes both reports.
func TestStandaloneBinary(t *testing.T) {
	t.Parallel()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tool := filepath.Join(empty, "grade")
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", tool, "./tools/grade")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(tool)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the tool is dynamically linked; it must be static")
		}
	}
	f.Close()
	bare := []string{"PATH=/usr/bin:/bin"}
	if _, err := exec.Command("/bin/sh", "-c", "PATH=/usr/bin:/bin command -v go").Output(); err == nil {
		t.Log("go is in /usr/bin or /bin on this machine: the run without Go is not proven here")
	}

	cmd := exec.Command(tool, "-version")
	cmd.Dir, cmd.Env = empty, bare
	v, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(v), "grade ") {
		t.Fatalf("grade -version: %v: %q", err, v)
	}
	if head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		if commit := strings.TrimSpace(string(head)); !strings.Contains(string(v), "commit "+commit) {
			t.Errorf("grade -version = %q, want the commit %s", v, commit)
		}
	}

	stage12, stage10 := buildStage(t, 12), buildStage(t, 10)
	crash := script(t, t.TempDir(), "xps", crashingScript)
	const few = "-case=binds-all,file-on-connect,file-access-restriction"

	code, out, rep := grade(t, tool, empty, bare, "12", stage12, few)
	if code != 0 || rep.Failed != 0 || rep.Passed != 4 || rep.Outcome != "passed" {
		t.Errorf("our stage 12: exit %d, %d passed, %d failed\n%s", code, rep.Passed, rep.Failed, out)
	}
	if rep.Tool.Version == "" || rep.SHA256 != fileSHA256(stage12) || rep.Seed == 0 || !slices.Contains(rep.Flags, few) || rep.Started == "" {
		t.Errorf("the report lacks its provenance: %+v", rep)
	}

	code, out, rep = grade(t, tool, empty, bare, "12", crash, few)
	if code != exitNotStart || rep.Start == nil || rep.Start.How != "crashed" || !strings.Contains(rep.Start.Detail, "SIGSEGV") || !strings.Contains(rep.Start.Log, "listening on 8001") {
		t.Errorf("a server that crashes at start: exit %d, start failure %+v\n%s", code, rep.Start, out)
	}

	code, out, rep = grade(t, tool, empty, bare, "12", stage10, few)
	if code != exitFailed || rep.Failed == 0 || rep.Start != nil {
		t.Errorf("stage 10 graded as stage 12: exit %d, %d failed\n%s", code, rep.Failed, out)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 1 {
		t.Errorf("the tool left files in its working folder: %v", entries)
	}
}

// TestGradeBrokenServer grades a stage 12 server that serves files from
// outside its root: exactly the confinement case fails, with its hint and
// its points lost, and the tool exits 1.
func TestGradeBrokenServer(t *testing.T) {
	t.Parallel()
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
	code, out, rep := grade(t, self(t), "", nil, "12", bin)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	var failed []string
	for _, c := range rep.Cases {
		if c.Status == statusFail {
			failed = append(failed, c.ID)
			if !strings.Contains(out, c.ID) || c.Hint == "" || !strings.Contains(out, "hint: "+c.Hint) || c.Points != 0 {
				t.Errorf("the failing case %s is not reported with its hint and no points", c.ID)
			}
		}
	}
	slices.Sort(failed)
	if diff := cmp.Diff(b.Failing, failed); diff != "" {
		t.Errorf("failed cases (-want +got):\n%s\n%s", diff, out)
	}
	official := rep.Groups[groupOfficial]
	if official == nil || rep.Groups[groupExtra] == nil || official.Points+rep.Groups[groupExtra].Points != rep.Points || rep.Points >= rep.MaxPoints {
		t.Errorf("group totals do not add up: %+v %+v, total %d/%d", official, rep.Groups[groupExtra], rep.Points, rep.MaxPoints)
	}
}

// TestSameSeedSameInputs runs the same cases twice with one seed and once
// with another: each case draws the same inputs from the same seed, and
// other inputs from another.
func TestSameSeedSameInputs(t *testing.T) {
	t.Parallel()
	bin := buildStage(t, 12)
	const some = "-case=single-client-io,large-file"
	inputs := func(seed string) map[string]string {
		code, out, rep := grade(t, self(t), "", nil, "12", bin, some, "-seed", seed)
		if code != 0 || !strings.Contains(out, "seed "+seed) {
			t.Fatalf("-seed %s: exit %d\n%s", seed, code, out)
		}
		m := map[string]string{}
		for _, c := range rep.Cases[1:] {
			if c.Inputs == "" {
				t.Fatalf("%s drew no random inputs", c.ID)
			}
			m[c.ID] = c.Inputs
		}
		return m
	}
	first, again, other := inputs("42"), inputs("42"), inputs("43")
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("the same seed gave other inputs (-first +second):\n%s", diff)
	}
	for id, in := range first {
		if other[id] == in {
			t.Errorf("%s drew the same inputs from seeds 42 and 43", id)
		}
	}
}

// fakeServer builds testdata/fakeserver under the name that picks its
// fault.
func fakeServer(t *testing.T, mode string) string {
	t.Helper()
	bin, err := harness.Build("tools/grade/testdata/fakeserver")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), mode)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCrashMidRun grades servers that crash in reset-mid-reply: the case
// fails as a crash, the server is restarted for the next case, and when it
// does not come back the next case is reported as not run because of the
// crash — not as a second failure.
func TestCrashMidRun(t *testing.T) {
	t.Parallel()
	const some = "-case=binds-all,reset-mid-reply,connect-churn"
	code, out, rep := grade(t, self(t), "", nil, "6", fakeServer(t, "crashes-once"), some)
	cs := byID(rep)
	if code != exitFailed || cs["reset-mid-reply"].Status != statusFail || cs["reset-mid-reply"].Crash == "" || cs["connect-churn"].Status != statusPass {
		t.Errorf("a server that crashes once: exit %d; want reset-mid-reply to fail as a crash and connect-churn to pass on a restarted server\n%s", code, out)
	}

	code, out, rep = grade(t, self(t), "", nil, "6", fakeServer(t, "crashes-for-good"), some)
	cs = byID(rep)
	churn := cs["connect-churn"]
	if code != exitFailed || rep.Failed != 1 || rep.NotRun != 1 || churn.Status != statusNotRun || churn.CrashedBy != "reset-mid-reply" {
		t.Errorf("a server that does not come back: exit %d, %d failed, %d not run, connect-churn %+v\n%s", code, rep.Failed, rep.NotRun, churn, out)
	}
	if !strings.Contains(out, "not run because the server died after reset-mid-reply: connect-churn") {
		t.Errorf("the output does not name the crash behind the case not run:\n%s", out)
	}
}

// TestHungCase grades a server that stops answering large messages: the
// case fails when its limit passes, not after the check's own long
// timeouts, and the next case gets a working server.
func TestHungCase(t *testing.T) {
	t.Parallel()
	start := time.Now()
	code, out, rep := grade(t, self(t), "", nil, "6", fakeServer(t, "stops-answering"), "-case=large-message,connect-churn", "-case-timeout=2s")
	cs := byID(rep)
	hung := cs["large-message"]
	if code != exitFailed || hung.Status != statusFail || !hung.TimedOut || hung.Seconds > 4 || cs["connect-churn"].Status != statusPass {
		t.Errorf("exit %d; large-message %+v; connect-churn %s\n%s", code, hung, cs["connect-churn"].Status, out)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("grading a server that hangs in one 2 s case took %v", d)
	}

	// The whole run's time limit cuts the hung case short and leaves the
	// next one not run, with the reason.
	code, out, rep = grade(t, self(t), "", nil, "6", fakeServer(t, "stops-answering"), "-case=large-message,connect-churn", "-timeout=2s")
	cs = byID(rep)
	if code != exitFailed || !cs["large-message"].TimedOut || cs["large-message"].Seconds > 4 || cs["connect-churn"].Status != statusNotRun || cs["connect-churn"].Reason == "" {
		t.Errorf("-timeout 2s: exit %d; large-message %+v; connect-churn %+v\n%s", code, cs["large-message"], cs["connect-churn"], out)
	}
}

// TestClass grades a folder of five submissions — correct, wrong, crashing
// at start, hanging at start, not executable — side by side, and finds
// each in the summaries with what happened to it.
func TestClass(t *testing.T) {
	t.Parallel()
	class, out := t.TempDir(), filepath.Join(t.TempDir(), "reports")
	copyBin := func(student, src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(class, student), 0o755)
		if err := os.WriteFile(filepath.Join(class, student, "xps"), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyBin("alice-correct", buildStage(t, 12))
	copyBin("bob-wrong", buildStage(t, 10))
	for student, body := range map[string]string{"carol-crashes": crashingScript, "dave-hangs": "exec sleep 600\n"} {
		os.MkdirAll(filepath.Join(class, student), 0o755)
		script(t, filepath.Join(class, student), "server", body)
	}
	os.MkdirAll(filepath.Join(class, "erin-not-executable"), 0o755)
	os.WriteFile(filepath.Join(class, "erin-not-executable", "xps"), []byte("\x7fELF"), 0o644)

	start := time.Now()
	code, output := gradeCommand(t, self(t), "", nil, "-stage", "12", "-class", class, "-out", out, "-case", "binds-all,file-on-connect", "-seed", "7")
	elapsed := time.Since(start)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, output)
	}
	want := map[string]string{
		"alice-correct":       "passed",
		"bob-wrong":           "failed",
		"carol-crashes":       "crashed",
		"dave-hangs":          "hung",
		"erin-not-executable": "could not be run",
	}
	var summary struct {
		Seed        uint64
		Submissions []struct {
			Student string
			Outcome string
			Start   *startFailure `json:"start_failure"`
			Cases   map[string]struct{ Status string }
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatalf("no summary.json: %v\n%s", err, output)
	}
	if err := json.Unmarshal(b, &summary); err != nil || summary.Seed != 7 || len(summary.Submissions) != len(want) {
		t.Fatalf("summary.json: %v, seed %d, %d submissions\n%s", err, summary.Seed, len(summary.Submissions), b)
	}
	for _, s := range summary.Submissions {
		got := s.Outcome
		if s.Start != nil {
			got = s.Start.How
		}
		if got != want[s.Student] || len(s.Cases) != 3 {
			t.Errorf("%s: %s with %d cases, want %s with 3", s.Student, got, len(s.Cases), want[s.Student])
		}
		readReports(t, filepath.Join(out, s.Student+".json"), filepath.Join(out, s.Student+".xml"), output)
		if !strings.Contains(output, s.Student) {
			t.Errorf("the table does not name %s", s.Student)
		}
	}
	f, err := os.Open(filepath.Join(out, "summary.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != len(want)+1 || !slices.Contains(rows[0], "file-on-connect") {
		t.Errorf("summary.csv: %v, %d rows: %q", err, len(rows), rows)
	}
	t.Logf("five submissions graded in %v with isolation %q", elapsed, iso.name)
}

// TestClassBuild grades a class whose submissions are built first: a build
// that fails is reported as such, with its output.
func TestClassBuild(t *testing.T) {
	t.Parallel()
	class, out := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(class, "frank"), 0o755)
	code, output := gradeCommand(t, self(t), "", nil, "-stage", "6", "-class", class, "-out", out, "-build", "echo 'main.c:3: error: expected ;' >&2; exit 1")
	if code != exitFailed {
		t.Fatalf("exit %d\n%s", code, output)
	}
	rep := readReports(t, filepath.Join(out, "frank.json"), filepath.Join(out, "frank.xml"), output)
	if rep.Start == nil || rep.Start.How != "did not build" || !strings.Contains(rep.Start.Log, "expected ;") {
		t.Errorf("a failed build: %+v\n%s", rep.Start, output)
	}
}

// TestClassOneAtATime grades a class where no network namespace can be
// made: one submission at a time, in the machine's own network, and still
// a report for each. (The two submissions never reach the ports, so the
// test does not wait for them.)
func TestClassOneAtATime(t *testing.T) {
	t.Setenv(asTool, "1") // the children are this test binary, run as the tool
	saved := isolations
	isolations = func() []isolation { return nil }
	defer func() { isolations = saved }()
	class, out := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(class, "gina"), 0o755)
	os.WriteFile(filepath.Join(class, "gina", "xps"), []byte("\x7fELF"), 0o644)
	os.MkdirAll(filepath.Join(class, "hank"), 0o755)
	o, err := parseFlags([]string{"-stage", "6", "-class", class, "-out", out}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var output bytes.Buffer
	code, err := runClass(o, &output)
	if err != nil || code != exitFailed || !strings.Contains(output.String(), "isolation: none (one submission at a time); 1 at a time") {
		t.Fatalf("exit %d, %v\n%s", code, err, output.String())
	}
	for student, how := range map[string]string{"gina": "could not be run", "hank": "could not be run"} {
		rep := readReports(t, filepath.Join(out, student+".json"), filepath.Join(out, student+".xml"), output.String())
		if rep.Start == nil || rep.Start.How != how {
			t.Errorf("%s: %+v", student, rep.Start)
		}
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"-stage", "5", "-bin", "x"},
		{"-stage", "18", "-bin", "x"},
		{"-stage", "12"},
		{"-stage", "12", "-bin", "x", "-upstream", "auto"},
		{"-stage", "12", "-bin", "x", "extra"},
		{"-stage", "12", "-bin", "x", "-class", "d"},
		{"-stage", "12", "-bin", "x", "-jobs", "2"},
		{"-stage", "12", "-class", "d", "-json", "r.json"},
		{"-stage", "12", "-bin", "x", "-seed", "0"},
		{"-stage", "12", "-bin", "x", "-seed", "abc"},
		{"-stage", "12", "-bin", "x", "-case", "no-such-case"},
		{"-stage", "12", "-bin", "x", "-points", "/nonexistent.json"},
	} {
		if code := command(args, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
			t.Errorf("grade %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code := command([]string{"-stage", "12", "-bin", "/nonexistent"}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Errorf("a binary that does not exist: exit %d, want %d", code, exitUsage)
	}
	var out bytes.Buffer
	if code := command([]string{"-version"}, &out, &bytes.Buffer{}); code != 0 || !strings.HasPrefix(out.String(), "grade ") {
		t.Errorf("grade -version: exit %d, %q", code, out.String())
	}
	o, err := parseFlags([]string{"-stage", "12", "-bin", "bin/stage-12", "-case", "file,idle", "-long", "-seed", "9"}, &bytes.Buffer{})
	if err != nil || o.stage != 12 || o.match != "file,idle" || !o.long || o.seed != 9 {
		t.Fatalf("parseFlags: %+v, %v", o, err)
	}
	for _, m := range cases(12, "file,idle") {
		if !strings.Contains(m.ID+m.Title, "file") && !strings.Contains(m.ID+m.Title, "idle") {
			t.Errorf("-case file,idle selected %s", m.ID)
		}
	}
	for _, m := range cases(7, "") {
		if m.Lesson {
			t.Errorf("the lesson %s is graded", m.ID)
		}
	}
}
