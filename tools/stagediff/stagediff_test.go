package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/harness"
)

const readme8 = `# Stage 8

## What changed since stage 7

<!-- stagediff:begin -->
old block
<!-- stagediff:end -->

## C → Go notes
`

// fakeRepo writes a repository with stages 6, 7 and 8 and returns its root.
func fakeRepo(t *testing.T) string {
	t.Helper()
	files := map[string]string{
		"go.mod":                               "module expserver-go\n",
		"stages/public/index.html":             "<h1>hi</h1>\n",
		"stages/06-listener/main.go":           "package main\n\nfunc main() {\n\tlisten()\n}\n",
		"stages/06-listener/README.md":         "# Stage 6\n",
		"stages/07-core-loop/main.go":          "package main\n\nfunc main() {\n\tlisten()\n}\n",
		"stages/07-core-loop/README.md":        "# Stage 7\n\n<!-- stagediff:begin -->\n<!-- stagediff:end -->\n",
		"stages/07-core-loop/CHANGES":          "A loop.go\n",
		"stages/07-core-loop/loop.go":          "package main\n\nfunc loop() {}\n",
		"stages/08-nonblocking/main.go":        "package main\n\nfunc main() {\n\tlisten()\n\tloop()\n}\n",
		"stages/08-nonblocking/README.md":      readme8,
		"stages/08-nonblocking/CHANGES":        "M main.go\nD loop.go\nA testdata/empty\n",
		"stages/08-nonblocking/testdata/empty": "",
	}
	root := t.TempDir()
	if err := harness.WriteTree(root, files); err != nil {
		t.Fatal(err)
	}
	return root
}

func runTool(root string, args ...string) (status int, stdout, stderr string) {
	return runWithBase(root, nil, args...)
}

// runWithBase runs the tool with base as the committed tree -carry reads.
func runWithBase(root string, base baseTree, args ...string) (status int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	t := &tool{root: root, stdout: &out, stderr: &errOut, base: func(string) baseTree { return base }}
	status = t.run(args)
	return status, out.String(), errOut.String()
}

const diff8 = `--- stages/07-core-loop/loop.go
+++ /dev/null
@@ -1,3 +0,0 @@
-package main
-
-func loop() {}
--- stages/07-core-loop/main.go
+++ stages/08-nonblocking/main.go
@@ -2,4 +2,5 @@
 
 func main() {
 	listen()
+	loop()
 }
--- /dev/null
+++ stages/08-nonblocking/testdata/empty
`

const stat8 = ` loop.go        | 3 ---
 main.go        | 1 +
 testdata/empty | 0
 3 files changed, 1 insertion(+), 3 deletions(-)
`

func TestDiffAndStat(t *testing.T) {
	root := fakeRepo(t)
	status, out, errOut := runTool(root, "8")
	if status != 0 || errOut != "" {
		t.Fatalf("stagediff 8: status %d, stderr %q", status, errOut)
	}
	if diff := cmp.Diff(diff8, out); diff != "" {
		t.Errorf("stagediff 8 (-want +got):\n%s", diff)
	}
	status, out, errOut = runTool(root, "-stat", "8")
	if status != 0 || errOut != "" {
		t.Fatalf("stagediff -stat 8: status %d, stderr %q", status, errOut)
	}
	if diff := cmp.Diff(stat8, out); diff != "" {
		t.Errorf("stagediff -stat 8 (-want +got):\n%s", diff)
	}
}

