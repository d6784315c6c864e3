package jsonpath

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSyntaxErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"servers": [}`, `1:14: invalid character '}' looking for beginning of value`},
		{"{\n  \"servers\": [\n    {\"listeners\" []}\n  ]\n}", `3:18: invalid character '[' after object key`},
		{"{\"ü\": x}", `1:7: invalid character 'x' looking for beginning of value`}, // columns count characters
		{"{\"servers\": [\n", `1:14: unexpected end of JSON input`},
		{"", `1:1: unexpected end of JSON input`},
		{"{} {}", `1:4: invalid character '{' after top-level value`},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.doc))
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) = %v, want %q", tc.doc, err, tc.want)
		}
	}
}

// route is the config shape the tests read: one server with its
// listeners and routes, as a stage's config does.
type route struct {
	Path  string
	Types []string
	Port  int
	On    bool
}

// read reads doc as {"servers": [{"port": N, "routes": [{"path": …,
// "types": […], "on": …}]}] and returns the routes, or the first error.
func read(doc string) ([]route, error) {
	top, err := Parse([]byte(doc))
	if err != nil {
		return nil, err
	}
	var servers Value
	if err := top.Object(map[string]*Value{"servers": &servers}); err != nil {
		return nil, err
	}
	list, err := servers.Array()
	if err != nil {
		return nil, err
	}
	var out []route
	for _, s := range list {
		var port, routes Value
		if err := s.Object(map[string]*Value{"port": &port, "routes": &routes}); err != nil {
			return nil, err
		}
		if port.Absent() {
			return nil, port.Errorf("missing")
		}
		n, err := port.Int()
		if err != nil {
			return nil, err
		}
		items, err := routes.Array()
		if err != nil {
			return nil, err
		}
		for _, item := range items {
			var path, types, on Value
			if err := item.Object(map[string]*Value{"path": &path, "types": &types, "on": &on}); err != nil {
				return nil, err
			}
			r := route{Port: n}
			if r.Path, err = path.Text(); err != nil {
				return nil, err
			}
			if r.Types, err = types.Strings(); err != nil {
				return nil, err
			}
			if !on.Absent() {
				if r.On, err = on.Bool(); err != nil {
					return nil, err
				}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func TestRead(t *testing.T) {
	got, err := read(`{"servers": [{"port": 1}, {"port": 2, "routes": [
		{"path": "/a", "types": ["x", "y"], "on": true},
		{"path": "/b"}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []route{{Path: "/a", Types: []string{"x", "y"}, Port: 2, On: true}, {Path: "/b", Port: 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read (-want +got):\n%s", diff)
	}
}

// TestErrorsNamePaths checks that every error starts with the path of the
// value it is about.
func TestErrorsNamePaths(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"top level not an object", `[]`, `top level: want an object, got array`},
		{"unknown key", `{"servers": [], "servr": 1}`, `servr: unknown key`},
		{"unknown key quoted", `{"dir pth": 1}`, `"dir pth": unknown key`},
		{"empty key quoted", `{"": 1}`, `"": unknown key`},
		{"duplicate key", `{"servers": [], "servers": []}`, `top level: duplicate key "servers"`},
		{"duplicate nested key", `{"servers": [{"port": 1, "port": 2}]}`, `servers[0]: duplicate key "port"`},
		{"null array", `{"servers": null}`, `servers: want an array, got null`},
		{"object for array", `{"servers": {}}`, `servers: want an array, got object`},
		{"element type", `{"servers": [true]}`, `servers[0]: want an object, got boolean true`},
		{"absent key", `{"servers": [{}]}`, `servers[0].port: missing`},
		{"number as string", `{"servers": [{"port": "8001"}]}`, `servers[0].port: want a number, got string "8001"`},
		{"fraction", `{"servers": [{"port": 4.5}]}`, `servers[0].port: want an integer, got number 4.5`},
		{"exponent", `{"servers": [{"port": 1e3}]}`, `servers[0].port: want an integer, got number 1e3`},
		{"out of range", `{"servers": [{"port": 99999999999999999999}]}`, `servers[0].port: 99999999999999999999 is out of range`},
		{"string wanted", `{"servers": [{"port": 1, "routes": [{"path": 3}]}]}`, `servers[0].routes[0].path: want a string, got number 3`},
		{"absent string", `{"servers": [{"port": 1, "routes": [{}]}]}`, `servers[0].routes[0].path: want a string, got nothing`},
		{"string element", `{"servers": [{"port": 1, "routes": [{"path": "/", "types": ["a", 2]}]}]}`, `servers[0].routes[0].types[1]: want a string, got number 2`},
		{"boolean wanted", `{"servers": [{"port": 1, "routes": [{"path": "/", "on": "yes"}]}]}`, `servers[0].routes[0].on: want a boolean, got string "yes"`},
		{"unknown nested key", `{"servers": [{"port": 1, "routes": [{"path": "/", "typ": []}]}]}`, `servers[0].routes[0].typ: unknown key`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := read(tc.doc)
			if err == nil || err.Error() != tc.want {
				t.Errorf("read(%s) = %v, want %q", tc.doc, err, tc.want)
			}
		})
	}
}

// TestAbsentValues checks that an absent key reads as absent with its
// path, and an absent array as empty.
func TestAbsentValues(t *testing.T) {
	top, err := Parse([]byte(`{"a": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	var a, b Value
	if err := top.Object(map[string]*Value{"a": &a, "b": &b}); err != nil {
		t.Fatal(err)
	}
	if a.Absent() || !b.Absent() || a.Path() != "a" || b.Path() != "b" {
		t.Errorf("a: absent %v path %q; b: absent %v path %q", a.Absent(), a.Path(), b.Absent(), b.Path())
	}
	if items, err := b.Array(); items != nil || err != nil {
		t.Errorf("absent Array() = %v, %v; want empty", items, err)
	}
	if s, err := b.Strings(); s != nil || err != nil {
		t.Errorf("absent Strings() = %v, %v; want empty", s, err)
	}
	if top.Path() != "" {
		t.Errorf("top level path %q, want empty", top.Path())
	}
}

// TestNumberAndKind checks Number, which gives a number as written, and
// Kind.
func TestNumberAndKind(t *testing.T) {
	top, err := Parse([]byte(`{"n": 1.50, "e": -2e3, "s": "1", "a": [], "z": null}`))
	if err != nil {
		t.Fatal(err)
	}
	var n, e, s, a, z, absent Value
	if err := top.Object(map[string]*Value{"n": &n, "e": &e, "s": &s, "a": &a, "z": &z, "absent": &absent}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    Value
		want string
	}{{n, "1.50"}, {e, "-2e3"}} {
		if got, err := tc.v.Number(); got != tc.want || err != nil {
			t.Errorf("%s.Number() = %q, %v; want %q", tc.v.Path(), got, err, tc.want)
		}
	}
	if _, err := s.Number(); err == nil || err.Error() != `s: want a number, got string "1"` {
		t.Errorf("s.Number() error %v", err)
	}
	kinds := map[string]Value{"object": top, "number": n, "string": s, "array": a, "null": z, "nothing": absent}
	for want, v := range kinds {
		if got := v.Kind(); got != want {
			t.Errorf("Kind() of %q = %q, want %q", v.Path(), got, want)
		}
	}
}
