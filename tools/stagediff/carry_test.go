package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/harness"
	"expserver-go/tools/internal/stagefs"
)

// mapTree is a committed tree held in memory: paths from the root.
type mapTree map[string]string

func (m mapTree) files(s stagefs.Stage) ([]string, error) {
	var files []string
	for name := range m {
		if rel, ok := strings.CutPrefix(name, s.Dir()+"/"); ok && !stagefs.AboutStage(rel) {
			files = append(files, rel)
		}
	}
	slices.Sort(files)
	return files, nil
}

func (m mapTree) read(s stagefs.Stage, p string) ([]byte, error) {
	data, ok := m[s.Dir()+"/"+p]
	if !ok {
		return nil, os.ErrNotExist
	}
	return []byte(data), nil
}

// Stage 7 of the carry repository before and after its fix: check and
// serve change, fixed is added (with the strings import it needs), and
// obsolete (the only user of os) is removed.
const (
	session7 = `package main

import (
	"fmt"
	"os"
)

// check validates.
func check() int { return 1 }

// serve serves.
func serve() {
	fmt.Println("serve")
}

func obsolete() { os.Exit(1) }

func listing() { fmt.Println("list") }
`
	session7Fixed = `package main

import (
	"fmt"
	"strings"
)

// check validates, fixed.
func check() int { return 2 }

// serve serves.
func serve() {
	fmt.Println(fixed("serve"))
}

// fixed is the helper the fix adds.
func fixed(s string) string { return strings.ToUpper(s) }

func listing() { fmt.Println("list") }
`
	// Stage 8's lesson changed check and added more.
	session8 = `package main

import (
	"fmt"
	"os"
)

// check validates more.
func check() int { return 3 }

// serve serves.
func serve() {
	fmt.Println("serve")
}

func obsolete() { os.Exit(1) }

func listing() { fmt.Println("list") }

func more() {}
`
	session8Carried = `package main

import (
	"fmt"
	"strings"
)

// check validates more.
func check() int { return 3 }

// serve serves.
func serve() {
	fmt.Println(fixed("serve"))
}

// fixed is the helper the fix adds.
func fixed(s string) string { return strings.ToUpper(s) }

func listing() { fmt.Println("list") }

func more() {}
`
	// Stage 9 moved check to its own file and still uses os elsewhere.
	session9 = `package main

import (
	"fmt"
	"os"
)

// serve serves.
func serve() {
	fmt.Println("serve")
}

func obsolete() { os.Exit(1) }

func listing() { fmt.Println("list") }

func quit() { os.Exit(0) }
`
	session9Carried = `package main

import (
	"fmt"
	"os"
	"strings"
)

// serve serves.
func serve() {
	fmt.Println(fixed("serve"))
}

// fixed is the helper the fix adds.
func fixed(s string) string { return strings.ToUpper(s) }

func listing() { fmt.Println("list") }

func quit() { os.Exit(0) }
`
	check9        = "package main\n\n// check validates.\nfunc check() int { return 1 }\n"
	check9Carried = "package main\n\n// check validates, fixed.\nfunc check() int { return 2 }\n"
)

// carryRepo writes a repository with stages 6 to 9 as committed, then
// makes the fix to stage 7's working tree. It returns the root and the
// committed tree.
func carryRepo(t *testing.T) (string, mapTree) {
	t.Helper()
	committed := mapTree{
		"go.mod":                              "module expserver-go\n",
		"stages/06-listener/session.go":       session7,
		"stages/06-listener/data.txt":         "v1\n",
		"stages/07-core-loop/session.go":      session7,
		"stages/07-core-loop/data.txt":        "v1\n",
		"stages/07-core-loop/README.md":       "# Stage 7\n",
		"stages/08-nonblocking/session.go":    session8,
		"stages/08-nonblocking/data.txt":      "v1\n",
		"stages/09-edge-triggered/session.go": session9,
		"stages/09-edge-triggered/check.go":   check9,
		"stages/09-edge-triggered/data.txt":   "v9\n",
	}
	root := t.TempDir()
	if err := harness.WriteTree(root, committed); err != nil {
		t.Fatal(err)
	}
	if err := harness.WriteTree(root, map[string]string{
		"stages/07-core-loop/session.go":    session7Fixed,
		"stages/07-core-loop/data.txt":      "v2\n",
		"stages/07-core-loop/README.md":     "# Stage 7, reworded\n",
		"stages/07-core-loop/extra_test.go": "package main\n",
	}); err != nil {
		t.Fatal(err)
	}
	return root, committed
}