func TestWriteThenCheck(t *testing.T) {
	root := fakeRepo(t)
	readme := filepath.Join(root, "stages/08-nonblocking/README.md")

	status, _, errOut := runTool(root, "-check", "8")
	if want := "stagediff: stages/08-nonblocking/CHANGES.diff: missing; run go run ./tools/stagediff -write 8\n" +
		"stagediff: stages/08-nonblocking/README.md: the stagediff block is stale; run go run ./tools/stagediff -write 8\n"; status != 1 || errOut != want {
		t.Errorf("-check 8 before -write: status %d, stderr %q; want 1, %q", status, errOut, want)
	}

	status, out, errOut := runTool(root, "-write", "8")
	if want := "stagediff: wrote stages/08-nonblocking/CHANGES.diff\nstagediff: wrote stages/08-nonblocking/README.md\n"; status != 0 || errOut != "" || out != want {
		t.Fatalf("-write 8: status %d, stdout %q, stderr %q", status, out, errOut)
	}
	got, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Stage 8\n\n## What changed since stage 7\n\n<!-- stagediff:begin -->\n" +
		"```text\n" + stat8 + "```\n\n" +
		"The full diff from stage 7 is in [CHANGES.diff](CHANGES.diff).\n" +
		"<!-- stagediff:end -->\n\n## C → Go notes\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("README after -write (-want +got):\n%s", diff)
	}
	got, err = os.ReadFile(filepath.Join(root, "stages/08-nonblocking/CHANGES.diff"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(diff8, string(got)); diff != "" {
		t.Errorf("CHANGES.diff after -write (-want +got):\n%s", diff)
	}

	if status, out, errOut := runTool(root, "-check", "8"); status != 0 || out != "" || errOut != "" {
		t.Errorf("-check 8 after -write: status %d, stdout %q, stderr %q; want 0 and silence", status, out, errOut)
	}
	if status, out, _ := runTool(root, "-write", "8"); status != 0 || out != "" {
		t.Errorf("second -write 8: status %d, stdout %q; want 0 and no rewrite", status, out)
	}

	// A change to a compared file makes the block stale again.
	if err := os.WriteFile(filepath.Join(root, "stages/08-nonblocking/main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want = "stagediff: stages/08-nonblocking/CHANGES.diff: stale; run go run ./tools/stagediff -write 8\n" +
		"stagediff: stages/08-nonblocking/README.md: the stagediff block is stale; run go run ./tools/stagediff -write 8\n"
	if status, _, errOut := runTool(root, "-check", "8"); status != 1 || errOut != want {
		t.Errorf("-check 8 after an edit: status %d, stderr %q; want 1, %q", status, errOut, want)
	}

	// So does a hand edit of the generated diff, and only the diff is stale.
	if status, _, _ := runTool(root, "-write", "8"); status != 0 {
		t.Fatal("-write 8 failed")
	}
	if err := os.WriteFile(filepath.Join(root, "stages/08-nonblocking/CHANGES.diff"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want = "stagediff: stages/08-nonblocking/CHANGES.diff: stale; run go run ./tools/stagediff -write 8\n"
	if status, _, errOut := runTool(root, "-check", "8"); status != 1 || errOut != want {
		t.Errorf("-check 8 after editing CHANGES.diff: status %d, stderr %q; want 1, %q", status, errOut, want)
	}
}

func TestAllStages(t *testing.T) {
	root := fakeRepo(t)
	// Stage 6 has no markers and is skipped; 7 and 8 are both stale.
	status, _, errOut := runTool(root, "-check")
	want := "stagediff: stages/07-core-loop/CHANGES.diff: missing; run go run ./tools/stagediff -write 7\n" +
		"stagediff: stages/07-core-loop/README.md: the stagediff block is stale; run go run ./tools/stagediff -write 7\n" +
		"stagediff: stages/08-nonblocking/CHANGES.diff: missing; run go run ./tools/stagediff -write 8\n" +
		"stagediff: stages/08-nonblocking/README.md: the stagediff block is stale; run go run ./tools/stagediff -write 8\n"
	if status != 1 || errOut != want {
		t.Errorf("-check: status %d, stderr %q; want 1, %q", status, errOut, want)
	}
	status, out, errOut := runTool(root, "-write")
	if want := "stagediff: wrote stages/07-core-loop/CHANGES.diff\nstagediff: wrote stages/07-core-loop/README.md\n" +
		"stagediff: wrote stages/08-nonblocking/CHANGES.diff\nstagediff: wrote stages/08-nonblocking/README.md\n"; status != 0 || out != want || errOut != "" {
		t.Errorf("-write: status %d, stdout %q, stderr %q; want 0, %q", status, out, errOut, want)
	}
	if status, _, errOut := runTool(root, "-check"); status != 0 || errOut != "" {
		t.Errorf("-check after -write: status %d, stderr %q", status, errOut)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(root string) error
		args       []string
		wantStatus int
		wantErr    string
	}{
		{
			name: "README without markers",
			setup: func(root string) error {
				return os.WriteFile(filepath.Join(root, "stages/08-nonblocking/README.md"), []byte("# Stage 8\n"), 0o644)
			},
			args:       []string{"-write", "8"},
			wantStatus: 1,
			wantErr:    "stagediff: stages/08-nonblocking/README.md: no <!-- stagediff:begin --> and <!-- stagediff:end --> lines; add them, each on its own line, where the generated summary belongs\n",
		},
		{
			name: "markers in the wrong order",
			setup: func(root string) error {
				return os.WriteFile(filepath.Join(root, "stages/08-nonblocking/README.md"), []byte("<!-- stagediff:end -->\n<!-- stagediff:begin -->\n"), 0o644)
			},
			args:       []string{"-write", "8"},
			wantStatus: 1,
			wantErr:    "stagediff: stages/08-nonblocking/README.md: want exactly one <!-- stagediff:begin --> line followed later by one <!-- stagediff:end --> line\n",
		},
		{
			name: "missing README",
			setup: func(root string) error {
				return os.Remove(filepath.Join(root, "stages/08-nonblocking/README.md"))
			},
			args:       []string{"-write", "8"},
			wantStatus: 1,
			wantErr:    "stagediff: stages/08-nonblocking/README.md: missing; create it with <!-- stagediff:begin --> and <!-- stagediff:end --> lines where the generated summary belongs\n",
		},
		{
			name: "gap in the stages",
			setup: func(root string) error {
				return os.RemoveAll(filepath.Join(root, "stages/07-core-loop"))
			},
			args:       []string{"8"},
			wantStatus: 1,
			wantErr:    "stagediff: stages/08-nonblocking: there is no stage 7 folder before it; stage folders must be consecutive\n",
		},
		{
			name:       "unknown stage",
			args:       []string{"12"},
			wantStatus: 1,
			wantErr:    "stagediff: no stage 12 folder in stages/\n",
		},
		{
			name:       "padded or wrong number",
			args:       []string{"eight"},
			wantStatus: 2,
			wantErr:    "stagediff: \"eight\" is not a stage number; give it without padding, such as 10\n",
		},
		{
			name:       "first stage has nothing to diff",
			args:       []string{"-check", "6"},
			wantStatus: 0,
			wantErr:    "stagediff: stage 6 is the first stage; it has no previous stage to diff against\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeRepo(t)
			if tt.setup != nil {
				if err := tt.setup(root); err != nil {
					t.Fatal(err)
				}
			}
			status, _, errOut := runTool(root, tt.args...)
			if status != tt.wantStatus || errOut != tt.wantErr {
				t.Errorf("stagediff %s: status %d, stderr %q; want %d, %q", strings.Join(tt.args, " "), status, errOut, tt.wantStatus, tt.wantErr)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	root := fakeRepo(t)
	for _, args := range [][]string{{}, {"-stat"}, {"-write", "-check"}, {"-stat", "-write", "8"}, {"7", "8"},
		{"-carry"}, {"-n", "8"}, {"-write", "-n"}, {"-base", "HEAD~1", "8"}, {"-manifest", "-base", "HEAD", "8"}, {"-carry", "-manifest", "8"}, {"-only", "x.go", "8"}} {
		if status, _, errOut := runTool(root, args...); status != 2 || !strings.HasPrefix(errOut, "usage: stagediff") {
			t.Errorf("stagediff %q: status %d, stderr %q; want 2 and usage", args, status, errOut)
		}
	}
}

func TestCodeFence(t *testing.T) {
	for text, want := range map[string]string{
		"":                   "```",
		"+x := `raw`\n":      "```",
		"+```go\n+x\n+```\n": "````",
		"+`````\n":           "``````",
	} {
		if got := codeFence(text); got != want {
			t.Errorf("codeFence(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestManifest(t *testing.T) {
	root := fakeRepo(t)
	name := filepath.Join(root, "stages/08-nonblocking/CHANGES")
	if err := os.WriteFile(name, []byte("# Stage 8: the loop moves into main.\n\nM main.go\n~ main.go gone\nD loop.go\nA testdata/empty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "# Stage 8: the loop moves into main.\n\nM main.go\n~ main.go main\nD loop.go\nA testdata/empty\n"

	status, out, errOut := runTool(root, "-manifest", "-n", "8")
	if status != 0 || errOut != "" || out != "==> stages/08-nonblocking/CHANGES\n"+want {
		t.Errorf("-manifest -n 8: status %d, stdout %q, stderr %q", status, out, errOut)
	}
	status, out, errOut = runTool(root, "-manifest", "8")
	if status != 0 || errOut != "" || !strings.HasPrefix(out, "stagediff: wrote stages/08-nonblocking/CHANGES") {
		t.Errorf("-manifest 8: status %d, stdout %q, stderr %q", status, out, errOut)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("CHANGES after -manifest 8 (-want +got):\n%s", diff)
	}
	if status, out, _ := runTool(root, "-manifest", "8"); status != 0 || out != "" {
		t.Errorf("second -manifest 8: status %d, stdout %q; want 0 and no rewrite", status, out)
	}

	// A stage without a manifest gets one started, file lines included.
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := runTool(root, "-manifest", "8"); status != 0 {
		t.Fatalf("-manifest 8 without a manifest: status %d", status)
	}
	got, err = os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if want := "D loop.go\nM main.go\n~ main.go main\nA testdata/empty\n"; string(got) != want {
		t.Errorf("started manifest = %q, want %q", got, want)
	}
}
