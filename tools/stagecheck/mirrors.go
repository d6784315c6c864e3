package main

import (
	"errors"
	"fmt"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"expserver-go/tools/internal/stagefs"
)

// identifiersFile is the table of the course's identifiers per stage,
// relative to the repository root.
const identifiersFile = "docs/course-identifiers.md"

const identifiersHeader = "| Stage | Identifier | Kind | Where | Until | Note |"

// identifierKinds are the values the Kind column may take. A plain word in
// a Mirrors comment (one without an underscore, such as logger or OK) counts
// as a course name only when the table lists it with one of the kinds marked
// true: field and global names are ordinary words (host, core, file) that
// would otherwise make any sentence look like a reference.
var identifierKinds = map[string]bool{
	"module": true, "file": true, "type": true, "function": true, "constant": true,
	"field": false, "global": false,
}

// span is the range of stages in which the course has an identifier.
type span struct {
	from, until int // until is 0 while the course still has it
}

func (s span) covers(stage int) bool {
	return s.from <= stage && (s.until == 0 || stage <= s.until)
}

// courseName is everything the table says about one identifier: the stages
// it exists in (a name can leave and come back, as a global and later as a
// field) and whether a plain word may stand for it.
type courseName struct {
	spans []span
	word  bool
}

// checkMirrors checks that every "Mirrors X" comment in a stage names
// identifiers the course has at that stage, as docs/course-identifiers.md
// lists them, so a student who looks X up on the course's page for the same
// stage finds it. Comments in common/ name the code the course hands over,
// which belongs to no one stage: there any stage of the table will do.
func checkMirrors(root string) []string {
	refs, problems := findMirrors(root)
	if len(refs) == 0 {
		return problems
	}
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(identifiersFile)))
	if errors.Is(err, fs.ErrNotExist) {
		return append(problems, problemf("%s: missing; it must hold the table %s that Mirrors comments are checked against", identifiersFile, identifiersHeader))
	}
	if err != nil {
		return append(problems, problemf("%v", err))
	}
	names, tableProblems := parseIdentifiers(data)
	problems = append(problems, tableProblems...)
	if names == nil {
		return append(problems, problemf("%s: no identifier table; want one with the header %s", identifiersFile, identifiersHeader))
	}
	for _, r := range refs {
		problems = append(problems, r.check(names)...)
	}
	return problems
}

// mirrorsRef is one "Mirrors …" phrase: the words after Mirrors up to the
// end of the sentence.
type mirrorsRef struct {
	file   string // slash-separated, relative to the root
	line   int
	stage  int // 0 for common/, where any stage will do
	phrase string
}

// The parts of a phrase that can name a course identifier: a code span, or
// a word, which may end in a C file extension (xps_loop.c) so that modules
// can be named by their files.
var (
	mirrorsWord = regexp.MustCompile(`\bMirrors\b`)
	nameToken   = regexp.MustCompile("`[^`]*`|[A-Za-z_][A-Za-z0-9_]*(?:\\.(?:c|h|json|sh)\\b)?")
)

// check reports every name in the phrase that the course does not have at
// r's stage, and a phrase that names nothing the table knows.
func (r mirrorsRef) check(names map[string]courseName) []string {
	where := fmt.Sprintf("%s:%d", r.file, r.line)
	var problems []string
	named := false
	for _, tok := range nameToken.FindAllString(r.phrase, -1) {
		code := strings.HasPrefix(tok, "`")
		id := strings.Trim(tok, "`")
		ext := path.Ext(id)
		marked := code || strings.Contains(id, "_") || ext != ""
		n, known := lookupName(names, id)
		if !marked && !(known && n.word) {
			continue // an ordinary word of the sentence
		}
		switch {
		case !known:
			problems = append(problems, problemf("%s: Mirrors %s: the course has no %s (%s lists its identifiers per stage)", where, r.phrase, id, identifiersFile))
		case r.stage == 0 || n.at(r.stage):
			named = true
		default:
			problems = append(problems, problemf("%s: Mirrors %s: the course has %s only %s, not in stage %d", where, r.phrase, id, n.stages(), r.stage))
		}
	}
	if !named && problems == nil {
		problems = append(problems, problemf("%s: Mirrors %s: names no course identifier; write the course's name as %s lists it", where, r.phrase, identifiersFile))
	}
	return problems
}

