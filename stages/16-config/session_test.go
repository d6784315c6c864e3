package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"expserver-go/tests/harness"

	"golang.org/x/sys/unix"
)

// testSession builds a session for a client of the listener 0.0.0.0:8001,
// piped to inert peers as newSession would, but without sockets, with the
// config cfg.
func testSession(t *testing.T, cfg *config) *session {
	t.Helper()
	c := testCore()
	c.config = cfg
	l := &listener{core: c, host: "0.0.0.0", port: 8001}
	client := testClient(c, l)
	s, err := newSession(c, client)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testClient makes a client connection of l without a socket: its ends do
// nothing until the test drives them.
func testClient(c *core, l *listener) *connection {
	client := &connection{core: c, sock: -1, remoteIP: "192.0.2.1", listener: l}
	client.source = newPipeSource(func() {}, func() {})
	client.sink = newPipeSink(func() {}, func() {})
	return client
}

// sessionFor makes a session for a new test client of l that has sent req,
// and lets it take the bytes, as the loop would once they arrive.
func sessionFor(tb testing.TB, c *core, l *listener, req []byte) (*session, *connection) {
	client := testClient(c, l)
	s, err := newSession(c, client)
	if err != nil {
		tb.Fatal(err)
	}
	client.source.write(req)
	s.takeFromClient()
	return s, client
}

// endSession closes s and its test client, then sweeps the pipes they
// leave and recycles what they free, as the loop's next iteration would.
func endSession(c *core, s *session, client *connection) {
	s.close()
	client.source.close()
	client.sink.close()
	c.loop.handlePipes() // sweep the pipes left without ends
	c.recycle()          // as the loop does at the top of its next iteration
}

// testConfig writes a config serving root on 0.0.0.0:8001, with a redirect
// at /old, and loads it.
func testConfig(t testing.TB, root string) *config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xps_config.json")
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
		{"req_path": "/", "type": "file_serve", "dir_path": "` + root + `", "index": ["index.html"]},
		{"req_path": "/old", "type": "redirect", "http_status_code": 301, "redirect_url": "https://example.org/new"}]}]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// feed delivers raw to the session the way the pipe pass would, in pieces
// of the given size.
func feed(s *session, raw string, piece int) {
	for len(raw) > 0 && !s.closed {
		k := min(piece, len(raw))
		s.client.source.write([]byte(raw[:k]))
		raw = raw[k:]
		s.takeFromClient()
	}
}

func TestSessionAnswers(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "site", "index.html"), []byte("<p>hi</p>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, root)
	cases := []struct {
		name, request string
		status        int
		headers       map[string]string
	}{
		{"file", "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": "text/plain", "Content-Length": "6"}},
		{"index file", "GET /site/ HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": "text/html", "Content-Length": "10"}},
		{"directory without index", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, nil},
		{"redirect", "GET /old HTTP/1.1\r\nHost: x\r\n\r\n", 301, map[string]string{"Location": "https://example.org/new", "Content-Length": "0"}},
		{"redirect below", "GET /old/page HTTP/1.1\r\nHost: x\r\n\r\n", 301, map[string]string{"Location": "https://example.org/new"}},
		{"not the redirect", "GET /older HTTP/1.1\r\nHost: x\r\n\r\n", 404, nil},
		{"missing", "GET /nope.txt HTTP/1.1\r\nHost: x\r\n\r\n", 404, map[string]string{"Server": "eXpServer"}},
		{"method", "PUT /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, map[string]string{"Allow": "GET, HEAD"}},
		{"bad request", "GET /hello.txt HTTP/1.1\r\n\r\n", 400, nil},
	}
	for _, tc := range cases {
		for _, piece := range []int{1, len(tc.request)} {
			s := testSession(t, cfg)
			feed(s, tc.request, piece)
			b, err := s.toClient.Read(s.toClient.Len())
			if err != nil {
				t.Fatal(err)
			}
			r, err := harness.ParseResponse(b.Bytes())
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if r.Status != tc.status {
				t.Errorf("%s (pieces of %d): status %d, want %d", tc.name, piece, r.Status, tc.status)
			}
			for k, v := range tc.headers {
				if got := r.Get(k); got != v {
					t.Errorf("%s: %s = %q, want %q", tc.name, k, got, v)
				}
			}
		}
	}
}

