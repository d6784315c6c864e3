package main

import (
	"errors"
	"testing"
)

// mustRequest parses a complete, valid head.
func mustRequest(t *testing.T, head string) *httpRequest {
	t.Helper()
	var p requestParser
	res, err := p.parse([]byte(head))
	if err != nil || res != parseDone {
		t.Fatalf("parse(%q) = %d, %v", head, res, err)
	}
	r, err := newHTTPRequest([]byte(head), &p)
	if err != nil {
		t.Fatalf("newHTTPRequest(%q): %v", head, err)
	}
	return r
}

func TestGetHeader(t *testing.T) {
	r := mustRequest(t, "GET / HTTP/1.1\r\nHost: x\r\ncontent-TYPE: text/plain\r\nAccept: a\r\nACCEPT: b\r\nX-Empty:\r\n\r\n")
	cases := []struct {
		key, val string
		ok       bool
	}{
		{"Content-Type", "text/plain", true},
		{"content-type", "text/plain", true},
		{"CONTENT-TYPE", "text/plain", true},
		{"accept", "a", true}, // the first of two
		{"x-empty", "", true},
		{"Content-Length", "", false},
		{"Accep", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		val, ok := r.getHeader(c.key)
		if val != c.val || ok != c.ok {
			t.Errorf("getHeader(%q) = %q, %v; want %q, %v", c.key, val, ok, c.val, c.ok)
		}
	}
}

func TestSerialize(t *testing.T) {
	cases := []struct{ name, head, want string }{
		{
			name: "CRLF head with trimmed values and duplicates",
			head: "GET /a?b=1 HTTP/1.1\r\nHost:  example.com \r\nAccept: */*\r\nAccept:\ttext/html\r\nX-Empty:\r\n\r\n",
			want: "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nAccept: text/html\r\nX-Empty: \r\n\r\n",
		},
		{
			name: "bare LF and leading empty lines become CRLF",
			head: "\n\nPOST /up HTTP/1.0\nContent-Length: 3\n\n",
			want: "POST /up HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
		},
		{
			name: "request line kept as received",
			head: "GET   http://h:80/x   HTTP/1.1\r\nHost: h\r\n\r\n",
			want: "GET   http://h:80/x   HTTP/1.1\r\nHost: h\r\n\r\n",
		},
		{
			name: "no headers",
			head: "GET / HTTP/1.0\r\n\r\n",
			want: "GET / HTTP/1.0\r\n\r\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(mustRequest(t, c.head).serialize()); got != c.want {
				t.Errorf("serialize =\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func TestCleanPathname(t *testing.T) {
	good := []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"/index.html", "/index.html"},
		{"/a/b/c.txt", "/a/b/c.txt"},
		{"/dir/", "/dir/"},
		{"//", "/"},
		{"//sample.pdf", "/sample.pdf"},
		{"/a//b///c", "/a/b/c"},
		{"/./a/./b/.", "/a/b/"},
		{"/a/b/..", "/a/"},
		{"/a/b/../", "/a/"},
		{"/a/../../b", "/b"},
		{"/..", "/"},
		{"/../a", "/a"},
		{"/../../../../etc/passwd", "/etc/passwd"},
		{"/a/b/../../../..", "/"},
		{"/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"},
		{"/%2E%2E/%2e./.%2E/x", "/x"},
		{"/a/%2f/b", "/a/b"},
		{"/a%2F..%2F..%2Fb", "/b"},
		{"/..%2f..%2fetc", "/etc"},
		{"/my%20file.txt", "/my file.txt"},
		{"/a%20/%20b", "/a / b"},
		{"/caf%C3%A9.txt", "/café.txt"},
		{"/café.txt", "/café.txt"},
		{"/%41%42c", "/ABc"},
		{"/a+b", "/a+b"},
		{"/%252e%252e/x", "/%2e%2e/x"}, // decoded once only
		{"/...", "/..."},
		{"/a/.../b", "/a/.../b"},
		{"/.hidden/..x", "/.hidden/..x"},
		{"*", "/*"},
		{"a/b", "/a/b"},
	}
	for _, c := range good {
		got, err := cleanPathname(c.in)
		if err != nil || got != c.want {
			t.Errorf("cleanPathname(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}

	bad := []string{
		"/%",
		"/%4",
		"/a%",
		"/a%zz",
		"/%g0",
		"/%0g",
		"/%00",
		"/a%00.txt",
		"/%%41",
	}
	for _, in := range bad {
		got, err := cleanPathname(in)
		var he *httpError
		if !errors.As(err, &he) || he.status != 400 {
			t.Errorf("cleanPathname(%q) = %q, %v; want a 400 error", in, got, err)
		}
	}
}

func TestParseContentLength(t *testing.T) {
	cases := []struct {
		in   string
		n    int64
		okay bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"0042", 42, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"", 0, false},
		{"+1", 0, false},
		{"-1", 0, false},
		{"1e3", 0, false},
		{" 1", 0, false},
		{"1_000", 0, false},
	}
	for _, c := range cases {
		n, ok := parseContentLength(c.in)
		if n != c.n || ok != c.okay {
			t.Errorf("parseContentLength(%q) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.okay)
		}
	}
}

func TestNewHTTPRequestNeedsCompleteHead(t *testing.T) {
	var p requestParser
	head := []byte("GET / HTTP/1.1\r\nHost: x\r\n")
	if res, err := p.parse(head); res != parseAgain || err != nil {
		t.Fatalf("parse = %d, %v", res, err)
	}
	if _, err := newHTTPRequest(head, &p); err == nil {
		t.Error("newHTTPRequest accepted an incomplete head")
	}
}
