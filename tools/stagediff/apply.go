package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"expserver-go/tools/internal/stagefs"
)

// carry runs -carry for stage n and returns the exit status: 1 when some
// edit must be made by hand, so a script cannot mistake a partial carry for
// a complete one.
func (t *tool) carry(stages []stagefs.Stage, n stagefs.Stage, base baseTree, only []string, dryRun bool) int {
	fixes, notes, err := loadFix(t.root, n, base, only)
	if err != nil {
		fmt.Fprintln(t.stderr, "stagediff:", err)
		return 1
	}
	for _, note := range notes {
		fmt.Fprintln(t.stdout, note)
	}
	if len(fixes) == 0 {
		what := "its files"
		if len(only) > 0 {
			what = strings.Join(only, ", ")
		}
		fmt.Fprintf(t.stdout, "stagediff: %s has no edits to %s against the base; nothing to carry\n", n.Dir(), what)
		return 0
	}
	verb := "carried"
	if dryRun {
		verb = "would carry"
	}
	var done []*stageCarry
	for _, later := range stages {
		if later.Num <= n.Num {
			continue
		}
		sc := &stageCarry{root: t.root, from: n, stage: later, files: map[string]*target{}}
		for _, f := range fixes {
			sc.apply(f)
		}
		if err := sc.finish(dryRun); err != nil {
			fmt.Fprintln(t.stderr, "stagediff:", err)
			return 1
		}
		done = append(done, sc)
	}
	carried, byHand, files := 0, 0, 0
	for i, sc := range done {
		for _, r := range sc.report {
			switch r.kind {
			case reportCarried:
				fmt.Fprintf(t.stdout, "%s: %s %s\n", r.where, verb, r.label)
				carried++
			case reportByHand:
				fmt.Fprintf(t.stdout, "%s: cannot carry %s: %s; edit it by hand\n", r.where, r.label, r.why)
				byHand++
			case reportSkipped:
				// A declaration a later stage dropped is missing from the
				// stages after it too, so a run of stages is one line.
				if i > 0 && done[i-1].skipped(r) {
					continue
				}
				last := i
				for last+1 < len(done) && done[last+1].skipped(r) {
					last++
				}
				where := r.where
				if last > i {
					where += " to " + done[last].stage.Name
				}
				fmt.Fprintf(t.stdout, "%s: skipped %s: %s\n", where, r.label, r.why)
			}
		}
		files += sc.written
	}
	fmt.Fprintf(t.stdout, "stagediff: %s %d %s from %s into %d %s; %d to make by hand\n",
		verb, carried, plural(carried, "edit", "edits"), n.Dir(), files, plural(files, "file", "files"), byHand)
	if byHand > 0 {
		fmt.Fprintln(t.stdout, "stagediff: once the first of those stages is edited by hand, -carry from it takes the edit on to the stages after it")
		return 1
	}
	return 0
}

// skipped reports whether sc skipped what r skipped, for the same reason.
func (sc *stageCarry) skipped(r reportLine) bool {
	return slices.ContainsFunc(sc.report, func(o reportLine) bool {
		return o.kind == reportSkipped && o.label == r.label && o.why == r.why
	})
}

// stageCarry carries a fix into one later stage.
type stageCarry struct {
	root        string
	from, stage stagefs.Stage
	files       map[string]*target
	goFiles     []string // the stage's Go source files, for finding moved declarations
	report      []reportLine
	written     int
}

type reportKind int

const (
	reportCarried reportKind = iota
	reportByHand
	reportSkipped
)

type reportLine struct {
	kind       reportKind
	where      string // the file or stage folder, slash-separated from the root
	label, why string
}

// target is one file of the later stage and the edits planned for it.
type target struct {
	path    string
	src     []byte
	perm    fs.FileMode
	g       *stagefs.GoFile // nil unless Go source that parses
	edits   []splice
	imports []*fileFix // Go fixes that carried something here, for their imports
}

// splice replaces src[start:end] with text; start == end inserts.
type splice struct {
	start, end int
	text       string
}

