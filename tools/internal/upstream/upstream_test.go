package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/harness"
)

var modTime = time.Date(2024, 3, 9, 10, 11, 12, 0, time.UTC)

// fixture lays out DIR inside a parent that also holds a secret file, so
// traversal tests have something real to fail to reach.
func fixture(t *testing.T) (dir string, jpg []byte) {
	t.Helper()
	parent := t.TempDir()
	dir = filepath.Join(parent, "root")
	jpg = make([]byte, 300_000)
	rand.New(rand.NewSource(1)).Read(jpg)
	files := map[string]string{
		"hello.txt":           "hello, upstream\n",
		"pic.jpg":             string(jpg),
		"sub/inner.txt":       "inner",
		"sub/Deeper/x.pdf":    "%PDF-1.4",
		"sub/a b&c.txt":       "odd name",
		"site/index.html":     "<!DOCTYPE html><title>site</title>",
		"../secret.txt":       "TOP SECRET",
		"../outside/leak.txt": "TOP SECRET",
	}
	if err := harness.WriteTree(dir, files); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		p := filepath.Join(dir, name)
		if err := os.Chtimes(p, modTime, modTime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	return dir, jpg
}

// start runs the server in-process on a free port.
func start(t *testing.T, dir string) (addr string, log *harness.LockedBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log = &harness.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- serve(ln, dir, log) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve returned %v, want net.ErrClosed", err)
		}
	})
	return ln.Addr().String(), log
}

// exchangeRaw sends raw bytes and reads until the server closes. Reaching
// end of file before the deadline is itself the check that the server
// closes after one response.
func exchangeRaw(t *testing.T, addr, req string) []byte {
	t.Helper()
	got, err := roundTrip(addr, req)
	if err != nil {
		t.Fatalf("%q: %v", trunc(req), err)
	}
	return got
}

// roundTrip is exchangeRaw for goroutines other than the test's own, where
// t.Fatal may not be called.
func roundTrip(addr, req string) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Written concurrently so a large request cannot deadlock against a
	// server that answers before reading all of it.
	go io.WriteString(c, req)
	got, err := io.ReadAll(c)
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w (server did not close?)", err)
	}
	return got, nil
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

type response struct {
	status string
	names  []string
	header map[string]string
	body   []byte
}

func parse(t *testing.T, raw []byte) response {
	t.Helper()
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no end of head in %q", raw)
	}
	lines := strings.Split(string(head), "\r\n")
	r := response{status: lines[0], header: map[string]string{}, body: body}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("malformed header line %q", l)
		}
		r.names = append(r.names, name)
		r.header[name] = value
	}
	return r
}

func get(t *testing.T, addr, method, target string) response {
	t.Helper()
	return parse(t, exchangeRaw(t, addr, method+" "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"))
}

var (
	fileHeaders  = []string{"Server", "Date", "Content-type", "Content-Length", "Last-Modified"}
	errorHeaders = []string{"Server", "Date", "Connection", "Content-Type", "Content-Length"}
)

func checkHeaderNames(t *testing.T, r response, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, r.names); diff != "" {
		t.Errorf("header names (-want +got):\n%s", diff)
	}
	if got := r.header["Server"]; got != serverName {
		t.Errorf("Server = %q, want %q", got, serverName)
	}
	if _, err := time.Parse(httpDate, r.header["Date"]); err != nil {
		t.Errorf("Date %q is not an IMF-fixdate: %v", r.header["Date"], err)
	}
}

func TestFile(t *testing.T) {
	dir, jpg := fixture(t)
	addr, _ := start(t, dir)
	for _, tc := range []struct {
		target, ctype string
		body          []byte
	}{
		{"/hello.txt", "text/plain", []byte("hello, upstream\n")},
		{"/pic.jpg", "image/jpeg", jpg},
		{"/sub/Deeper/x.pdf?v=2", "application/pdf", []byte("%PDF-1.4")},
		{"/sub/a%20b%26c.txt", "text/plain", []byte("odd name")},
	} {
		r := get(t, addr, "GET", tc.target)
		if r.status != "HTTP/1.0 200 OK" {
			t.Errorf("%s: status %q", tc.target, r.status)
		}
		checkHeaderNames(t, r, fileHeaders)
		want := map[string]string{
			"Content-type":   tc.ctype,
			"Content-Length": strconv.Itoa(len(tc.body)),
			"Last-Modified":  "Sat, 09 Mar 2024 10:11:12 GMT",
		}
		for k, v := range want {
			if r.header[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.target, k, r.header[k], v)
			}
		}
		if !bytes.Equal(r.body, tc.body) {
			t.Errorf("%s: body differs from the file (%d bytes, want %d)", tc.target, len(r.body), len(tc.body))
		}
	}
}

