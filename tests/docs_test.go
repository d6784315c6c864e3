package tests

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"expserver-go/tests/harness"
	"expserver-go/tests/milestone"
)

var update = flag.Bool("update", false, "rewrite the generated blocks of the stage READMEs")

const (
	milestonesBegin = "<!-- milestones:begin -->"
	milestonesEnd   = "<!-- milestones:end -->"
)

// milestonesBlock is the Milestone section's table for stage n, generated
// from the milestone table itself so the README cannot drift from what the
// suite checks.
func milestonesBlock(n int) string {
	var b strings.Builder
	b.WriteString(milestonesBegin + "\n")
	b.WriteString("| Check | What it checks | Official grader |\n|---|---|---|\n")
	for _, m := range milestone.ForStage(n) {
		grader := ""
		switch {
		case m.Grader:
			grader = "yes"
		case m.Lesson:
			grader = "lesson (not graded)"
		}
		fresh := ""
		if m.Fresh {
			fresh = " (fresh server)"
		}
		fmt.Fprintf(&b, "| `%s` | %s%s | %s |\n", m.ID, m.Title, fresh, grader)
	}
	fmt.Fprintf(&b, "\nRun them against this stage with `make stage-%d test`, or against any binary with\n`make grade STAGE=%d BIN=path/to/binary`.\n", n, n)
	b.WriteString(milestonesEnd)
	return b.String()
}

// TestMilestoneDocs checks that every stage README's milestone block is the
// one generated from the table; `go test ./tests -run TestMilestoneDocs
// -update` rewrites them.
func TestMilestoneDocs(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for n := milestone.FirstStage; n <= milestone.LastStage; n++ {
		dir, err := harness.StageDir(root, n)
		if err != nil {
			continue
		}
		path := filepath.Join(root, dir, "README.md")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		text := string(b)
		i, j := strings.Index(text, milestonesBegin), strings.Index(text, milestonesEnd)
		if i < 0 || j < i {
			t.Errorf("%s/README.md: no %s … %s block in its Milestone section", dir, milestonesBegin, milestonesEnd)
			continue
		}
		want := text[:i] + milestonesBlock(n) + text[j+len(milestonesEnd):]
		if want == text {
			continue
		}
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s/README.md: the milestone block is stale; run go test ./tests -run TestMilestoneDocs -update", dir)
	}
}
