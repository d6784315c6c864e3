package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"expserver-go/tools/internal/stagefs"
)

// The marker lines that bound the generated block in a stage README.
const (
	beginMarker = "<!-- stagediff:begin -->"
	endMarker   = "<!-- stagediff:end -->"
)

// readmeBlock is what -write puts between the markers: the summary, and
// where the full diff is. The full diff lives beside the README, in
// CHANGES.diff, so the README stays prose a student reads.
func (d *stageDiff) readmeBlock() string {
	stat := d.stat()
	fence := codeFence(stat)
	return fmt.Sprintf("%stext\n%s%s\n\nThe full diff from stage %d is in [%s](%s).\n",
		fence, stat, fence, d.prev.Num, stagefs.DiffName, stagefs.DiffName)
}

// generated brings the files stagediff generates for d's stage up to date
// (or, if check, reports those that are not): CHANGES.diff and the block of
// the README. Each problem is one line of the returned error.
func (t *tool) generated(d *stageDiff, check bool) error {
	diffName := path.Join(d.cur.Dir(), stagefs.DiffName)
	errDiff := t.update(diffName, check, d.cur.Num, func(string, bool) (string, error) {
		return d.unified(), nil
	})
	readme := path.Join(d.cur.Dir(), stagefs.ReadmeName)
	errReadme := t.update(readme, check, d.cur.Num, func(old string, exists bool) (string, error) {
		if !exists {
			return "", fmt.Errorf("%s: missing; create it with %s and %s lines where the generated summary belongs", readme, beginMarker, endMarker)
		}
		return replaceBlock(readme, old, d.readmeBlock())
	})
	return errors.Join(errDiff, errReadme)
}

// update rewrites the generated file name (slash-separated, relative to the
// root) with what content returns for its current text, or, if check,
// reports that it would change. num is the stage, for the hint.
func (t *tool) update(name string, check bool, num int, content func(old string, exists bool) (string, error)) error {
	file := filepath.Join(t.root, filepath.FromSlash(name))
	perm := fs.FileMode(0o644)
	old, err := os.ReadFile(file)
	exists := err == nil
	switch {
	case exists:
		if info, err := os.Stat(file); err == nil {
			perm = info.Mode().Perm()
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	updated, err := content(string(old), exists)
	if err != nil {
		return err
	}
	if exists && updated == string(old) {
		return nil
	}
	if check {
		what := "stale"
		if !exists {
			what = "missing"
		} else if path.Base(name) == stagefs.ReadmeName {
			what = "the stagediff block is stale"
		}
		return fmt.Errorf("%s: %s; run go run ./tools/stagediff -write %d", name, what, num)
	}
	if err := os.WriteFile(file, []byte(updated), perm); err != nil {
		return err
	}
	fmt.Fprintf(t.stdout, "stagediff: wrote %s\n", name)
	return nil
}

// codeFence returns a backtick fence longer than any backtick run in text,
// because a diff of Markdown or of a Go raw string may itself contain ```,
// which would otherwise close the block early.
func codeFence(text string) string {
	longest, run := 0, 0
	for i := 0; i < len(text); i++ {
		if text[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// replaceBlock returns readme with the lines between its marker lines
// replaced by block. name is the README's path for messages.
func replaceBlock(name, readme, block string) (string, error) {
	lines := strings.SplitAfter(readme, "\n")
	begin, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case beginMarker:
			if begin >= 0 {
				return "", markerError(name)
			}
			begin = i
		case endMarker:
			if end >= 0 {
				return "", markerError(name)
			}
			end = i
		}
	}
	if begin < 0 && end < 0 {
		return "", fmt.Errorf("%s: no %s and %s lines; add them, each on its own line, where the generated summary belongs", name, beginMarker, endMarker)
	}
	if begin < 0 || end < begin {
		return "", markerError(name)
	}
	return strings.Join(lines[:begin+1], "") + block + strings.Join(lines[end:], ""), nil
}

func markerError(name string) error {
	return errors.New(name + ": want exactly one " + beginMarker + " line followed later by one " + endMarker + " line")
}