// file returns file p of the stage, or nil if it does not exist.
func (sc *stageCarry) file(p string) (*target, error) {
	if tf, ok := sc.files[p]; ok {
		return tf, nil
	}
	name := filepath.Join(sc.root, filepath.FromSlash(sc.stage.Dir()), filepath.FromSlash(p))
	src, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		sc.files[p] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	tf := &target{path: p, src: src, perm: info.Mode().Perm()}
	if stagefs.IsGoSource(p) {
		// A file that does not parse offers no declarations to carry into.
		tf.g, _ = stagefs.ParseGo(path.Join(sc.stage.Dir(), p), src)
	}
	sc.files[p] = tf
	return tf, nil
}

// differs is why an edit is not carried into a stage that went its own way.
func (sc *stageCarry) differs() string {
	return fmt.Sprintf("it differs from what stage %d had before the edit", sc.from.Num)
}

func (sc *stageCarry) where(p string) string { return path.Join(sc.stage.Dir(), p) }

func (sc *stageCarry) add(kind reportKind, where, label, why string) {
	sc.report = append(sc.report, reportLine{kind, where, label, why})
}

// apply plans the edits of fix f in the stage.
func (sc *stageCarry) apply(f *fileFix) {
	tf, err := sc.file(f.path)
	if err != nil {
		sc.add(reportByHand, sc.where(f.path), "M "+f.path, err.Error())
		return
	}
	if f.newGo == nil {
		// A whole file, such as testdata: carried if it is still the old one.
		label := "M " + f.path
		switch {
		case tf == nil:
			sc.add(reportSkipped, sc.stage.Dir(), label, "no "+f.path)
		case bytes.Equal(tf.src, f.new):
		case bytes.Equal(tf.src, f.old):
			sc.plan(tf, splice{0, len(tf.src), string(f.new)}, label, nil)
		default:
			sc.add(reportByHand, sc.where(f.path), label, sc.differs())
		}
		return
	}
	for _, u := range f.units {
		sc.applyUnit(f, u)
	}
}

// applyUnit plans one declaration's edit.
func (sc *stageCarry) applyUnit(f *fileFix, u unitFix) {
	var names []string
	if u.old != nil {
		names = append(names, u.old.Names...)
	}
	if u.new != nil {
		names = append(names, u.new.Names...)
	}
	tf, found, err := sc.find(f.path, names)
	if err != nil {
		sc.add(reportByHand, sc.stage.Dir(), u.label, err.Error())
		return
	}
	newSrc := func() string { return string(f.new[u.new.Start:u.new.End]) }
	switch u.kind {
	case stagefs.Modified:
		switch {
		case found == nil:
			sc.add(reportSkipped, sc.stage.Dir(), u.label, "no such declaration")
		case found.Text == u.new.Text:
		case found.Text == u.old.Text:
			sc.plan(tf, splice{found.Start, found.End, newSrc()}, u.label, f)
		default:
			sc.add(reportByHand, sc.where(tf.path), u.label, sc.differs())
		}
	case stagefs.Removed:
		switch {
		case found == nil:
		case found.Text == u.old.Text:
			start, end := lineBlock(tf.src, found.Start, found.End)
			sc.plan(tf, splice{start, end, ""}, u.label, f)
		default:
			sc.add(reportByHand, sc.where(tf.path), u.label, sc.differs())
		}
	case stagefs.Added:
		switch {
		case found != nil && found.Text == u.new.Text:
		case found != nil:
			sc.add(reportByHand, sc.where(tf.path), u.label, "the stage already has a different declaration of that name")
		default:
			sc.insert(f, u, newSrc())
		}
	}
}

// insert plans adding declaration u of fix f to the stage's copy of the
// file: after the nearest declaration before it in stage N that the copy
// also has, or else before the nearest one after it.
func (sc *stageCarry) insert(f *fileFix, u unitFix, text string) {
	tf, err := sc.file(f.path)
	switch {
	case err != nil:
		sc.add(reportByHand, sc.where(f.path), u.label, err.Error())
		return
	case tf == nil:
		sc.add(reportSkipped, sc.stage.Dir(), u.label, "no "+f.path)
		return
	case tf.g == nil:
		sc.add(reportByHand, sc.where(f.path), u.label, "the stage's copy does not parse")
		return
	}
	units := f.newGo.Units
	for i := u.newIndex - 1; i >= 0; i-- {
		if anchor := sameFileUnit(tf, units[i].Names); anchor != nil {
			sc.plan(tf, splice{anchor.End, anchor.End, "\n" + text}, u.label, f)
			return
		}
	}
	for i := u.newIndex + 1; i < len(units); i++ {
		if anchor := sameFileUnit(tf, units[i].Names); anchor != nil {
			sc.plan(tf, splice{anchor.Start, anchor.Start, text + "\n"}, u.label, f)
			return
		}
	}
	sc.add(reportByHand, sc.where(f.path), u.label, "no declaration beside it is in this stage's copy, so there is nowhere to put it")
}

