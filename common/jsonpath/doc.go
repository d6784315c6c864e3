// Package jsonpath reads a JSON document value by value and names the path
// of every value it rejects: the Go edition of parson, the JSON reader the
// course hands over with its config stage.
//
// A config file is read once, at start, and a mistake in it must stop the
// server with one line its author can act on. encoding/json decodes into
// structs and reports a wrong type by Go field; this package keeps each
// value beside its path in the document, so every error starts with that
// path:
//
//	servers[1].routes[0].type: want a string, got number 3
//	servers[0].listeners[0]: duplicate key "host"
//	3:18: invalid character '[' after object key
//
// Parse checks the whole document's syntax first (a syntax error names its
// line and column) and returns the top-level Value; Object, Array, Text,
// Int and Bool then read a value as the kind the caller expects. An object
// key the caller does not name is an error, and so is a key given twice,
// which encoding/json would resolve by keeping the last without a word.
// A key absent from an object gives an absent Value, which still knows its
// path, so "missing" can name the key.
package jsonpath