const carryReport = `stages/07-core-loop/extra_test.go is new; new files are not carried, copy it where later stages need it
stages/08-nonblocking/data.txt: carried M data.txt
stages/08-nonblocking/session.go: cannot carry ~ session.go check: it differs from what stage 7 had before the edit; edit it by hand
stages/08-nonblocking/session.go: carried ~ session.go serve
stages/08-nonblocking/session.go: carried + session.go fixed
stages/08-nonblocking/session.go: carried - session.go obsolete
stages/09-edge-triggered/data.txt: cannot carry M data.txt: it differs from what stage 7 had before the edit; edit it by hand
stages/09-edge-triggered/check.go: carried ~ session.go check
stages/09-edge-triggered/session.go: carried ~ session.go serve
stages/09-edge-triggered/session.go: carried + session.go fixed
stages/09-edge-triggered/session.go: carried - session.go obsolete
stagediff: carried 8 edits from stages/07-core-loop into 4 files; 2 to make by hand
stagediff: once the first of those stages is edited by hand, -carry from it takes the edit on to the stages after it
`

func readTree(t *testing.T, root string, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		got[name] = string(data)
	}
	return got
}

var carriedFiles = []string{
	"stages/06-listener/session.go", "stages/06-listener/data.txt",
	"stages/08-nonblocking/session.go", "stages/08-nonblocking/data.txt",
	"stages/09-edge-triggered/session.go", "stages/09-edge-triggered/check.go", "stages/09-edge-triggered/data.txt",
}

func TestCarry(t *testing.T) {
	root, committed := carryRepo(t)
	status, out, errOut := runWithBase(root, committed, "-carry", "7")
	if status != 1 || errOut != "" {
		t.Errorf("-carry 7: status %d, stderr %q; want 1 (two edits by hand) and no error", status, errOut)
	}
	if diff := cmp.Diff(carryReport, out); diff != "" {
		t.Errorf("-carry 7 report (-want +got):\n%s", diff)
	}
	want := map[string]string{
		// Earlier stages are never touched.
		"stages/06-listener/session.go":       session7,
		"stages/06-listener/data.txt":         "v1\n",
		"stages/08-nonblocking/session.go":    session8Carried,
		"stages/08-nonblocking/data.txt":      "v2\n",
		"stages/09-edge-triggered/session.go": session9Carried,
		"stages/09-edge-triggered/check.go":   check9Carried,
		"stages/09-edge-triggered/data.txt":   "v9\n",
	}
	if diff := cmp.Diff(want, readTree(t, root, carriedFiles...)); diff != "" {
		t.Errorf("tree after -carry 7 (-want +got):\n%s", diff)
	}

	// Carrying again finds everything carried; only the edits by hand remain.
	status, out, _ = runWithBase(root, committed, "-carry", "7")
	wantAgain := "stages/07-core-loop/extra_test.go is new; new files are not carried, copy it where later stages need it\n" +
		"stages/08-nonblocking/session.go: cannot carry ~ session.go check: it differs from what stage 7 had before the edit; edit it by hand\n" +
		"stages/09-edge-triggered/data.txt: cannot carry M data.txt: it differs from what stage 7 had before the edit; edit it by hand\n" +
		"stagediff: carried 0 edits from stages/07-core-loop into 0 files; 2 to make by hand\n" +
		"stagediff: once the first of those stages is edited by hand, -carry from it takes the edit on to the stages after it\n"
	if status != 1 || out != wantAgain {
		t.Errorf("second -carry 7: status %d, report (-want +got):\n%s", status, cmp.Diff(wantAgain, out))
	}
}

func TestCarryDryRun(t *testing.T) {
	root, committed := carryRepo(t)
	before := readTree(t, root, carriedFiles...)
	status, out, _ := runWithBase(root, committed, "-carry", "-n", "7")
	want := strings.ReplaceAll(carryReport, ": carried ", ": would carry ")
	want = strings.Replace(want, "stagediff: carried 8", "stagediff: would carry 8", 1)
	if status != 1 || out != want {
		t.Errorf("-carry -n 7: status %d, report (-want +got):\n%s", status, cmp.Diff(want, out))
	}
	if diff := cmp.Diff(before, readTree(t, root, carriedFiles...)); diff != "" {
		t.Errorf("-carry -n wrote files (-before +after):\n%s", diff)
	}
}

func TestCarryGroupsAndNothing(t *testing.T) {
	group := "package main\n\n// Limits.\nconst (\n\tmaxA = 1\n\tmaxB = 2\n)\n"
	committed := mapTree{
		"go.mod":                           "module expserver-go\n",
		"stages/07-core-loop/limits.go":    group,
		"stages/08-nonblocking/limits.go":  group,
		"stages/09-edge-triggered/data.go": "package main\n",
		"stages/10-pipe/data.go":           "package main\n",
	}
	root := t.TempDir()
	if err := harness.WriteTree(root, committed); err != nil {
		t.Fatal(err)
	}

	// Nothing edited: nothing to carry, and that is not a failure.
	status, out, _ := runWithBase(root, committed, "-carry", "7")
	if want := "stagediff: stages/07-core-loop has no edits to its files against the base; nothing to carry\n"; status != 0 || out != want {
		t.Errorf("-carry 7 with no edits: status %d, stdout %q; want 0, %q", status, out, want)
	}

	// One constant of a group changes and one is added: the group is
	// replaced whole, with its alignment.
	fixed := "package main\n\n// Limits.\nconst (\n\tmaxA    = 1\n\tmaxB    = 3\n\tmaxLong = 4\n)\n"
	if err := harness.WriteTree(root, map[string]string{"stages/07-core-loop/limits.go": fixed}); err != nil {
		t.Fatal(err)
	}
	status, out, _ = runWithBase(root, committed, "-carry", "7")
	want := "stages/08-nonblocking/limits.go: carried ~ limits.go maxB, + limits.go maxLong\n" +
		"stages/09-edge-triggered to 10-pipe: skipped ~ limits.go maxB, + limits.go maxLong: no such declaration\n" +
		"stagediff: carried 1 edit from stages/07-core-loop into 1 file; 0 to make by hand\n"
	if status != 0 || out != want {
		t.Errorf("-carry 7: status %d, report (-want +got):\n%s", status, cmp.Diff(want, out))
	}
	if got := readTree(t, root, "stages/08-nonblocking/limits.go")["stages/08-nonblocking/limits.go"]; got != fixed {
		t.Errorf("stage 8 limits.go = %q, want %q", got, fixed)
	}
}

