package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// contextLines is how many unchanged lines surround each change, as in
// diff -u.
const contextLines = 3

type opKind byte

const (
	opEqual  opKind = ' '
	opDelete opKind = '-'
	opInsert opKind = '+'
)

// op is one line of an edit script; a and b are the positions in the old
// and new lines before the op is applied, so an op both names its line and
// tells a hunk where it starts.
type op struct {
	kind opKind
	a, b int
}

// splitLines splits data after each newline, keeping the newline, so a last
// line without one compares unequal to the same text with one, as in diff.
func splitLines(data []byte) []string {
	var lines []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, string(data))
			break
		}
		lines = append(lines, string(data[:i+1]))
		data = data[i+1:]
	}
	return lines
}

// editScript returns a shortest edit script turning a into b, laid out as
// git and diff -u lay it out.
func editScript(a, b []string) []op {
	// The common ends are peeled off before Myers runs, because a lesson
	// edits a few places in a long file, and the search costs memory in the
	// square of the edit distance it explores.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ops := make([]op, 0, len(a)+len(b))
	for i := range pre {
		ops = append(ops, op{opEqual, i, i})
	}
	for _, o := range myers(a[pre:len(a)-suf], b[pre:len(b)-suf]) {
		ops = append(ops, op{o.kind, o.a + pre, o.b + pre})
	}
	for i := range suf {
		ops = append(ops, op{opEqual, len(a) - suf + i, len(b) - suf + i})
	}
	return compact(a, b, ops)
}

// myers is Myers' O(ND) shortest edit script ("An O(ND) Difference
// Algorithm and Its Variations", 1986), keeping each round's furthest
// points so the path can be walked back.
func myers(a, b []string) []op {
	n, m := len(a), len(b)
	var trace [][]int // trace[d][k+d] is the furthest x on diagonal k after d edits
search:
	for d := 0; d <= n+m; d++ {
		v := make([]int, 2*d+1)
		for k := -d; k <= d; k += 2 {
			var x int
			switch {
			case d == 0:
			case k == -d || (k != d && trace[d-1][k-1+d-1] < trace[d-1][k+1+d-1]):
				x = trace[d-1][k+1+d-1] // down from diagonal k+1: insert
			default:
				x = trace[d-1][k-1+d-1] + 1 // right from diagonal k-1: delete
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[k+d] = x
			if x >= n && y >= m {
				trace = append(trace, v)
				break search
			}
		}
		trace = append(trace, v)
	}

	var ops []op
	x, y := n, m
	for d := len(trace) - 1; d > 0; d-- {
		prev := trace[d-1]
		k := x - y
		down := k == -d || (k != d && prev[k-1+d-1] < prev[k+1+d-1])
		prevK := k - 1
		if down {
			prevK = k + 1
		}
		px := prev[prevK+d-1]
		py := px - prevK
		sx := px
		if !down {
			sx++
		}
		for x > sx {
			x--
			y--
			ops = append(ops, op{opEqual, x, y})
		}
		if down {
			ops = append(ops, op{opInsert, px, py})
		} else {
			ops = append(ops, op{opDelete, px, py})
		}
		x, y = px, py
	}
	for x > 0 {
		x--
		y--
		ops = append(ops, op{opEqual, x, y})
	}
	slices.Reverse(ops)
	return ops
}

// compact turns an edit script into the one a reader expects, by git's
// rules (xdl_change_compact in xdiff, without the indent heuristic): each
// run of changed lines slides as far down as equal lines allow, merging
// with neighbouring runs, then back up to line up with a change on the
// other side if one was passed. Myers finds a shortest script but places
// runs arbitrarily among equal lines; this gives the same output shape as
// git diff and diff -u, with deletions before insertions in each run.
func compact(a, b []string, ops []op) []op {
	delA := make([]bool, len(a))
	insB := make([]bool, len(b))
	for _, o := range ops {
		switch o.kind {
		case opDelete:
			delA[o.a] = true
		case opInsert:
			insB[o.b] = true
		}
	}
	compactSide(&side{a, delA}, &side{b, insB})
	compactSide(&side{b, insB}, &side{a, delA})

	out := make([]op, 0, len(ops))
	for i, j := 0, 0; i < len(a) || j < len(b); {
		switch {
		case i < len(a) && delA[i]:
			out = append(out, op{opDelete, i, j})
			i++
		case j < len(b) && insB[j]:
			out = append(out, op{opInsert, i, j})
			j++
		default:
			out = append(out, op{opEqual, i, j})
			i++
			j++
		}
	}
	return out
}

// side is one file's lines and which of them are changed.
type side struct {
	lines   []string
	changed []bool
}

// ch reads changed with unchanged sentinels on both ends.
func (s *side) ch(i int) bool { return i >= 0 && i < len(s.changed) && s.changed[i] }

// group is a run [start, end) of changed lines; it may be empty, marking
// where the other side's change sits between two unchanged lines.
type group struct{ start, end int }

func (s *side) first() group {
	g := group{}
	for s.ch(g.end) {
		g.end++
	}
	return g
}

func (s *side) next(g *group) bool {
	if g.end == len(s.changed) {
		return false
	}
	g.start = g.end + 1
	for g.end = g.start; s.ch(g.end); g.end++ {
	}
	return true
}

func (s *side) previous(g *group) bool {
	if g.start == 0 {
		return false
	}
	g.end = g.start - 1
	for g.start = g.end; s.ch(g.start - 1); g.start-- {
	}
	return true
}

func (s *side) slideDown(g *group) bool {
	if g.end >= len(s.lines) || s.lines[g.start] != s.lines[g.end] {
		return false
	}
	s.changed[g.start], s.changed[g.end] = false, true
	g.start++
	g.end++
	for s.ch(g.end) {
		g.end++
	}
	return true
}

func (s *side) slideUp(g *group) bool {
	if g.start == 0 || s.lines[g.start-1] != s.lines[g.end-1] {
		return false
	}
	g.start--
	g.end--
	s.changed[g.start], s.changed[g.end] = true, false
	for s.ch(g.start - 1) {
		g.start--
	}
	return true
}

// compactSide slides the changed runs of s, keeping a group cursor on
// other in step so each unchanged line of s stays paired with one of other.
func compactSide(s, other *side) {
	g, og := s.first(), other.first()
	for {
		if g.end != g.start {
			var earliestEnd int
			endMatchingOther := -1
			for {
				size := g.end - g.start
				endMatchingOther = -1
				for s.slideUp(&g) {
					other.previous(&og)
				}
				earliestEnd = g.end
				if og.end > og.start {
					endMatchingOther = g.end
				}
				for s.slideDown(&g) {
					other.next(&og)
					if og.end > og.start {
						endMatchingOther = g.end
					}
				}
				if size == g.end-g.start {
					break
				}
			}
			if g.end != earliestEnd && endMatchingOther != -1 {
				for og.end == og.start {
					s.slideUp(&g)
					other.previous(&og)
				}
			}
		}
		if !s.next(&g) || !other.next(&og) {
			return
		}
	}
}

// isBinary reports whether data looks like something other than text, by
// the test git and GNU diff use: a NUL byte near the start.
func isBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0
}

