package main

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"expserver-go/tools/internal/stagefs"
)

// roadmapFile is the ordered stage table that folder names are checked
// against, relative to the repository root.
const roadmapFile = "docs/roadmap.md"

const roadmapHeader = "| # | Folder | Module introduced | Milestone |"

// roadmapRow is one row of the stage table; num and folder are the raw
// cells with the backticks of folder removed, "" when the cell is unusable.
type roadmapRow struct {
	line   int
	num    string
	folder string
}

// checkRoadmap checks that the stage folders are exactly the Folder column
// of the table in docs/roadmap.md, in the same order, and that each row's #
// is its folder's number.
func checkRoadmap(root string) []string {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(roadmapFile)))
	if errors.Is(err, fs.ErrNotExist) {
		return []string{problemf("%s: missing; it must hold the stage table %s", roadmapFile, roadmapHeader)}
	}
	if err != nil {
		return []string{problemf("%v", err)}
	}
	stages, err := stagefs.Stages(root)
	if err != nil {
		return []string{problemf("%v", err)}
	}
	rows, problems := parseRoadmap(data)
	if rows == nil && problems == nil {
		return []string{problemf("%s: no stage table; want one with the header %s", roadmapFile, roadmapHeader)}
	}

	listed := map[string]int{}    // folder → line of its first row
	claimed := map[int]bool{}     // stage numbers whose folder a row accounts for
	prevFolder, prevNum := "", -1 // the last row with a usable folder, for order
	for _, r := range rows {
		if r.folder == "" {
			continue
		}
		num, ok := stagefs.Number(r.folder)
		if !ok {
			problems = append(problems, problemf("%s:%d: %s is not a stage folder name (want NN-name, such as 06-listener)", roadmapFile, r.line, r.folder))
			continue
		}
		if want := strconv.Itoa(num); r.num != want {
			problems = append(problems, problemf("%s:%d: # is %q but %s is stage %s", roadmapFile, r.line, r.num, r.folder, want))
		}
		if first, dup := listed[r.folder]; dup {
			problems = append(problems, problemf("%s:%d: %s is already listed on line %d", roadmapFile, r.line, r.folder, first))
			continue
		}
		listed[r.folder] = r.line
		if num <= prevNum {
			problems = append(problems, problemf("%s:%d: %s is listed after %s; rows must be in stage order", roadmapFile, r.line, r.folder, prevFolder))
		}
		prevFolder, prevNum = r.folder, num
		claimed[num] = true
		switch s, ok := stagefs.Find(stages, num); {
		case !ok:
			problems = append(problems, problemf("%s:%d: lists %s but %s does not exist", roadmapFile, r.line, r.folder, path.Join(stagefs.StagesDir, r.folder)))
		case s.Name != r.folder:
			problems = append(problems, problemf("%s:%d: lists %s but the stage %d folder is %s", roadmapFile, r.line, r.folder, num, s.Dir()))
		}
	}
	for _, s := range stages {
		if !claimed[s.Num] {
			problems = append(problems, problemf("%s: folder is not listed in %s", s.Dir(), roadmapFile))
		}
	}
	return problems
}

// parseRoadmap finds the first table whose header starts with # and Folder
// and returns its rows, with a problem for each cell that cannot be read.
// It returns nil, nil when there is no such table.
func parseRoadmap(data []byte) ([]roadmapRow, []string) {
	lines := strings.Split(string(data), "\n")
	start := -1
	for i, l := range lines {
		if c := tableCells(l); len(c) >= 2 && c[0] == "#" && strings.EqualFold(c[1], "Folder") {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, nil
	}
	var rows []roadmapRow
	var problems []string
	for i := start + 1; i < len(lines); i++ {
		cells := tableCells(lines[i])
		if cells == nil {
			break
		}
		if i == start+1 && isDelimiterRow(cells) {
			continue
		}
		r := roadmapRow{line: i + 1}
		if len(cells) < 2 {
			problems = append(problems, problemf("%s:%d: row has no Folder cell", roadmapFile, r.line))
			rows = append(rows, r)
			continue
		}
		r.num = cells[0]
		if name, ok := backticked(cells[1]); ok {
			r.folder = name
		} else {
			problems = append(problems, problemf("%s:%d: Folder cell %q is not a folder name in backticks, such as `06-listener`", roadmapFile, r.line, cells[1]))
		}
		rows = append(rows, r)
	}
	if rows == nil {
		rows = []roadmapRow{} // a table with a header and no rows is still a table
	}
	return rows, problems
}

// tableCells splits a Markdown table line into trimmed cells, honouring \|
// inside a cell. It returns nil for a line that is not a table row.
func tableCells(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") {
		return nil
	}
	line = line[1:]
	if strings.HasSuffix(line, "|") && !strings.HasSuffix(line, `\|`) {
		line = line[:len(line)-1]
	}
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

func isDelimiterRow(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(c, ":-") != "" || !strings.Contains(c, "-") {
			return false
		}
	}
	return true
}

// backticked returns the text of a cell that is exactly one code span.
func backticked(cell string) (string, bool) {
	inner, ok := strings.CutPrefix(cell, "`")
	if !ok {
		return "", false
	}
	inner, ok = strings.CutSuffix(inner, "`")
	if !ok || inner == "" || strings.Contains(inner, "`") {
		return "", false
	}
	return inner, true
}
