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
	wantChanges := []Change{{Modified, "edited.go"}, {Removed, "gone.go"}, {Added, "new.go"}, {Added, "testdata/README.md"}}
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

func TestParseManifest(t *testing.T) {
	entries, errs := ParseManifest([]byte("# comment\n\nA pipe.go\r\nM\tloop.go\n  D old file.go  \nA testdata/listing.golden\n"))
	want := []Entry{
		{Change{Added, "pipe.go"}, 3},
		{Change{Modified, "loop.go"}, 4},
		{Change{Removed, "old file.go"}, 5},
		{Change{Added, "testdata/listing.golden"}, 6},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}

	_, errs = ParseManifest([]byte("A\nR x.go\nM ./x.go\nM /x.go\nA CHANGES\nM a\\b.go\nM x.go\nD x.go\n"))
	wantErrs := []LineError{
		{1, `cannot parse "A": want "A path", "M path" or "D path"`},
		{2, `cannot parse "R x.go": want "A path", "M path" or "D path"`},
		{3, "./x.go: want a clean path relative to the stage folder, such as loop.go or testdata/listing.golden"},
		{4, "/x.go: want a clean path relative to the stage folder, such as loop.go or testdata/listing.golden"},
		{5, "CHANGES is never compared between stages; do not list it"},
		{6, `a\b.go: write paths with forward slashes`},
		{8, "x.go is already listed on line 7"},
	}
	if diff := cmp.Diff(wantErrs, errs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}
