package main

import (
	"fmt"
	"path"
	"strings"

	"expserver-go/tools/internal/stagefs"
)

// stageDiff is everything that changed from one stage to the next.
type stageDiff struct {
	prev, cur stagefs.Stage
	files     []*fileDiff // sorted by path
}

// loadStageDiff diffs every compared file that changed from prev to cur.
// Added and removed files are diffed against an empty file and named
// /dev/null on their missing side, as git and patch expect.
func loadStageDiff(root string, prev, cur stagefs.Stage) (*stageDiff, error) {
	changes, err := stagefs.Compare(root, prev, cur)
	if err != nil {
		return nil, err
	}
	d := &stageDiff{prev: prev, cur: cur}
	for _, c := range changes {
		before, after, err := stagefs.ReadPair(root, prev, cur, c.Path)
		if err != nil {
			return nil, err
		}
		oldName, newName := path.Join(prev.Dir(), c.Path), path.Join(cur.Dir(), c.Path)
		switch c.Kind {
		case stagefs.Added:
			oldName = "/dev/null"
		case stagefs.Removed:
			newName = "/dev/null"
		}
		d.files = append(d.files, newFileDiff(c.Path, oldName, newName, before, after))
	}
	return d, nil
}

// unified returns the full diff, file by file.
func (d *stageDiff) unified() string {
	var w strings.Builder
	for _, f := range d.files {
		f.unified(&w)
	}
	return w.String()
}

// statGraphWidth is the widest +/- bar; longer changes are scaled down to
// it, as git diff --stat does, so the summary fits a README column.
const statGraphWidth = 40

// stat returns a summary in the shape of git diff --stat: one line per file
// with its changed line count and a bar of + and -, then a total.
func (d *stageDiff) stat() string {
	var w strings.Builder
	nameWidth, maxChange := 0, 0
	for _, f := range d.files {
		nameWidth = max(nameWidth, len(f.path))
		ins, del := f.counts()
		maxChange = max(maxChange, ins+del)
	}
	countWidth := len(fmt.Sprint(maxChange))
	totalIns, totalDel := 0, 0
	for _, f := range d.files {
		if f.binary() {
			fmt.Fprintf(&w, " %-*s | Bin %d -> %d bytes\n", nameWidth, f.path, len(f.oldData), len(f.newData))
			continue
		}
		ins, del := f.counts()
		totalIns += ins
		totalDel += del
		barIns, barDel := scaleBar(ins, del, maxChange)
		bar := strings.Repeat("+", barIns) + strings.Repeat("-", barDel)
		// An empty file added has no bar; trailing blanks would make the
		// README block fail editors' whitespace checks.
		line := fmt.Sprintf(" %-*s | %*d %s", nameWidth, f.path, countWidth, ins+del, bar)
		w.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	w.WriteString(statTotal(len(d.files), totalIns, totalDel))
	return w.String()
}

// scaleBar returns the numbers of + and - to draw, using git's rule: bars
// are scaled only when the largest change is wider than the graph, and a
// nonzero count never vanishes.
func scaleBar(ins, del, maxChange int) (int, int) {
	if maxChange <= statGraphWidth {
		return ins, del
	}
	scale := func(n int) int {
		if n == 0 {
			return 0
		}
		return 1 + n*(statGraphWidth-1)/maxChange
	}
	total := scale(ins + del)
	if total < 2 && ins > 0 && del > 0 {
		total = 2
	}
	if ins < del {
		ins = scale(ins)
		return ins, total - ins
	}
	del = scale(del)
	return total - del, del
}

// statTotal is git's closing line, including its habit of showing both
// counts when both are zero.
func statTotal(files, ins, del int) string {
	s := fmt.Sprintf(" %d %s changed", files, plural(files, "file", "files"))
	if ins > 0 || del == 0 {
		s += fmt.Sprintf(", %d %s(+)", ins, plural(ins, "insertion", "insertions"))
	}
	if del > 0 || ins == 0 {
		s += fmt.Sprintf(", %d %s(-)", del, plural(del, "deletion", "deletions"))
	}
	return s + "\n"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
