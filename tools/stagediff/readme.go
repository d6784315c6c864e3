package main

import (
	"errors"
	"fmt"
	"strings"
)

// The marker lines that bound the generated block in a stage README.
const (
	beginMarker = "<!-- stagediff:begin -->"
	endMarker   = "<!-- stagediff:end -->"
)

// readmeBlock is what -write puts between the markers: the summary, then
// the full diff folded away so the README stays readable.
func (d *stageDiff) readmeBlock() string {
	stat, diff := d.stat(), d.unified()
	var w strings.Builder
	fence := codeFence(stat)
	fmt.Fprintf(&w, "%stext\n%s%s\n\n", fence, stat, fence)
	fmt.Fprintf(&w, "<details><summary>Full diff from stage %d</summary>\n\n", d.prev.Num)
	fence = codeFence(diff)
	fmt.Fprintf(&w, "%sdiff\n%s%s\n\n</details>\n", fence, diff, fence)
	return w.String()
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
		return "", fmt.Errorf("%s: no %s and %s lines; add them, each on its own line, where the generated diff belongs", name, beginMarker, endMarker)
	}
	if begin < 0 || end < begin {
		return "", markerError(name)
	}
	return strings.Join(lines[:begin+1], "") + block + strings.Join(lines[end:], ""), nil
}

func markerError(name string) error {
	return errors.New(name + ": want exactly one " + beginMarker + " line followed later by one " + endMarker + " line")
}
