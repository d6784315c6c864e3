package stagefs

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"path"
	"strings"
)

// IsGoSource reports whether the compared file p (relative to a stage
// folder) is compared declaration by declaration: a .go file outside any
// testdata folder. Files under testdata are data to the go tool, so they
// are compared as whole files, like README.md or xps_config.json.
func IsGoSource(p string) bool {
	if path.Ext(p) != ".go" {
		return false
	}
	for _, elem := range strings.Split(path.Dir(p), "/") {
		if elem == "testdata" {
			return false
		}
	}
	return true
}

// Decl is one name declared at the top level of a Go file: a function, a
// method, or one name of a const, var or type declaration.
type Decl struct {
	// Name is how a manifest names the declaration: "serveListing",
	// "(*session).check" or "conn.close" for methods (the receiver type
	// as written, without type parameters), "maxIovecs" for a constant.
	// A name declared more than once in a file (init functions, the blank
	// identifier) gets "#2", "#3"… from its second occurrence on.
	Name string
	// Text is what is compared: the declaration printed by go/printer with
	// its comments, so a changed doc comment is a change. Printing
	// normalises layout, so a neighbour that realigns a const block does
	// not change the other constants in it.
	Text string
	// Unit is the index in GoFile.Units of the top-level declaration the
	// name belongs to.
	Unit int
}

// Unit is one top-level declaration as it stands in the source: a function
// or method, or a const, var or type declaration with all its specs. It is
// the piece stagediff -carry replaces.
type Unit struct {
	Names []string // the Decl names it declares, in source order
	Text  string   // printed with comments, for comparison
	// Start and End are byte offsets of its source: from the start of the
	// line holding its doc comment (or its first token) to just after the
	// newline that ends its last line, including a trailing comment there.
	Start, End int
}

// GoFile is a parsed Go source file with its top-level declarations.
type GoFile struct {
	Src   []byte
	Fset  *token.FileSet
	AST   *ast.File
	Decls []Decl
	Units []Unit
}

// ParseGo parses src, the content of the file named name, and lists its
// declarations. Imports are not declarations: they follow from the code
// that uses them, and a manifest declares them with the file's M line.
func ParseGo(name string, src []byte) (*GoFile, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	g := &GoFile{Src: src, Fset: fset, AST: f}
	seen := map[string]int{}
	add := func(name, text string) {
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s#%d", name, n)
		}
		g.Decls = append(g.Decls, Decl{Name: name, Text: text, Unit: len(g.Units) - 1})
		g.Units[len(g.Units)-1].Names = append(g.Units[len(g.Units)-1].Names, name)
	}
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
			continue
		}
		text, err := g.print(d)
		if err != nil {
			return nil, err
		}
		start, end := g.extent(d)
		g.Units = append(g.Units, Unit{Text: text, Start: start, End: end})
		switch d := d.(type) {
		case *ast.FuncDecl:
			add(funcName(d), text)
		case *ast.GenDecl:
			if !d.Lparen.IsValid() {
				// An unparenthesised declaration has one spec, whose
				// printed form is the unit's.
				for _, n := range specNames(d.Specs[0]) {
					add(n, text)
				}
				continue
			}
			for i, s := range d.Specs {
				text, err := g.groupSpecText(d, i)
				if err != nil {
					return nil, err
				}
				for _, n := range specNames(s) {
					add(n, text)
				}
			}
		}
	}
	return g, nil
}

// Decl returns the declaration named name, if the file has one.
func (g *GoFile) Decl(name string) (Decl, bool) {
	for _, d := range g.Decls {
		if d.Name == name {
			return d, true
		}
	}
	return Decl{}, false
}

// print prints node with the file's comments that fall within it.
func (g *GoFile) print(node ast.Node) (string, error) {
	var b bytes.Buffer
	cfg := printer.Config{Mode: printer.UseSpaces | printer.TabIndent, Tabwidth: 8}
	if err := cfg.Fprint(&b, g.Fset, &printer.CommentedNode{Node: node, Comments: g.AST.Comments}); err != nil {
		return "", err
	}
	// The printer ends a trailing line comment with a newline; trimming
	// it makes the text of a declaration the same however it ends.
	return strings.TrimRight(b.String(), "\n"), nil
}

