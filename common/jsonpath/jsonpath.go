package jsonpath

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Value is one value of a parsed document together with its path there:
// "" for the top level, then ".key" for an object member and "[i]" for an
// array element ("servers[1].routes[0].type"). A Value can be absent — a key
// its object does not have — and still knows the path it would have had.
// Mirrors JSON_Value.
type Value struct {
	raw  json.RawMessage // nil when absent; otherwise well-formed JSON
	path string
}

// Parse checks that data is exactly one well-formed JSON document and
// returns its top-level value. A syntax error is reported as "LINE:COL:
// message", both counted from 1, columns in characters as editors count
// them. Checking the whole document first means that every error after it
// is about what a value means, never about how it is written.
// Mirrors json_parse_file.
func Parse(data []byte) (Value, error) {
	var doc json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return Value{}, fmt.Errorf("%d:%d: %s", line, col, se)
		}
		return Value{}, err
	}
	return Value{raw: doc}, nil
}

// position returns the line and column of the byte a json.SyntaxError
// stopped at; its Offset counts the bytes read, that one included.
func position(data []byte, offset int64) (line, col int) {
	i := min(max(int(offset)-1, 0), len(data))
	before := data[:i]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[lineStart:]) + 1
}

// Path returns the value's path in its document, "" for the top level.
func (v Value) Path() string { return v.path }

// Absent reports whether the value is a key its object does not have.
func (v Value) Absent() bool { return v.raw == nil }

// Errorf returns the one-line error "PATH: MESSAGE" about v; the top level
// is called "top level".
func (v Value) Errorf(format string, args ...any) error {
	path := v.path
	if path == "" {
		path = "top level"
	}
	return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
}

// Object reads v as an object: it sets *fields[key] to the member named key,
// or to an absent Value with that member's path when v has no such key. A
// key that fields does not name, or one given twice, is an error, reported
// for the first such key in the order of the document.
// Mirrors json_value_get_object.
func (v Value) Object(fields map[string]*Value) error {
	if v.kind() != "object" {
		return v.typeError("an object")
	}
	for key, dst := range fields {
		*dst = Value{path: member(v.path, key)}
	}
	dec := json.NewDecoder(bytes.NewReader(v.raw))
	if _, err := dec.Token(); err != nil {
		return v.Errorf("%v", err)
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return v.Errorf("%v", err)
		}
		key, _ := tok.(string)
		m := Value{path: member(v.path, key)}
		if err := dec.Decode(&m.raw); err != nil {
			return m.Errorf("%v", err)
		}
		dst, ok := fields[key]
		if !ok {
			return m.Errorf("unknown key")
		}
		if seen[key] {
			return v.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		*dst = m
	}
	return nil
}

// Array returns the elements of the array v. An absent v is an empty
// array: a config's arrays are optional, or need at least one element,
// which the caller checks. Mirrors json_object_get_array,
// json_array_get_count and json_array_get_object.
func (v Value) Array() ([]Value, error) {
	if v.raw == nil {
		return nil, nil
	}
	if v.kind() != "array" {
		return nil, v.typeError("an array")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v.raw, &items); err != nil {
		return nil, v.Errorf("%v", err)
	}
	out := make([]Value, len(items))
	for i, item := range items {
		out[i] = Value{raw: item, path: v.path + "[" + strconv.Itoa(i) + "]"}
	}
	return out, nil
}

// Strings returns the array of strings v; an absent v is empty.
func (v Value) Strings() ([]string, error) {
	items, err := v.Array()
	if err != nil || len(items) == 0 {
		return nil, err
	}
	out := make([]string, len(items))
	for i, item := range items {
		if out[i], err = item.Text(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Text returns the string v. Mirrors json_object_get_string.
func (v Value) Text() (string, error) {
	if v.kind() != "string" {
		return "", v.typeError("a string")
	}
	var s string
	if err := json.Unmarshal(v.raw, &s); err != nil {
		return "", v.Errorf("%v", err)
	}
	return s, nil
}

// Int returns the number v, which must be an integer written without a
// fraction or an exponent, and fit an int. Mirrors json_object_get_number.
func (v Value) Int() (int, error) {
	if v.kind() != "number" {
		return 0, v.typeError("a number")
	}
	n, err := strconv.Atoi(string(v.raw))
	if errors.Is(err, strconv.ErrRange) {
		return 0, v.Errorf("%s is out of range", v.raw)
	}
	if err != nil {
		return 0, v.Errorf("want an integer, got number %s", v.raw)
	}
	return n, nil
}

// Number returns the number v as it is written ("1.5", "2e3"), for a
// caller that takes fractions, which Int refuses, and wants them exact, as
// a float64 would not keep them. Mirrors json_object_get_number.
func (v Value) Number() (string, error) {
	if v.kind() != "number" {
		return "", v.typeError("a number")
	}
	return string(bytes.TrimSpace(v.raw)), nil
}

// Kind names the kind of v, as the errors do: "object", "array", "string",
// "number", "boolean", "null", or "nothing" when v is absent. It is for a
// value that may take one of several forms.
func (v Value) Kind() string { return v.kind() }

// Bool returns the boolean v.
func (v Value) Bool() (bool, error) {
	if v.kind() != "boolean" {
		return false, v.typeError("a boolean")
	}
	return string(v.raw) == "true", nil
}

// kind names the kind of v from its first byte, which is enough for
// well-formed JSON; an absent value is "nothing".
func (v Value) kind() string {
	raw := bytes.TrimSpace(v.raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// typeError reports that v is not the kind wanted, showing v as written
// when it is a scalar.
func (v Value) typeError(want string) error {
	got := v.kind()
	switch got {
	case "string", "number", "boolean":
		got += " " + string(bytes.TrimSpace(v.raw))
	}
	return v.Errorf("want %s, got %s", want, got)
}

// member returns the path of key inside the object at path. A key that is
// not a plain word is quoted, so the path stays readable.
func member(path, key string) string {
	plain := key != ""
	for _, c := range []byte(key) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			plain = false
		}
	}
	if !plain {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