// lookupName finds id in the table; a file name such as xps_loop.c also
// stands for its module, xps_loop.
func lookupName(names map[string]courseName, id string) (courseName, bool) {
	if n, ok := names[id]; ok {
		return n, true
	}
	for _, ext := range []string{".c", ".h"} {
		if base, ok := strings.CutSuffix(id, ext); ok {
			n, ok := names[base]
			return n, ok
		}
	}
	return courseName{}, false
}

func (n courseName) at(stage int) bool {
	for _, s := range n.spans {
		if s.covers(stage) {
			return true
		}
	}
	return false
}

// stages describes n's spans for a message, such as "in stage 6 and from
// stage 9 on" or "in stages 8–9".
func (n courseName) stages() string {
	var parts []string
	for _, s := range n.spans {
		switch {
		case s.until == 0:
			parts = append(parts, fmt.Sprintf("from stage %d on", s.from))
		case s.until == s.from:
			parts = append(parts, fmt.Sprintf("in stage %d", s.from))
		default:
			parts = append(parts, fmt.Sprintf("in stages %d–%d", s.from, s.until))
		}
	}
	return strings.Join(parts, " and ")
}

// findMirrors collects the Mirrors phrases of every Go file in the stages
// and in common/, skipping what the go tool skips (testdata, names starting
// with . or _).
func findMirrors(root string) ([]mirrorsRef, []string) {
	var refs []mirrorsRef
	var problems []string
	stages, err := stagefs.Stages(root)
	if err != nil {
		return nil, []string{problemf("%v", err)}
	}
	for _, s := range stages {
		files, err := stagefs.Files(root, s)
		if err != nil {
			problems = append(problems, problemf("%v", err))
			continue
		}
		for _, f := range files {
			if goSource(f) {
				rel := path.Join(s.Dir(), f)
				found, err := fileMirrors(root, rel, s.Num)
				refs = append(refs, found...)
				if err != nil {
					problems = append(problems, problemf("%v", err))
				}
			}
		}
	}
	top := filepath.Join(root, "common")
	err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() || !goSource(strings.TrimPrefix(rel, "common/")) {
			return nil
		}
		found, err := fileMirrors(root, rel, 0)
		refs = append(refs, found...)
		if err != nil {
			problems = append(problems, problemf("%v", err))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		problems = append(problems, problemf("%v", err))
	}
	return refs, problems
}

// goSource reports whether rel, a slash-separated path inside a package
// tree, is a Go file the go tool would read.
func goSource(rel string) bool {
	if !strings.HasSuffix(rel, ".go") {
		return false
	}
	for _, part := range strings.Split(rel, "/") {
		if part == "testdata" || strings.HasPrefix(part, ".") || strings.HasPrefix(part, "_") {
			return false
		}
	}
	return true
}

// fileMirrors returns the Mirrors phrases in the comments of one Go file.
// Adjacent comment lines are read as one text, so a phrase may run across
// lines; it ends at the end of its sentence. The file is only scanned, not
// parsed: a syntax error is the imports check's to report, and the comments
// of a file that does not compile are still checked.
func fileMirrors(root, rel string, stage int) ([]mirrorsRef, error) {
	src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	var refs []mirrorsRef
	for _, group := range commentGroups(src) {
		text, lineAt := commentText(group)
		for _, loc := range mirrorsWord.FindAllStringIndex(text, -1) {
			refs = append(refs, mirrorsRef{
				file:   rel,
				line:   lineAt(loc[0]),
				stage:  stage,
				phrase: sentence(text[loc[1]:]),
			})
		}
	}
	return refs, nil
}

// comment is one // or /* */ comment and the line it starts on.
type comment struct {
	line int
	text string
}