// sameFileUnit returns the unit of tf that declares one of names.
func sameFileUnit(tf *target, names []string) *stagefs.Unit {
	for i := range tf.g.Units {
		for _, n := range tf.g.Units[i].Names {
			if slices.Contains(names, n) {
				return &tf.g.Units[i]
			}
		}
	}
	return nil
}

// find locates the declaration named by any of names in the stage: in the
// file p if it is there, else in any other Go file, because a later stage
// may have moved it. init functions and blank declarations are told apart
// only by their order in a file, so they are looked for in p alone.
func (sc *stageCarry) find(p string, names []string) (*target, *stagefs.Unit, error) {
	tf, err := sc.file(p)
	if err != nil {
		return nil, nil, err
	}
	if tf != nil && tf.g == nil {
		return nil, nil, fmt.Errorf("%s does not parse", sc.where(p))
	}
	if tf != nil {
		if u := sameFileUnit(tf, names); u != nil {
			return tf, u, nil
		}
	}
	if slices.ContainsFunc(names, func(n string) bool { return n == "init" || n == "_" || strings.Contains(n, "#") }) {
		return nil, nil, nil
	}
	if sc.goFiles == nil {
		all, err := stagefs.Files(sc.root, sc.stage)
		if err != nil {
			return nil, nil, err
		}
		for _, q := range all {
			if stagefs.IsGoSource(q) {
				sc.goFiles = append(sc.goFiles, q)
			}
		}
	}
	var foundIn *target
	var found *stagefs.Unit
	for _, q := range sc.goFiles {
		if q == p {
			continue
		}
		other, err := sc.file(q)
		if err != nil {
			return nil, nil, err
		}
		if other == nil || other.g == nil {
			continue
		}
		if u := sameFileUnit(other, names); u != nil {
			if found != nil {
				return nil, nil, fmt.Errorf("%s and %s both declare one of %s", foundIn.path, q, strings.Join(names, ", "))
			}
			foundIn, found = other, u
		}
	}
	return foundIn, found, nil
}

// plan records edit e of tf unless it overlaps one already planned.
func (sc *stageCarry) plan(tf *target, e splice, label string, f *fileFix) {
	for _, o := range tf.edits {
		overlap := max(o.start, e.start) < min(o.end, e.end) ||
			(e.start == e.end && o.start < e.start && e.start < o.end) ||
			(o.start == o.end && e.start < o.start && o.start < e.end)
		if overlap {
			sc.add(reportByHand, sc.where(tf.path), label, "it overlaps another edit carried into the same place")
			return
		}
	}
	tf.edits = append(tf.edits, e)
	if f != nil && !slices.Contains(tf.imports, f) {
		tf.imports = append(tf.imports, f)
	}
	sc.add(reportCarried, sc.where(tf.path), label, "")
}

