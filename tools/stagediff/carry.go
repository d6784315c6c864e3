package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"expserver-go/tools/internal/stagefs"
)

// A fix belongs in the first stage that has the bug and in every later
// stage that still has the same code. -carry N takes the edits made to
// stage N since the base revision and repeats each one in every later
// stage where the code it replaces is still exactly the code it replaced
// in stage N, declaration by declaration, so the rest of each later file
// is untouched. A later stage whose declaration differs already went its
// own way; the edit is reported there, to be made by hand.

// baseTree is the committed tree -carry reads stage N's old version from.
type baseTree interface {
	// files lists the compared files of stage s, as stagefs.Files does
	// for the working tree.
	files(s stagefs.Stage) ([]string, error)
	// read returns file p (relative to the stage folder) of stage s.
	read(s stagefs.Stage, p string) ([]byte, error)
}

// gitTree reads a revision of the repository with read-only git commands.
type gitTree struct{ root, rev string }

func (g gitTree) git(args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"-C", g.root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %v %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (g gitTree) files(s stagefs.Stage) ([]string, error) {
	// Paths are relative to the root because git runs there (-C).
	out, err := g.git("ls-tree", "-r", "-z", "--name-only", g.rev, "--", s.Dir()+"/")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, name := range strings.Split(string(out), "\x00") {
		rel, ok := strings.CutPrefix(name, s.Dir()+"/")
		if ok && !stagefs.AboutStage(rel) {
			files = append(files, rel)
		}
	}
	slices.Sort(files)
	return files, nil
}

func (g gitTree) read(s stagefs.Stage, p string) ([]byte, error) {
	return g.git("show", g.rev+":./"+path.Join(s.Dir(), p))
}

// fileFix is one file of stage N that differs from its base version.
type fileFix struct {
	path     string
	old, new []byte
	// For Go source only:
	oldGo, newGo *stagefs.GoFile
	units        []unitFix
	addedImports []*ast.ImportSpec // in newGo
	droppedNames []string          // package names of imports the fix removed
}

// unitFix is one top-level declaration the fix changed: replaced
// (old and new), added (new only) or removed (old only).
type unitFix struct {
	kind     stagefs.Kind
	old, new *stagefs.Unit
	newIndex int // index of new in newGo.Units
	label    string
}

// loadFix compares stage n with its base version. Files added to or
// removed from stage n, and edits outside declarations, are not carried;
// notes says so, one line each. If only is not empty, the fix is limited to
// the files and declarations it names, so one fix can be carried while
// other edits to the stage are still under way.
func loadFix(root string, n stagefs.Stage, base baseTree, only []string) (fixes []*fileFix, notes []string, err error) {
	whole := func(p string) bool { return len(only) == 0 || slices.Contains(only, p) }
	before, err := base.files(n)
	if err != nil {
		return nil, nil, err
	}
	after, err := stagefs.Files(root, n)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range before {
		if !slices.Contains(after, p) && whole(p) {
			notes = append(notes, fmt.Sprintf("%s was removed; removals of whole files are not carried", path.Join(n.Dir(), p)))
		}
	}
	for _, p := range after {
		if !slices.Contains(before, p) {
			if !whole(p) {
				continue
			}
			notes = append(notes, fmt.Sprintf("%s is new; new files are not carried, copy it where later stages need it", path.Join(n.Dir(), p)))
			continue
		}
		old, err := base.read(n, p)
		if err != nil {
			return nil, nil, err
		}
		cur, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(n.Dir()), filepath.FromSlash(p)))
		if err != nil {
			return nil, nil, err
		}
		if bytes.Equal(old, cur) || !whole(p) && !stagefs.IsGoSource(p) {
			continue
		}
		f := &fileFix{path: p, old: old, new: cur}
		if stagefs.IsGoSource(p) {
			note, err := f.compareGo(n)
			if err != nil {
				return nil, nil, err
			}
			if !whole(p) {
				f.units = slices.DeleteFunc(f.units, func(u unitFix) bool { return !u.named(only) })
				if len(f.units) == 0 {
					continue
				}
				note = ""
			}
			if note != "" {
				notes = append(notes, note)
			}
		}
		fixes = append(fixes, f)
	}
	return fixes, notes, nil
}