// commentGroups scans src and returns its comments, grouped as go/ast
// groups them: comments on consecutive lines with no code between them.
func commentGroups(src []byte) [][]comment {
	fset := token.NewFileSet()
	file := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(file, src, func(token.Position, string) {}, scanner.ScanComments)
	var groups [][]comment
	lastEnd := -1 // the line the previous token ended on, if it was a comment
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return groups
		}
		if tok != token.COMMENT {
			lastEnd = -1
			continue
		}
		line := file.Line(pos)
		c := comment{line, lit}
		if lastEnd >= 0 && line <= lastEnd+1 {
			groups[len(groups)-1] = append(groups[len(groups)-1], c)
		} else {
			groups = append(groups, []comment{c})
		}
		lastEnd = line + strings.Count(lit, "\n")
	}
}

// commentText joins the lines of a comment group into one line of text
// and returns, with it, a function from an offset in that text to the
// source line it came from.
func commentText(group []comment) (string, func(int) int) {
	var b strings.Builder
	var starts, lines []int
	for _, c := range group {
		body := c.text
		if s, ok := strings.CutPrefix(body, "//"); ok {
			body = s
		} else {
			body = strings.TrimSuffix(strings.TrimPrefix(body, "/*"), "*/")
		}
		for i, l := range strings.Split(body, "\n") {
			starts = append(starts, b.Len())
			lines = append(lines, c.line+i)
			b.WriteString(strings.TrimSpace(l))
			b.WriteByte(' ')
		}
	}
	text := b.String()
	return text, func(off int) int {
		line := lines[0]
		for i, s := range starts {
			if s <= off {
				line = lines[i]
			}
		}
		return line
	}
}

// sentence returns the words of s up to the end of its first sentence: a
// full stop followed by a space (so xps_loop.c stays whole), or a
// semicolon, with runs of spaces collapsed.
func sentence(s string) string {
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == ';' || (s[i] == '.' && (i+1 == len(s) || s[i+1] == ' ')) {
			end = i
			break
		}
	}
	return strings.Join(strings.Fields(s[:end]), " ")
}

// parseIdentifiers reads every table of docs/course-identifiers.md whose
// header is identifiersHeader and returns what it says about each
// identifier, with a problem for each row that cannot be used. It returns
// nil when there is no such table.
func parseIdentifiers(data []byte) (map[string]courseName, []string) {
	var names map[string]courseName
	var problems []string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.Join(tableCells(lines[i]), "|") != strings.Join(tableCells(identifiersHeader), "|") {
			continue
		}
		if names == nil {
			names = map[string]courseName{}
		}
		for i++; i < len(lines); i++ {
			cells := tableCells(lines[i])
			if cells == nil {
				break
			}
			if isDelimiterRow(cells) {
				continue
			}
			if p := addIdentifier(names, cells); p != "" {
				problems = append(problems, problemf("%s:%d: %s", identifiersFile, i+1, p))
			}
		}
	}
	return names, problems
}

var identifierShape = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[a-z]+)?$`)

// addIdentifier records one table row in names, or explains why it cannot.
func addIdentifier(names map[string]courseName, cells []string) string {
	if len(cells) < 5 {
		return fmt.Sprintf("row has %d cells; want Stage, Identifier, Kind, Where, Until and Note", len(cells))
	}
	from, err := strconv.Atoi(cells[0])
	if err != nil || from < stagefs.FirstStage {
		return fmt.Sprintf("Stage %q is not a stage number (%d or more)", cells[0], stagefs.FirstStage)
	}
	id, ok := backticked(cells[1])
	if !ok || !identifierShape.MatchString(id) {
		return fmt.Sprintf("Identifier %q is not one C name or file name in backticks, such as `xps_loop_create`", cells[1])
	}
	word, ok := identifierKinds[cells[2]]
	if !ok {
		return fmt.Sprintf("Kind %q of %s is not one of module, file, type, function, constant, field, global", cells[2], id)
	}
	until := 0
	if cells[4] != "" {
		until, err = strconv.Atoi(cells[4])
		if err != nil || until < from {
			return fmt.Sprintf("Until %q of %s is not a stage number from %d on (leave it empty while the course keeps the name)", cells[4], id, from)
		}
	}
	n := names[id]
	if !slices.Contains(n.spans, span{from, until}) {
		n.spans = append(n.spans, span{from, until})
	}
	n.word = n.word || word
	names[id] = n
	return ""
}
