package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"expserver-go/tools/internal/stagefs"
)

// writeManifest rewrites the declaration lines of stage cur's CHANGES from
// the real difference from prev, keeping its prose and file lines (see
// stagefs.RewriteManifest). With dryRun it prints the result instead.
func (t *tool) writeManifest(prev, cur stagefs.Stage, dryRun bool) error {
	name := path.Join(cur.Dir(), stagefs.ManifestName)
	file := filepath.Join(t.root, filepath.FromSlash(name))
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	changes, err := stagefs.ManifestChanges(t.root, prev, cur)
	if err != nil {
		return err
	}
	updated := stagefs.RewriteManifest(old, changes)
	if dryRun {
		_, err := fmt.Fprintf(t.stdout, "==> %s\n%s", name, updated)
		return err
	}
	if string(updated) == string(old) {
		return nil
	}
	if err := os.WriteFile(file, updated, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(t.stdout, "stagediff: wrote %s; review its declaration lines: each claims the stage changes that declaration on purpose\n", name)
	return nil
}