// compareGo finds the declarations and imports the fix to Go file f
// changed. The note, if any, names what it changed that is not carried.
func (f *fileFix) compareGo(n stagefs.Stage) (note string, err error) {
	name := path.Join(n.Dir(), f.path)
	if f.oldGo, err = stagefs.ParseGo(name+" (base)", f.old); err != nil {
		return "", err
	}
	if f.newGo, err = stagefs.ParseGo(name, f.new); err != nil {
		return "", err
	}
	oldOf, newOf := unitsByName(f.oldGo), unitsByName(f.newGo)
	labels := map[string]string{} // declaration name → its manifest line
	for _, d := range stagefs.CompareDecls(f.oldGo, f.newGo) {
		labels[d.Name] = stagefs.Change{Kind: d.Kind, Path: f.path, Decl: d.Name}.String()
	}
	label := func(kind stagefs.Kind, units ...*stagefs.Unit) string {
		var lines []string
		for _, u := range units {
			for _, name := range u.Names {
				if l, ok := labels[name]; ok && !slices.Contains(lines, l) {
					lines = append(lines, l)
				}
			}
		}
		if len(lines) == 0 {
			// The layout between the specs of a group changed, and no
			// single name.
			return stagefs.Change{Kind: kind, Path: f.path, Decl: units[0].Names[0]}.String()
		}
		return strings.Join(lines, ", ")
	}
	var regrouped []string
	for i := range f.oldGo.Units {
		u := &f.oldGo.Units[i]
		partners := partnersOf(u, newOf)
		switch {
		case len(u.Names) == 0:
		case len(partners) == 0:
			f.units = append(f.units, unitFix{kind: stagefs.Removed, old: u, label: label(stagefs.Removed, u)})
		case len(partners) > 1 || len(partnersOf(&f.newGo.Units[partners[0]], oldOf)) > 1:
			regrouped = append(regrouped, u.Names[0])
		case u.Text != f.newGo.Units[partners[0]].Text:
			v := &f.newGo.Units[partners[0]]
			f.units = append(f.units, unitFix{kind: stagefs.Modified, old: u, new: v, newIndex: partners[0], label: label(stagefs.Modified, u, v)})
		}
	}
	for j := range f.newGo.Units {
		v := &f.newGo.Units[j]
		if len(v.Names) > 0 && len(partnersOf(v, oldOf)) == 0 {
			f.units = append(f.units, unitFix{kind: stagefs.Added, new: v, newIndex: j, label: label(stagefs.Added, v)})
		}
	}
	// In the order of the new file, so added declarations are inserted in
	// their order; removals after, in the order of the old file.
	slices.SortStableFunc(f.units, func(a, b unitFix) int {
		if (a.new == nil) != (b.new == nil) {
			if a.new == nil {
				return 1
			}
			return -1
		}
		return a.position() - b.position()
	})

	oldImports, newImports := importPaths(f.oldGo.AST), importPaths(f.newGo.AST)
	for _, imp := range f.newGo.AST.Imports {
		if _, ok := oldImports[imp.Path.Value]; !ok {
			f.addedImports = append(f.addedImports, imp)
		}
	}
	for p, imp := range oldImports {
		if _, ok := newImports[p]; !ok {
			f.droppedNames = append(f.droppedNames, importName(imp))
		}
	}
	var what []string
	if len(regrouped) > 0 {
		what = append(what, "regrouped the declarations of "+strings.Join(regrouped, ", "))
	}
	if !bytes.Equal(skeleton(f.oldGo), skeleton(f.newGo)) {
		what = append(what, "changed text outside declarations (the package clause, or comments between declarations)")
	}
	if len(what) > 0 {
		note = fmt.Sprintf("%s: the edit %s; that part is not carried", name, strings.Join(what, " and "))
	}
	return note, nil
}

// named reports whether u declares one of names.
func (u unitFix) named(names []string) bool {
	for _, unit := range []*stagefs.Unit{u.old, u.new} {
		if unit != nil && slices.ContainsFunc(unit.Names, func(n string) bool { return slices.Contains(names, n) }) {
			return true
		}
	}
	return false
}

// position is where u stands: in the new file, or for a removal in the old.
func (u unitFix) position() int {
	if u.new != nil {
		return u.new.Start
	}
	return u.old.Start
}

func unitsByName(g *stagefs.GoFile) map[string]int {
	m := map[string]int{}
	for i, u := range g.Units {
		for _, n := range u.Names {
			m[n] = i
		}
	}
	return m
}

// partnersOf lists the units of the other version that share a name with u.
func partnersOf(u *stagefs.Unit, other map[string]int) []int {
	var idx []int
	for _, n := range u.Names {
		if i, ok := other[n]; ok && !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	return idx
}

func importPaths(f *ast.File) map[string]*ast.ImportSpec {
	m := map[string]*ast.ImportSpec{}
	for _, imp := range f.Imports {
		m[imp.Path.Value] = imp
	}
	return m
}

// importName is the name an import is used by: its explicit name, or the
// last element of its path that is not a major version.
func importName(imp *ast.ImportSpec) string {
	if imp.Name != nil {
		return imp.Name.Name
	}
	elems := strings.Split(strings.Trim(imp.Path.Value, `"`), "/")
	name := elems[len(elems)-1]
	if len(elems) > 1 && len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
		name = elems[len(elems)-2]
	}
	return name
}

// skeleton is g's source without its declarations and imports, white
// space collapsed: what is left is the package clause and free comments.
func skeleton(g *stagefs.GoFile) []byte {
	src := g.Src
	var cuts [][2]int
	for _, u := range g.Units {
		cuts = append(cuts, [2]int{u.Start, u.End})
	}
	for _, d := range g.AST.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
			cuts = append(cuts, [2]int{g.Fset.Position(gd.Pos()).Offset, g.Fset.Position(gd.End()).Offset})
		}
	}
	slices.SortFunc(cuts, func(a, b [2]int) int { return a[0] - b[0] })
	var out []byte
	at := 0
	for _, c := range cuts {
		out = append(out, src[at:c[0]]...)
		at = c[1]
	}
	out = append(out, src[at:]...)
	return bytes.Join(bytes.Fields(out), []byte(" "))
}
