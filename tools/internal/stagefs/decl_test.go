package stagefs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const declSrc = `package main

import "os"

// greet says hello.
func greet() {
	// inside
	os.Stdout.WriteString("hi\n")
}

func (c *conn) close()           {}
func (c conn) name() string      { return "" }
func (l *list[T]) push(v T)      {}
func init()                      {}
func init()                      {}

var _ = os.Stderr

var _ = os.Stdout

type conn struct{ fd int }

type list[T any] struct{ items []T }

// Request-line states.
const (
	rlStart = iota // the first byte
	rlMethod

	// Target states.

	rlTarget
	// after the last
)

var a, b = 1, 2 // two at once
`

func TestParseGoNames(t *testing.T) {
	g, err := ParseGo("x.go", []byte(declSrc))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var units []int
	for _, d := range g.Decls {
		names = append(names, d.Name)
		units = append(units, d.Unit)
	}
	want := []string{"greet", "(*conn).close", "conn.name", "(*list).push", "init", "init#2", "_", "_#2",
		"conn", "list", "rlStart", "rlMethod", "rlTarget", "a", "b"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 11, 11}, units); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	if got, want := g.Units[10].Names, []string{"rlStart", "rlMethod", "rlTarget"}; !cmp.Equal(got, want) {
		t.Errorf("unit 10 names = %q, want %q", got, want)
	}
}

func TestParseGoText(t *testing.T) {
	g, err := ParseGo("x.go", []byte(declSrc))
	if err != nil {
		t.Fatal(err)
	}
	text := func(name string) string {
		d, ok := g.Decl(name)
		if !ok {
			t.Fatalf("no declaration %s", name)
		}
		return d.Text
	}
	for name, want := range map[string]string{
		// The doc comment and the comment in the body are part of a function.
		"greet": "// greet says hello.\nfunc greet() {\n\t// inside\n\tos.Stdout.WriteString(\"hi\\n\")\n}",
		// A grouped spec is printed alone, so alignment with its neighbours
		// does not count; the group's doc comment belongs to its first spec,
		// its line comment to it.
		"rlStart":  "const\n// Request-line states.\nrlStart = iota // the first byte",
		"rlMethod": "const\nrlMethod",
		// A heading comment inside the group belongs to the spec it heads,
		// and a comment after the last spec to the last spec.
		"rlTarget": "const\n// Target states.\nrlTarget\n// after the last",
		"a":        "var a, b = 1, 2 // two at once",
		"b":        "var a, b = 1, 2 // two at once",
	} {
		if got := text(name); got != want {
			t.Errorf("text of %s = %q, want %q", name, got, want)
		}
	}

	// Units are whole lines, from the doc comment to the end of the last line.
	u := g.Units[0]
	if got, want := declSrc[u.Start:u.End], "// greet says hello.\nfunc greet() {\n\t// inside\n\tos.Stdout.WriteString(\"hi\\n\")\n}\n"; got != want {
		t.Errorf("unit 0 source = %q, want %q", got, want)
	}
	u = g.Units[11]
	if got, want := declSrc[u.Start:u.End], "var a, b = 1, 2 // two at once\n"; got != want {
		t.Errorf("unit 11 source = %q, want %q", got, want)
	}
}

func TestCompareDecls(t *testing.T) {
	old := "package main\n\n// f does f.\nfunc f() {}\n\nfunc g() {}\n\nconst (\n\ta = 1\n\tb = 2\n)\n\nfunc gone() {}\n"
	tests := []struct {
		name, new string
		want      []DeclChange
	}{
		{"identical", old, nil},
		{
			name: "layout alone is no change",
			new:  "package main\n\n// f does f.\nfunc f() {}\n\nfunc g() {}\n\nconst (\n\ta    = 1\n\tb    = 2\n\tlong = 3\n)\n\nfunc gone() {}\n",
			want: []DeclChange{{Added, "long"}},
		},
		{
			name: "doc comment, body, removal and addition",
			new:  "package main\n\n// f does f, now better.\nfunc f() {}\n\nfunc g() { f() }\n\nfunc h() {}\n\nconst (\n\ta = 1\n\tb = 3\n)\n",
			want: []DeclChange{{Modified, "f"}, {Modified, "g"}, {Added, "h"}, {Modified, "b"}, {Removed, "gone"}},
		},
		{
			name: "const becomes var",
			new:  "package main\n\n// f does f.\nfunc f() {}\n\nfunc g() {}\n\nvar (\n\ta = 1\n\tb = 2\n)\n\nfunc gone() {}\n",
			want: []DeclChange{{Modified, "a"}, {Modified, "b"}},
		},
	}
	o, err := ParseGo("old.go", []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseGo("new.go", []byte(tt.new))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, CompareDecls(o, n)); diff != "" {
				t.Errorf("CompareDecls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsGoSource(t *testing.T) {
	for p, want := range map[string]bool{
		"loop.go":                      true,
		"loop_test.go":                 true,
		"sub/x.go":                     true,
		"testdata/a.go":                false,
		"a/testdata/b/c.go":            false,
		"xps_config.json":              false,
		"testdata/fuzz/FuzzParse/seed": false,
		"go.mod":                       false,
	} {
		if got := IsGoSource(p); got != want {
			t.Errorf("IsGoSource(%q) = %v, want %v", p, got, want)
		}
	}
}