// fileDiff is the difference between two versions of one file.
type fileDiff struct {
	path             string // relative to the stage folder
	oldName, newName string // for the --- and +++ headers
	oldData, newData []byte
	oldLines         []string
	newLines         []string
	ops              []op // nil for binary files
}

func newFileDiff(path, oldName, newName string, oldData, newData []byte) *fileDiff {
	f := &fileDiff{path: path, oldName: oldName, newName: newName, oldData: oldData, newData: newData}
	if !f.binary() {
		f.oldLines, f.newLines = splitLines(oldData), splitLines(newData)
		f.ops = editScript(f.oldLines, f.newLines)
	}
	return f
}

func (f *fileDiff) binary() bool { return isBinary(f.oldData) || isBinary(f.newData) }

// counts returns the number of inserted and deleted lines.
func (f *fileDiff) counts() (ins, del int) {
	for _, o := range f.ops {
		switch o.kind {
		case opInsert:
			ins++
		case opDelete:
			del++
		}
	}
	return ins, del
}

// unified writes f in unified format. A file that is empty on both sides
// (an empty file added or removed) still gets its headers, so it shows up.
func (f *fileDiff) unified(w *strings.Builder) {
	if f.binary() {
		fmt.Fprintf(w, "Binary files %s and %s differ\n", f.oldName, f.newName)
		return
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", f.oldName, f.newName)
	ops := f.ops
	for i := 0; i < len(ops); {
		for i < len(ops) && ops[i].kind == opEqual {
			i++
		}
		if i == len(ops) {
			break
		}
		start, end := max(0, i-contextLines), i
		for {
			for end < len(ops) && ops[end].kind != opEqual {
				end++
			}
			next := end
			for next < len(ops) && ops[next].kind == opEqual {
				next++
			}
			// Two changes whose contexts would touch or overlap share a hunk.
			if next < len(ops) && next-end <= 2*contextLines {
				end = next
				continue
			}
			end = min(next, end+contextLines)
			break
		}
		f.hunk(w, ops[start:end])
		i = end
	}
}

func (f *fileDiff) hunk(w *strings.Builder, ops []op) {
	oldCount, newCount := 0, 0
	for _, o := range ops {
		if o.kind != opInsert {
			oldCount++
		}
		if o.kind != opDelete {
			newCount++
		}
	}
	fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(ops[0].a, oldCount), hunkRange(ops[0].b, newCount))
	for _, o := range ops {
		var line string
		if o.kind == opInsert {
			line = f.newLines[o.b]
		} else {
			line = f.oldLines[o.a]
		}
		w.WriteByte(byte(o.kind))
		w.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			w.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

// hunkRange formats one side of a hunk header the way diff -u does: a
// single line is just its number, and an empty range names the line before
// it.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}