func TestProxyHead(t *testing.T) {
	var p requestParser
	head := []byte("POST /api?x=1 HTTP/1.1\r\nHost: example.org:8002\r\nConnection: keep-alive, X-Trace\r\n" +
		"Keep-Alive: timeout=5\r\nX-Trace: 1\r\nUpgrade: h2c\r\nContent-Length: 3\r\nAccept: */*\r\n\r\n")
	if res, err := p.parse(head); err != nil || res != parseDone {
		t.Fatalf("parse: %v %v", res, err)
	}
	req, err := newHTTPRequest(head, &p)
	if err != nil {
		t.Fatal(err)
	}
	want := "POST /api?x=1 HTTP/1.1\r\nHost: example.org:8002\r\nContent-Length: 3\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if got := string(proxyHead(req)); got != want {
		t.Fatalf("proxyHead =\n%q\nwant\n%q", got, want)
	}
}

// proxySession is a session of a client of a proxy whose upstream is a
// listening socket that never answers, with a real loop, so the upstream
// connection is made.
func proxySession(t *testing.T) *session {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	path := filepath.Join(t.TempDir(), "xps_config.json")
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
		{"req_path": "/api", "type": "reverse_proxy", "upstreams": ["` + ln.Addr().String() + `"]}]}]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	s := testSession(t, cfg)
	lp, err := newLoop(s.core)
	if err != nil {
		t.Fatal(err)
	}
	s.core.loop = lp
	t.Cleanup(func() {
		for c := range s.core.connections {
			c.close(false)
		}
		lp.close()
	})
	return s
}

// TestProxyForwardsTheFramedRequest checks that exactly the request the head
// frames goes to the upstream: its head, then Content-Length bytes or a
// chunked body up to its end, never what follows.
func TestProxyForwardsTheFramedRequest(t *testing.T) {
	const fwd = "Host: h\r\n"
	cases := []struct{ name, sent, head, body string }{
		{"bytes past Content-Length", "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
			"POST /api HTTP/1.1\r\n" + fwd + "Content-Length: 5\r\n", "hello"},
		{"a pipelined request", "GET /api HTTP/1.1\r\nHost: h\r\n\r\nGET /admin HTTP/1.1\r\nHost: h\r\n\r\n",
			"GET /api HTTP/1.1\r\n" + fwd, ""},
		{"a chunked body, then junk", "POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5;x=y\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
			"POST /api HTTP/1.1\r\n" + fwd + "Transfer-Encoding: chunked\r\n",
			"5;x=y\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\n\r\n"},
		{"Connection naming the framing", "POST /api HTTP/1.1\r\nHost: h\r\nConnection: Content-Length, Host\r\nContent-Length: 2\r\n\r\nokNO",
			"POST /api HTTP/1.1\r\n" + fwd + "Content-Length: 2\r\n", "ok"},
	}
	for _, tc := range cases {
		for _, piece := range []int{1, 3, len(tc.sent)} {
			s := proxySession(t)
			feed(s, tc.sent, piece)
			b, err := s.fromClient.Read(s.fromClient.Len())
			if err != nil {
				t.Fatal(err)
			}
			want := tc.head + "Connection: close\r\n\r\n" + tc.body
			if got := string(b.Bytes()); got != want {
				t.Errorf("%s (pieces of %d): the upstream gets\n%q\nwant\n%q", tc.name, piece, got, want)
			}
		}
	}
}

func TestProxyMalformedChunkedBody(t *testing.T) {
	s := proxySession(t)
	feed(s, "POST /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", 4)
	b, _ := s.toClient.Read(s.toClient.Len())
	if !strings.HasPrefix(string(b.Bytes()), "HTTP/1.1 400 ") {
		t.Errorf("response %q, want 400", b.Bytes()[:min(40, b.Len())])
	}
	if !s.upstream.closed || s.fromClient.Len() != 0 {
		t.Errorf("upstream closed = %v, %d bytes still for it; want it closed and nothing", s.upstream.closed, s.fromClient.Len())
	}
}