// groupSpecText is the compared text of spec i of the parenthesised
// declaration d: the keyword, the spec with its own comments, and every
// other comment of the group that stands before it and after the spec
// before it. The group's doc comment thus counts as part of its first
// spec, and a heading comment inside the group as part of the spec it
// heads, so no comment of the group escapes comparison.
func (g *GoFile) groupSpecText(d *ast.GenDecl, i int) (string, error) {
	s := d.Specs[i]
	var b strings.Builder
	b.WriteString(d.Tok.String() + "\n")
	lo, hi := d.Lparen, specStart(s)
	if i == 0 && d.Doc != nil {
		lo = d.Doc.Pos()
	}
	if i > 0 {
		lo = specEnd(d.Specs[i-1])
	}
	var after strings.Builder
	for _, c := range g.AST.Comments {
		switch {
		case c.Pos() >= lo && c.End() <= hi:
			writeComment(&b, c)
		case i == len(d.Specs)-1 && c.Pos() >= specEnd(s) && c.End() <= d.Rparen:
			// Comments after the last spec, before the closing parenthesis.
			writeComment(&after, c)
		}
	}
	text, err := g.print(s)
	if err != nil {
		return "", err
	}
	b.WriteString(text)
	if after.Len() > 0 {
		b.WriteString("\n" + strings.TrimRight(after.String(), "\n"))
	}
	return b.String(), nil
}

// writeComment writes the lines of comment group c, each ending in a newline.
func writeComment(w *strings.Builder, c *ast.CommentGroup) {
	for _, line := range c.List {
		w.WriteString(line.Text + "\n")
	}
}

// specStart is where a spec's source begins: its doc comment, if any.
func specStart(s ast.Spec) token.Pos {
	var doc *ast.CommentGroup
	switch s := s.(type) {
	case *ast.ValueSpec:
		doc = s.Doc
	case *ast.TypeSpec:
		doc = s.Doc
	}
	if doc != nil {
		return doc.Pos()
	}
	return s.Pos()
}

// specEnd is where a spec's source ends: after its line comment, if any.
func specEnd(s ast.Spec) token.Pos {
	var c *ast.CommentGroup
	switch s := s.(type) {
	case *ast.ValueSpec:
		c = s.Comment
	case *ast.TypeSpec:
		c = s.Comment
	}
	if c != nil && c.End() > s.End() {
		return c.End()
	}
	return s.End()
}

// extent returns the byte range of top-level declaration d: whole lines,
// from its doc comment to the end of its last line.
func (g *GoFile) extent(d ast.Decl) (start, end int) {
	tf := g.Fset.File(d.Pos())
	var doc *ast.CommentGroup
	switch d := d.(type) {
	case *ast.FuncDecl:
		doc = d.Doc
	case *ast.GenDecl:
		doc = d.Doc
	}
	first := d.Pos()
	if doc != nil {
		first = doc.Pos()
	}
	start = tf.Offset(tf.LineStart(tf.Line(first)))
	end = tf.Offset(d.End())
	if i := bytes.IndexByte(g.Src[end:], '\n'); i >= 0 {
		end += i + 1
	} else {
		end = len(g.Src)
	}
	return start, end
}

// funcName names a function "f" and a method "T.m" or "(*T).m", as Go
// itself names methods in stack traces and profiles.
func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	t := d.Recv.List[0].Type
	star := false
	for {
		switch e := t.(type) {
		case *ast.ParenExpr:
			t = e.X
			continue
		case *ast.StarExpr:
			star = true
			t = e.X
			continue
		case *ast.IndexExpr:
			t = e.X
			continue
		case *ast.IndexListExpr:
			t = e.X
			continue
		}
		break
	}
	recv := "?"
	if id, ok := t.(*ast.Ident); ok {
		recv = id.Name
	}
	if star {
		return "(*" + recv + ")." + d.Name.Name
	}
	return recv + "." + d.Name.Name
}

// specNames lists the names a const, var or type spec declares.
func specNames(s ast.Spec) []string {
	switch s := s.(type) {
	case *ast.TypeSpec:
		return []string{s.Name.Name}
	case *ast.ValueSpec:
		names := make([]string, len(s.Names))
		for i, n := range s.Names {
			names[i] = n.Name
		}
		return names
	}
	return nil
}

// DeclChange is one declaration that differs between two versions of a
// file.
type DeclChange struct {
	Kind Kind
	Name string
}

// CompareDecls lists the declarations that differ from old to new: added
// and modified ones in new's source order, then removed ones in old's.
func CompareDecls(old, new *GoFile) []DeclChange {
	var changes []DeclChange
	for _, d := range new.Decls {
		o, ok := old.Decl(d.Name)
		switch {
		case !ok:
			changes = append(changes, DeclChange{Added, d.Name})
		case o.Text != d.Text:
			changes = append(changes, DeclChange{Modified, d.Name})
		}
	}
	for _, d := range old.Decls {
		if _, ok := new.Decl(d.Name); !ok {
			changes = append(changes, DeclChange{Removed, d.Name})
		}
	}
	return changes
}