func TestHead(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	r := get(t, addr, "HEAD", "/hello.txt")
	if r.status != "HTTP/1.0 200 OK" || r.header["Content-Length"] != "16" {
		t.Errorf("HEAD: status %q, Content-Length %q", r.status, r.header["Content-Length"])
	}
	checkHeaderNames(t, r, fileHeaders)
	if len(r.body) != 0 {
		t.Errorf("HEAD sent a body: %q", r.body)
	}
	r = get(t, addr, "HEAD", "/missing")
	if r.status != "HTTP/1.0 404 File not found" || len(r.body) != 0 || r.header["Content-Length"] == "0" {
		t.Errorf("HEAD of a missing file: status %q, Content-Length %q, body %q",
			r.status, r.header["Content-Length"], r.body)
	}
}

func TestNotFound(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	for _, target := range []string{"/missing.txt", "/hello.txt/", "/sub/nothing/"} {
		r := get(t, addr, "GET", target)
		if r.status != "HTTP/1.0 404 File not found" {
			t.Errorf("%s: status %q", target, r.status)
		}
		checkErrorPage(t, r, 404, "File not found")
	}
}

func checkErrorPage(t *testing.T, r response, code int, msg string) {
	t.Helper()
	checkHeaderNames(t, r, errorHeaders)
	if r.header["Connection"] != "close" || r.header["Content-Type"] != "text/html;charset=utf-8" {
		t.Errorf("error headers: %v", r.header)
	}
	if r.header["Content-Length"] != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length %q, body is %d bytes", r.header["Content-Length"], len(r.body))
	}
	for _, want := range []string{"<!DOCTYPE HTML>", "Error code: " + strconv.Itoa(code), "Message: " + msg + "."} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("error page lacks %q:\n%s", want, r.body)
		}
	}
}

func TestDirectory(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)

	for target, loc := range map[string]string{
		"/sub":         "/sub/",
		"/sub?x=1":     "/sub/?x=1",
		"/sub/Deeper":  "/sub/Deeper/",
		"//sub":        "/sub/", // never "//sub/", which a browser reads as a host
		"/sub/../site": "/sub/../site/",
	} {
		r := get(t, addr, "GET", target)
		if r.status != "HTTP/1.0 301 Moved Permanently" || r.header["Location"] != loc {
			t.Errorf("%s: status %q, Location %q, want 301 to %q", target, r.status, r.header["Location"], loc)
		}
		if diff := cmp.Diff([]string{"Server", "Date", "Location", "Content-Length"}, r.names); diff != "" {
			t.Errorf("%s: header names (-want +got):\n%s", target, diff)
		}
	}

	r := get(t, addr, "GET", "/sub/")
	if r.status != "HTTP/1.0 200 OK" || r.header["Content-type"] != "text/html; charset=utf-8" {
		t.Fatalf("listing: status %q, Content-type %q", r.status, r.header["Content-type"])
	}
	if r.header["Content-Length"] != strconv.Itoa(len(r.body)) {
		t.Errorf("listing: Content-Length %q, body is %d bytes", r.header["Content-Length"], len(r.body))
	}
	want := "<title>Directory listing for /sub/</title>\n</head>\n<body>\n<h1>Directory listing for /sub/</h1>\n<hr>\n<ul>\n" +
		`<li><a href="a%20b%26c.txt">a b&amp;c.txt</a></li>` + "\n" +
		`<li><a href="Deeper/">Deeper/</a></li>` + "\n" +
		`<li><a href="inner.txt">inner.txt</a></li>` + "\n" +
		"</ul>\n<hr>\n</body>\n</html>\n"
	if !strings.HasSuffix(string(r.body), want) {
		t.Errorf("listing body:\n%s\nwant it to end with:\n%s", r.body, want)
	}

	r = get(t, addr, "GET", "/site/")
	if r.status != "HTTP/1.0 200 OK" || r.header["Content-type"] != "text/html" ||
		string(r.body) != "<!DOCTYPE html><title>site</title>" {
		t.Errorf("index file: status %q, type %q, body %q", r.status, r.header["Content-type"], r.body)
	}
	checkHeaderNames(t, r, fileHeaders)
}