// TestProxyClientLeaves checks that a client leaving before the upstream has
// replied ends the session and the upstream connection at once.
func TestProxyClientLeaves(t *testing.T) {
	s := proxySession(t)
	feed(s, "GET /api HTTP/1.1\r\nHost: h\r\n\r\n", 100)
	if s.upstream == nil || s.upstream.closed {
		t.Fatal("the request did not go to the upstream")
	}
	s.onClientDone()
	if !s.closed || !s.upstream.closed {
		t.Fatalf("session closed = %v, upstream closed = %v; want both", s.closed, s.upstream.closed)
	}
}

// TestProxyClientLeavesAfterTheReply checks that a client leaving once the
// whole reply has come, before the upstream's close, is not taken to
// abandon the request: the upstream connection closes, and the reply still
// goes out; a client leaving in the middle of a reply abandons it.
func TestProxyClientLeavesAfterTheReply(t *testing.T) {
	for _, tc := range []struct {
		reply     string
		abandoned bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", true},
		{"HTTP/1.1 200 OK\r\n\r\nhello", true}, // ends only with the upstream's close
	} {
		s := proxySession(t)
		feed(s, "GET /api HTTP/1.1\r\nHost: h\r\n\r\n", 100)
		if s.upstreamSink.pipe == nil {
			t.Fatal("the upstream sink is not attached")
		}
		s.upstreamSink.pipe.buf.Write([]byte(tc.reply))
		s.takeFromUpstream()
		s.onClientDone()
		if !s.upstream.closed || s.closed != tc.abandoned || s.toClient.Len() == 0 != tc.abandoned {
			t.Errorf("%q: upstream closed %v, session closed %v with %d bytes for the client; want the upstream closed, abandoned %v",
				tc.reply, s.upstream.closed, s.closed, s.toClient.Len(), tc.abandoned)
		}
	}
}

