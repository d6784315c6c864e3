package stagefs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/harness"
)

func writeFiles(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	if err := harness.WriteTree(root, files); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestStagesAndCompare(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"go.mod":                             "module expserver-go\n\ngo 1.26\n",
		"stages/public/index.html":           "x",
		"stages/notes.txt":                   "x",
		"stages/10-pipe/same.go":             "same",
		"stages/10-pipe/edited.go":           "v2",
		"stages/10-pipe/new.go":              "new",
		"stages/10-pipe/README.md":           "readme 10",
		"stages/10-pipe/CHANGES":             "M edited.go",
		"stages/10-pipe/CHANGES.diff":        "generated",
		"stages/10-pipe/testdata/README.md":  "nested readmes are compared",
		"stages/09-edge-triggered/same.go":   "same",
		"stages/09-edge-triggered/edited.go": "v1",
		"stages/09-edge-triggered/gone.go":   "gone",
		"stages/09-edge-triggered/README.md": "readme 9",
	})
	stages, err := Stages(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Stage{{9, "09-edge-triggered"}, {10, "10-pipe"}}
	if diff := cmp.Diff(want, stages); diff != "" {
		t.Fatalf("Stages (-want +got):\n%s", diff)
	}
	if got := stages[1].Dir(); got != "stages/10-pipe" {
		t.Errorf("Dir() = %q", got)
	}
	files, err := Files(root, stages[1])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"edited.go", "new.go", "same.go", "testdata/README.md"}, files); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
	changes, err := Compare(root, stages[0], stages[1])
	if err != nil {
		t.Fatal(err)
	}
	wantChanges := []Change{{Kind: Modified, Path: "edited.go"}, {Kind: Removed, Path: "gone.go"}, {Kind: Added, Path: "new.go"}, {Kind: Added, Path: "testdata/README.md"}}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("Compare (-want +got):\n%s", diff)
	}
	mod, err := ModulePath(root)
	if err != nil || mod != "expserver-go" {
		t.Errorf("ModulePath = %q, %v", mod, err)
	}
}

func TestDuplicateStageNumber(t *testing.T) {
	root := writeFiles(t, map[string]string{"stages/07-a/x": "", "stages/07-b/x": ""})
	_, err := Stages(root)
	if want := "stages/07-a and stages/07-b both claim stage 7"; err == nil || err.Error() != want {
		t.Errorf("Stages error = %v, want %q", err, want)
	}
}

func TestSymlinkIsRefused(t *testing.T) {
	root := writeFiles(t, map[string]string{"stages/07-a/x": ""})
	if err := os.Symlink("x", filepath.Join(root, "stages/07-a/link")); err != nil {
		t.Skip(err)
	}
	_, err := Files(root, Stage{7, "07-a"})
	if want := "stages/07-a/link: not a regular file"; err == nil || err.Error() != want {
		t.Errorf("Files error = %v, want %q", err, want)
	}
}

func TestManifestChanges(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"stages/07-a/loop.go":          "package main\n\nfunc run() {}\n\nfunc gone() {}\n",
		"stages/07-a/old.go":           "package main\n\nfunc old() {}\n",
		"stages/07-a/testdata/x.go":    "not go at all",
		"stages/07-a/config.json":      "{}\n",
		"stages/08-b/loop.go":          "package main\n\n// run runs.\nfunc run() {}\n\nfunc added() {}\n",
		"stages/08-b/new.go":           "package main\n\nfunc fresh() {}\n",
		"stages/08-b/testdata/x.go":    "still not go",
		"stages/08-b/config.json":      "{\"a\": 1}\n",
		"stages/08-b/CHANGES":          "",
		"stages/08-b/CHANGES.diff":     "",
		"stages/08-b/loop_test.go":     "package main\n",
		"stages/07-a/loop_test.go":     "package main\n",
		"stages/08-b/README.md":        "",
		"stages/07-a/README.md":        "x",
		"stages/07-a/CHANGES.diff":     "y",
		"stages/08-b/testdata/keep.go": "package main\n",
		"stages/07-a/testdata/keep.go": "package main\n",
	})
	changes, err := ManifestChanges(root, Stage{7, "07-a"}, Stage{8, "08-b"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.String())
	}
	want := []string{"M config.json", "M loop.go", "~ loop.go run", "+ loop.go added", "- loop.go gone", "A new.go", "D old.go", "M testdata/x.go"}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("ManifestChanges (-want +got):\n%s", diff)
	}
}