// finish applies the planned edits, then the imports they need, and writes
// each changed file unless dryRun.
func (sc *stageCarry) finish(dryRun bool) error {
	var paths []string
	for p, tf := range sc.files {
		if tf != nil && len(tf.edits) > 0 {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		tf := sc.files[p]
		out := applyEdits(tf.src, tf.edits)
		if tf.g != nil {
			var problems []string
			var err error
			out, problems, err = fixImports(sc.where(p), out, tf.imports)
			if err != nil {
				// Never leave a file that no longer parses: none of its
				// edits is carried.
				for i, r := range sc.report {
					if r.kind == reportCarried && r.where == sc.where(p) {
						sc.report[i] = reportLine{reportByHand, r.where, r.label, "the file would not parse after the edits: " + err.Error()}
					}
				}
				continue
			}
			for _, why := range problems {
				sc.add(reportByHand, sc.where(p), "imports", why)
			}
		}
		sc.written++
		if dryRun {
			continue
		}
		if err := os.WriteFile(filepath.Join(sc.root, filepath.FromSlash(sc.stage.Dir()), filepath.FromSlash(p)), out, tf.perm); err != nil {
			return err
		}
	}
	return nil
}

// applyEdits applies non-overlapping edits to src. Edits at the same place
// keep the order they were planned in, so declarations inserted one after
// another keep stage N's order.
func applyEdits(src []byte, edits []splice) []byte {
	edits = slices.Clone(edits)
	slices.SortStableFunc(edits, func(a, b splice) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return a.end - b.end
	})
	var out []byte
	at := 0
	for _, e := range edits {
		out = append(out, src[at:e.start]...)
		out = append(out, e.text...)
		at = e.end
	}
	return append(out, src[at:]...)
}

// lineBlock widens the range of a declaration being removed by one blank
// line beside it, so removing it leaves the file spaced as gofmt keeps it.
func lineBlock(src []byte, start, end int) (int, int) {
	switch {
	case end < len(src) && src[end] == '\n':
		end++
	case start >= 2 && src[start-1] == '\n' && src[start-2] == '\n':
		start--
	}
	return start, end
}

// fixImports adds to src the imports that the fixes carried into it added
// in stage N and that src now uses, and drops those they removed that src
// no longer uses. It returns the new source and what it could not do, or
// an error if the source does not parse.
func fixImports(name string, src []byte, fixes []*fileFix) ([]byte, []string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, nil, err
	}
	have := importPaths(f)
	var block *ast.GenDecl
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT && gd.Lparen.IsValid() {
			block = gd
			break
		}
	}
	offset := func(p token.Pos) int { return fset.Position(p).Offset }
	lineStart := func(off int) int { return bytes.LastIndexByte(src[:off], '\n') + 1 }
	lineEnd := func(off int) int {
		if i := bytes.IndexByte(src[off:], '\n'); i >= 0 {
			return off + i + 1
		}
		return len(src)
	}
	var edits []splice
	var problems []string
	for _, fix := range fixes {
		for _, imp := range fix.addedImports {
			if _, ok := have[imp.Path.Value]; ok || !uses(f, importName(imp)) {
				continue
			}
			have[imp.Path.Value] = imp
			line := "\t" + imp.Path.Value + "\n"
			if imp.Name != nil {
				line = "\t" + imp.Name.Name + " " + imp.Path.Value + "\n"
			}
			if block == nil {
				problems = append(problems, fmt.Sprintf("add import %s: the file has no import ( … ) block", imp.Path.Value))
				continue
			}
			// Beside the import that precedes it in stage N, so it lands
			// in the same group (standard library, module, others).
			at := lineStart(offset(block.Rparen))
			for i := slices.Index(fix.newGo.AST.Imports, imp) - 1; i >= 0; i-- {
				if prev, ok := have[fix.newGo.AST.Imports[i].Path.Value]; ok && slices.Contains(f.Imports, prev) {
					at = lineEnd(offset(prev.End()))
					break
				}
			}
			edits = append(edits, splice{at, at, line})
		}
	}
	for _, fix := range fixes {
		for _, name := range fix.droppedNames {
			if block == nil || name == "_" || name == "." || uses(f, name) {
				continue
			}
			for _, imp := range f.Imports {
				if importName(imp) == name && imp.Pos() > block.Lparen && imp.End() < block.Rparen {
					start := lineStart(offset(imp.Pos()))
					edits = append(edits, splice{start, lineEnd(offset(imp.End())), ""})
				}
			}
		}
	}
	if len(edits) == 0 {
		return src, problems, nil
	}
	// gofmt sorts each group of imports; formatting the file puts the new
	// one in its place and changes nothing else in a gofmt-clean file.
	formatted, err := format.Source(applyEdits(src, dedupe(edits)))
	return formatted, problems, err
}

// uses reports whether f refers to the package imported under name.
func uses(f *ast.File, name string) bool {
	used := false
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == name {
				used = true
			}
		}
		return !used
	})
	return used
}

func dedupe(edits []splice) []splice {
	var out []splice
	for _, e := range edits {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}