// TestReplyEnd checks where replyEnd finds the end of replies, fed in
// pieces of every size.
func TestReplyEnd(t *testing.T) {
	cases := []struct {
		method, reply string
		complete      bool // false: the reply ends with the upstream's close
	}{
		{"GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true},
		{"GET", "HTTP/1.1 200 OK\nContent-Length: 5, 5\n\nhello", true},
		{"GET", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", true},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true},
		{"GET", "HTTP/1.1 204 No Content\r\n\r\n", true},
		{"GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", true},
		{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\nX: y\r\n\r\n", true},
		{"GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true},
		{"GET", "HTTP/1.1 200 OK\r\n\r\nhello", false},
		{"GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", false},
		{"GET", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello", false},
		{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nhello", false},
		{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false},
		{"GET", "HTTP/1.1 101 Switching Protocols\r\n\r\n", false},
		{"GET", "SSH-2.0-OpenSSH\r\n\r\n", false},
	}
	for _, tc := range cases {
		for piece := 1; piece <= len(tc.reply); piece++ {
			var r replyEnd
			for in := tc.reply; len(in) > 0; {
				k := min(piece, len(in))
				r.scan([]byte(in[:k]), tc.method)
				in = in[k:]
			}
			if (r.state == replyComplete) != tc.complete {
				t.Errorf("%s %q in pieces of %d: state %d, complete %v, want %v", tc.method, tc.reply, piece, r.state, !tc.complete, tc.complete)
				break
			}
		}
	}
	// Complete means complete: one byte short is not.
	var r replyEnd
	r.scan([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell"), "GET")
	if r.state == replyComplete {
		t.Error("a reply one byte short of its Content-Length is complete")
	}
	// A head larger than a request head may be is not followed.
	r = replyEnd{}
	r.scan([]byte("HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", maxHeadSize)), "GET")
	if r.state != replyUntilClose || r.head != nil {
		t.Errorf("a head of %d bytes: state %d, %d bytes kept; want the upstream's close and nothing kept", maxHeadSize, r.state, len(r.head))
	}
}

func TestChunkedBodyScan(t *testing.T) {
	const body = "4\r\nwiki\r\n5;ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nA: b\r\n\r\n"
	for _, piece := range []int{1, 2, 7, len(body)} {
		var c chunkedBody
		in := body + "NEXT"
		total, done := 0, false
		for len(in) > 0 && !done {
			k := min(piece, len(in))
			n, d, err := c.scan([]byte(in[:k]))
			if err != nil {
				t.Fatalf("pieces of %d: %v", piece, err)
			}
			total, done, in = total+n, d, in[n:]
		}
		if !done || total != len(body) {
			t.Errorf("pieces of %d: done %v after %d bytes, want the end after %d", piece, done, total, len(body))
		}
	}
	for _, bad := range []string{"x\r\n", "5\nhello\r\n", "5\r\nhelloX", "0\r\nA: b\n", "0\r\n\rX", "1\x00\r\n",
		"FFFFFFFFFFFFFFFFF\r\n"} {
		var c chunkedBody
		if _, _, err := c.scan([]byte(bad)); err == nil {
			t.Errorf("scan(%q) accepted a malformed body", bad)
		}
	}
}

func TestSessionHeadTooLarge(t *testing.T) {
	s := testSession(t, testConfig(t, t.TempDir()))
	feed(s, "GET / HTTP/1.1\r\nX: "+strings.Repeat("a", maxHeadSize), 4096)
	b, _ := s.toClient.Read(s.toClient.Len())
	if !strings.HasPrefix(string(b.Bytes()), "HTTP/1.1 431 ") {
		t.Fatalf("response %q, want 431", b.Bytes()[:min(40, b.Len())])
	}
}

// BenchmarkSessionServesFile measures what one request costs the session
// and the modules it calls, without sockets: parse a browser-like head, look
// it up, open the file, build the response, hand on the file region, and
// tear everything down. Its allocs/op is the per-request allocation count
// of the request path that docs/performance.md reports.
func BenchmarkSessionServesFile(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "1k.txt"), make([]byte, 1024), 0o644); err != nil {
		b.Fatal(err)
	}
	c := testCore()
	c.config = testConfig(b, root)
	l := &listener{core: c, host: "0.0.0.0", port: 8001}
	req := []byte("GET /1k.txt HTTP/1.1\r\nHost: localhost:8001\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		s, client := sessionFor(b, c, l, req)
		if s.file == nil {
			b.Fatal("the request was not answered with the file")
		}
		s.file.read()
		endSession(c, s, client)
	}
	if len(c.pipes) != 0 {
		b.Fatalf("%d pipes left", len(c.pipes))
	}
}

// BenchmarkSessionProxies measures what one proxied request costs the
// session and the modules it calls, as BenchmarkSessionServesFile does for
// a file: parse the head, look it up, connect to the upstream (a listening
// socket of the benchmark's, which takes each connection and drops it), pass
// the upstream's reply on to the client, and tear everything down. Only the
// upstream's connection has a socket, and no event is waited for: the reply
// is put in the upstream's pipe as if it had been received.
func BenchmarkSessionProxies(b *testing.B) {
	lfd, port := rawListener(b)
	path := filepath.Join(b.TempDir(), "xps_config.json")
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
		{"req_path": "/api", "type": "reverse_proxy", "upstreams": ["127.0.0.1:` + strconv.Itoa(port) + `"]}]}]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		b.Fatal(err)
	}
	c := testCore()
	c.config = cfg
	if c.loop, err = newLoop(c); err != nil {
		b.Fatal(err)
	}
	defer c.loop.close()
	l := &listener{core: c, host: "0.0.0.0", port: 8001}
	req := []byte("GET /api/items?page=2 HTTP/1.1\r\nHost: localhost:8001\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n")
	reply := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100))
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		s, client := sessionFor(b, c, l, req)
		up := s.upstream
		if up == nil {
			b.Fatal("the request did not go to the upstream")
		}
		peer, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
		if errno != 0 {
			b.Fatalf("accept4: %v", errno)
		}
		up.source.write(reply)
		for range 3 { // the reply goes through the session to the client
			c.loop.handlePipes()
		}
		if p := client.sink.pipe; p == nil || p.buf.Len() != len(reply) {
			b.Fatal("the client did not get the reply whole")
		}
		up.close(true)
		unix.Close(int(peer))
		endSession(c, s, client)
	}
	if len(c.pipes) != 0 {
		b.Fatalf("%d pipes left", len(c.pipes))
	}
}

// rawListener opens a listening socket on a free port of 127.0.0.1 that
// the test accepts from with raw system calls, which allocate nothing.
func rawListener(tb testing.TB) (fd, port int) {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		tb.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		tb.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}
