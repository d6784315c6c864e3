package harness

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestRootFrom(t *testing.T) {
	root := t.TempDir()
	err := WriteTree(root, map[string]string{
		"go.mod":                      "module expserver-go\n\ngo 1.26\n",
		"stages/10-pipe/testdata/x":   "",
		"stages/10-pipe/other/go.mod": "module elsewhere\n",
		"stages/10-pipe/other/deep/y": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, filepath.Join(root, "stages", "10-pipe", "testdata"), filepath.Join(root, "stages", "10-pipe", "other", "deep")} {
		if got, err := RootFrom(dir); err != nil || got != root {
			t.Errorf("RootFrom(%s) = %q, %v; want %q", dir, got, err, root)
		}
	}
	outside := t.TempDir()
	if _, err := RootFrom(outside); err == nil || !strings.Contains(err.Error(), "not inside the expserver-go repository") {
		t.Errorf("RootFrom(a folder outside) = %v, want an error", err)
	}
}