func TestTraversalStaysInDir(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	for _, target := range []string{
		"/../secret.txt",
		"/../../secret.txt",
		"/sub/../../secret.txt",
		"/%2e%2e/secret.txt",
		"/%2E%2E/%2e%2e/secret.txt",
		"/..%2fsecret.txt",
		"/%2e%2e%2fsecret.txt",
		"/sub%2f..%2f..%2fsecret.txt",
		"/..%5csecret.txt",
		"/escape/leak.txt", // a symbolic link out of DIR
		"/escape/",
		"/%00/../secret.txt",
	} {
		raw := exchangeRaw(t, addr, "GET "+target+" HTTP/1.0\r\n\r\n")
		if bytes.Contains(raw, []byte("TOP SECRET")) {
			t.Errorf("%s: served a file outside DIR", target)
			continue
		}
		if r := parse(t, raw); r.status != "HTTP/1.0 404 File not found" {
			t.Errorf("%s: status %q, want 404", target, r.status)
		}
	}
	// A climb that stops at DIR lists DIR itself, never its parent.
	for _, target := range []string{"/../", "/%2e%2e/", "/sub/%2e%2e%2f%2e%2e/"} {
		r := get(t, addr, "GET", target)
		if r.status != "HTTP/1.0 200 OK" || !bytes.Contains(r.body, []byte(`href="hello.txt"`)) ||
			bytes.Contains(r.body, []byte("secret")) {
			t.Errorf("%s: status %q, body:\n%s", target, r.status, r.body)
		}
	}
}

func TestBareLF(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	for _, req := range []string{
		"GET /hello.txt HTTP/1.0\n\n",
		"GET /hello.txt HTTP/1.1\nHost: x\nAccept: */*\n\n",
		"GET /hello.txt HTTP/1.1\r\nHost: x\n\r\n",
	} {
		r := parse(t, exchangeRaw(t, addr, req))
		if r.status != "HTTP/1.0 200 OK" || string(r.body) != "hello, upstream\n" {
			t.Errorf("%q: status %q, body %q", req, r.status, r.body)
		}
	}
}

