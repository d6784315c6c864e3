package harness

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestDialFromSourceAddress: a client bound to an address of 127.0.0.0/8
// arrives from it, and 127.255.255.255, which would arrive as 127.0.0.1,
// is refused.
func TestDialFromSourceAddress(t *testing.T) {
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
	for _, src := range []string{"127.0.0.2", "127.0.1.255", "127.255.255.254"} {
		c, err := DialFrom(src, addr)
		if err != nil {
			t.Fatalf("DialFrom(%s): %v", src, err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.RemoteAddr().(*net.TCPAddr).IP.String(); got != src {
			t.Errorf("a client bound to %s arrived from %s", src, got)
		}
		s.Close()
		c.Close()
	}
	for _, src := range []string{"127.255.255.255", "::1", "localhost"} {
		if c, err := DialFrom(src, addr); err == nil {
			c.Close()
			t.Errorf("DialFrom(%q) succeeded", src)
		}
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	io.WriteString(z, s)
	z.Close()
	return b.Bytes()
}

func chunks(parts ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
	}
	return b.Bytes()
}

// TestPayload decodes bodies as a browser would, and refuses what a
// browser might forgive.
func TestPayload(t *testing.T) {
	z := gzipped(t, "hello, gzip")
	whole := append(chunks(z[:5], z[5:]), "0\r\n\r\n"...)
	cases := []struct {
		name, head string
		body       []byte
		want       string // the payload, or "error: …" naming what the error says
	}{
		{"chunked gzip", "Transfer-Encoding: chunked\r\nContent-Encoding: gzip", whole, "hello, gzip"},
		{"Content-Length", "Content-Length: 5", []byte("hello"), "hello"},
		{"read to the close", "", []byte("hello"), "hello"},
		{"no last chunk", "Transfer-Encoding: chunked\r\nContent-Encoding: gzip", chunks(z), "error: unexpected EOF"},
		{"trailers", "Transfer-Encoding: chunked", []byte("2\r\nhi\r\n0\r\nX-A: b\r\n\r\n"), "error: after the last chunk"},
		{"bytes after the last chunk", "Transfer-Encoding: chunked", []byte("2\r\nhi\r\n0\r\n\r\nmore"), "error: after the last chunk"},
		{"an empty chunk mid-body", "Transfer-Encoding: chunked", []byte("0\r\n\r\n2\r\nhi\r\n0\r\n\r\n"), "error: after the last chunk"},
		{"short of Content-Length", "Content-Length: 9", []byte("hello"), "error: short of its Content-Length"},
		{"past Content-Length", "Content-Length: 2", []byte("hello"), "error: after Content-Length bytes"},
		{"both framings", "Content-Length: 5\r\nTransfer-Encoding: chunked", []byte("hello"), "error: both"},
		{"two gzip members", "Content-Encoding: gzip", append(append([]byte{}, z...), z...), "error: after the gzip member"},
		{"cut gzip", "Content-Encoding: gzip", z[:len(z)-4], "error: unexpected EOF"},
		{"br", "Content-Encoding: br", []byte("x"), "error: Content-Encoding"},
	}
	for _, tc := range cases {
		raw := "HTTP/1.1 200 OK\r\n" + tc.head
		if tc.head != "" {
			raw += "\r\n"
		}
		r, err := ParseResponse(append([]byte(raw+"\r\n"), tc.body...))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := DecodeBody(r)
		want, wantErr := strings.CutPrefix(tc.want, "error: ")
		switch {
		case wantErr && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %q, %v; want an error about %q", tc.name, got, err, want)
		case !wantErr && (err != nil || string(got) != want):
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, want)
		}
	}
	if _, err := Dechunk(chunks([]byte("cut"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Dechunk of a body without its last chunk: %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestScriptedUpstream: it counts connections, keeps heads, runs the
// script, and its Close ends a script that hangs.
func TestScriptedUpstream(t *testing.T) {
	u, err := StartScripted(func(x *Exchange) {
		if x.Path() == "/hang" {
			x.Hang()
			return
		}
		Answer(x.Method() + " " + x.Path())(x)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	r, _, err := RoundTrip(u.Addr(), "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", time.Second)
	if err != nil || string(r.Body) != "POST /echo" {
		t.Fatalf("answer: %v, %v", r, err)
	}
	c, err := Dial(u.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /hang HTTP/1.1\r\n\r\n")
	if err := WaitFor(time.Second, func() error {
		if u.Accepted() != 2 || u.Open() != 1 || len(u.Heads()) != 2 {
			return fmt.Errorf("accepted %d, open %d, heads %q", u.Accepted(), u.Open(), u.Heads())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	u.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after Close, the hanging connection read %d bytes, %v; want EOF", n, err)
	}
}

// TestBlackhole: a connect to it neither succeeds nor fails.
func TestBlackhole(t *testing.T) {
	b, err := StartBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := net.DialTimeout("tcp4", b.Addr, 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("a connect to the blackhole succeeded")
	}
	if !dialTimedOut(err) {
		t.Errorf("a connect to the blackhole failed with %v; want a timeout", err)
	}
}