func TestCarryLastStage(t *testing.T) {
	root, committed := carryRepo(t)
	status, out, _ := runWithBase(root, committed, "-carry", "9")
	if want := "stagediff: stages/09-edge-triggered has no edits to its files against the base; nothing to carry\n"; status != 0 || out != want {
		t.Errorf("-carry 9: status %d, stdout %q; want 0, %q", status, out, want)
	}
}

// TestCarryFromGit runs -carry against a real git repository, as the
// command line does, so the reading of the base revision is covered too.
func TestCarryFromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	root, _ := carryRepo(t)
	// Commit the stages as they were before the fix.
	committed := readTree(t, root, "stages/07-core-loop/session.go", "stages/07-core-loop/data.txt", "stages/07-core-loop/extra_test.go")
	if err := os.Remove(filepath.Join(root, "stages/07-core-loop/extra_test.go")); err != nil {
		t.Fatal(err)
	}
	if err := harness.WriteTree(root, map[string]string{
		"stages/07-core-loop/session.go": session7,
		"stages/07-core-loop/data.txt":   "v1\n",
	}); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", "-C", root}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "stages")
	if err := harness.WriteTree(root, committed); err != nil {
		t.Fatal(err)
	}

	var out, errOut strings.Builder
	tl := &tool{root: root, stdout: &out, stderr: &errOut, base: func(rev string) baseTree { return gitTree{root, rev} }}
	if status := tl.run([]string{"-carry", "-base", "HEAD", "7"}); status != 1 || errOut.String() != "" {
		t.Errorf("-carry 7: status %d, stderr %q; want 1 and no error", status, errOut.String())
	}
	if diff := cmp.Diff(carryReport, out.String()); diff != "" {
		t.Errorf("-carry 7 report (-want +got):\n%s", diff)
	}
	got := readTree(t, root, "stages/08-nonblocking/session.go")
	if diff := cmp.Diff(session8Carried, got["stages/08-nonblocking/session.go"]); diff != "" {
		t.Errorf("stage 8 session.go (-want +got):\n%s", diff)
	}
}

// TestCarryOnly carries one declaration and one file out of a stage that
// has other edits under way.
func TestCarryOnly(t *testing.T) {
	root, committed := carryRepo(t)
	status, out, _ := runWithBase(root, committed, "-carry", "-only", "serve,data.txt", "7")
	want := "stages/08-nonblocking/data.txt: carried M data.txt\n" +
		"stages/08-nonblocking/session.go: carried ~ session.go serve\n" +
		"stages/09-edge-triggered/data.txt: cannot carry M data.txt: it differs from what stage 7 had before the edit; edit it by hand\n" +
		"stages/09-edge-triggered/session.go: carried ~ session.go serve\n" +
		"stagediff: carried 3 edits from stages/07-core-loop into 3 files; 1 to make by hand\n" +
		"stagediff: once the first of those stages is edited by hand, -carry from it takes the edit on to the stages after it\n"
	if status != 1 || out != want {
		t.Errorf("-carry -only: status %d, report (-want +got):\n%s", status, cmp.Diff(want, out))
	}
	// serve now calls fixed, which was not carried: carrying a part of a
	// fix is the caller's choice, and the compiler will say so.
	got := readTree(t, root, "stages/08-nonblocking/session.go")["stages/08-nonblocking/session.go"]
	if !strings.Contains(got, "fmt.Println(fixed(\"serve\"))") || strings.Contains(got, "func fixed") || !strings.Contains(got, "func obsolete") {
		t.Errorf("stage 8 session.go after -only serve:\n%s", got)
	}

	status, out, _ = runWithBase(root, committed, "-carry", "-only", "nothing", "7")
	if want := "stagediff: stages/07-core-loop has no edits to nothing against the base; nothing to carry\n"; status != 0 || out != want {
		t.Errorf("-carry -only nothing: status %d, stdout %q; want 0, %q", status, out, want)
	}
}