func TestPostEcho(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	big := make([]byte, 3<<20)
	rand.New(rand.NewSource(2)).Read(big)
	for _, body := range [][]byte{
		[]byte("a=1&b=2"),
		[]byte("has\r\n\r\na blank line\x00 and a NUL"),
		big,
		{},
	} {
		req := "POST /anything/at/all HTTP/1.1\r\nHost: x\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
		r := parse(t, exchangeRaw(t, addr, req))
		if r.status != "HTTP/1.0 200 OK" {
			t.Errorf("POST of %d bytes: status %q", len(body), r.status)
		}
		if diff := cmp.Diff([]string{"Server", "Date", "Content-Type", "Content-Length"}, r.names); diff != "" {
			t.Errorf("POST: header names (-want +got):\n%s", diff)
		}
		if r.header["Content-Type"] != "application/octet-stream" || r.header["Content-Length"] != strconv.Itoa(len(body)) {
			t.Errorf("POST: headers %v", r.header)
		}
		if !bytes.Equal(r.body, body) {
			t.Errorf("POST of %d bytes: echoed %d bytes, not equal", len(body), len(r.body))
		}
	}

	r := parse(t, exchangeRaw(t, addr, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	if r.status != "HTTP/1.0 411 Length Required" {
		t.Errorf("chunked POST: status %q", r.status)
	}
	r = parse(t, exchangeRaw(t, addr, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"))
	if r.status != "HTTP/1.0 400 Bad Content-Length" {
		t.Errorf("bad Content-Length: status %q", r.status)
	}
}

// A GET that carries a body must have that body read, not taken for a
// second request or left to reset the connection.
func TestGetBodyDiscarded(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	r := parse(t, exchangeRaw(t, addr, "GET /hello.txt HTTP/1.1\r\nContent-Length: 9\r\n\r\nGET / x\r\n"))
	if r.status != "HTTP/1.0 200 OK" || string(r.body) != "hello, upstream\n" {
		t.Errorf("status %q, body %q", r.status, r.body)
	}
}

func TestClosesAfterResponse(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// Keep-alive asked for and a second request already on its way: the
	// server still answers once and closes.
	io.WriteString(c, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v, want end of file", err)
	}
	if n := bytes.Count(got, []byte("HTTP/1.0 200 OK")); n != 1 {
		t.Errorf("%d responses on one connection, want 1", n)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read after the response: %v, want io.EOF", err)
	}
}

func TestBadRequests(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	for _, tc := range []struct {
		req, status string
		code        int
		msg         string
	}{
		{"PUT /hello.txt HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.0 501 Unsupported method ('PUT')", 501, "Unsupported method ('PUT')"},
		{"GARBAGE\r\n\r\n", "HTTP/1.0 400 Bad request syntax ('GARBAGE')", 400, "Bad request syntax ('GARBAGE')"},
		{"GET / HTTX/1.0\r\n\r\n", "HTTP/1.0 400 Bad request version ('HTTX/1.0')", 400, "Bad request version ('HTTX/1.0')"},
		{"GET / HTTP/2.0\r\n\r\n", "HTTP/1.0 505 Invalid HTTP version (2.0)", 505, "Invalid HTTP version (2.0)"},
		{"GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 70_000) + "\r\n\r\n", "HTTP/1.0 431 Request header fields too large", 431, "Request header fields too large"},
		{"GET / HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", 101) + "\r\n", "HTTP/1.0 431 Too many headers", 431, "Too many headers"},
	} {
		r := parse(t, exchangeRaw(t, addr, tc.req))
		if r.status != tc.status {
			t.Errorf("%q: status %q, want %q", trunc(tc.req), r.status, tc.status)
		}
		checkErrorPage(t, r, tc.code, tc.msg)
	}
	if got := exchangeRaw(t, addr, "\r\n"); len(got) != 0 {
		t.Errorf("blank request line: got %q, want a close without a byte", got)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
		t.Errorf("client that says nothing: got %q, %v; want a close without a byte", got, err)
	}
}

func TestIfModifiedSince(t *testing.T) {
	dir, _ := fixture(t)
	addr, _ := start(t, dir)
	for ims, want := range map[string]string{
		"Sat, 09 Mar 2024 10:11:12 GMT": "HTTP/1.0 304 Not Modified",
		"Sat, 09 Mar 2024 10:11:11 GMT": "HTTP/1.0 200 OK",
		"yesterday":                     "HTTP/1.0 200 OK",
	} {
		r := parse(t, exchangeRaw(t, addr, "GET /hello.txt HTTP/1.1\r\nIf-Modified-Since: "+ims+"\r\n\r\n"))
		if r.status != want {
			t.Errorf("If-Modified-Since %s: status %q, want %q", ims, r.status, want)
		}
	}
}

func TestLog(t *testing.T) {
	dir, _ := fixture(t)
	addr, log := start(t, dir)
	get(t, addr, "GET", "/hello.txt")
	get(t, addr, "GET", "/missing")
	exchangeRaw(t, addr, "GET /\x1b[31m HTTP/1.0\r\n\r\n")
	stamp := `127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d\] `
	want := regexp.MustCompile(`^` +
		stamp + `"GET /hello\.txt HTTP/1\.1" 200 -\n` +
		stamp + `code 404, message File not found\n` +
		stamp + `"GET /missing HTTP/1\.1" 404 -\n` +
		stamp + `code 404, message File not found\n` +
		stamp + `"GET /\\x1b\[31m HTTP/1\.0" 404 -\n$`)
	// Connections finish in their own goroutines; the last line may trail
	// the response by a moment.
	deadline := time.Now().Add(5 * time.Second)
	for !want.MatchString(log.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("log:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConcurrentClients(t *testing.T) {
	dir, jpg := fixture(t)
	addr, _ := start(t, dir)
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			raw, err := roundTrip(addr, "GET /pic.jpg HTTP/1.1\r\n\r\n")
			if err != nil || !bytes.HasSuffix(raw, jpg) {
				t.Errorf("a concurrent GET did not get the whole file: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestListen(t *testing.T) {
	ln, err := listen("127.0.0.1", 0, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestRunBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-bogus"},
		{"-port", "x"},
		{"-d", filepath.Join(t.TempDir(), "absent")},
		{"-backlog", "0"},
		{"abc"},
		{"1", "2"},
		{"70000"},
		{"-port", "-1"},
	} {
		var out, errOut bytes.Buffer
		if code := Main(args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("Main(%q) = %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
}
