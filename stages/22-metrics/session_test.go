package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	s, err := newSession(c, testClient(c, l))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testClient makes a client connection of l without a socket: its ends and
// timers do nothing until the test drives them.
func testClient(c *core, l *listener) *connection {
	client := &connection{core: c, sock: -1, remoteIP: "192.0.2.1", listener: l}
	client.source = newPipeSource(func() {}, func() {})
	client.sink = newPipeSink(func() {}, func() {})
	client.readTimer = newTimer(c, func() {})
	client.writeTimer = newTimer(c, func() {})
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
		{"directory without index: its listing", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": "text/html"}},
		{"directory without a trailing slash", "GET //site HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": "text/html"}},
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
	return proxySessionTo(t, `"`+ln.Addr().String()+`"`)
}

// proxySessionTo is a session of a client of a proxy whose /api route has
// the upstreams given (the inside of a JSON array), with a real loop.
func proxySessionTo(t *testing.T, upstreams string) *session {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xps_config.json")
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
		{"req_path": "/api", "type": "reverse_proxy", "upstreams": [` + upstreams + `]}]}]}`
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

// pump runs the loop of the core, without blocking for long, until done
// reports true.
func pump(t *testing.T, c *core, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("the loop did not get there within 5 s")
		}
		c.loop.handlePipes()
		n, err := unix.EpollWait(c.loop.epollFD, c.loop.events, 10)
		if err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		for i := range c.loop.events[:max(n, 0)] {
			c.loop.dispatch(&c.loop.events[i])
		}
	}
}

// TestProxyFailoverKeepsRequest checks that a request whose first upstream
// refuses the connect reaches the next one whole — head and body — that
// the refusal counts against the first, and that the request stops
// counting as in flight at the second once its reply has ended, though the
// client is still connected.
func TestProxyFailoverKeepsRequest(t *testing.T) {
	gone, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := gone.Addr().String()
	gone.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := proxySessionTo(t, `"`+refused+`", "`+ln.Addr().String()+`"`)

	body := strings.Repeat("0123456789", 1000)
	sent := "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n" + body
	want := "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\nConnection: close\r\n\r\n" + body
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, len(want))
		n, err := io.ReadFull(c, b)
		if err != nil {
			got <- fmt.Sprintf("%q, then %v", b[:n], err)
			return
		}
		got <- string(b)
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	}()
	// The head and the start of the body come first; the rest arrives
	// while the connects are under way.
	feed(s, sent[:len(sent)-4000], len(sent))
	s.client.source.write([]byte(sent[len(sent)-4000:]))
	var received string
	pump(t, s.core, func() bool {
		select {
		case received = <-got:
			return true
		default:
			return false
		}
	})
	if received != want {
		t.Errorf("the second upstream got\n%s\nwant\n%s", harness.Abbrev([]byte(received), 200), harness.Abbrev([]byte(want), 200))
	}
	first := s.lookup.balancer.upstreams[0]
	if first.fails != 1 || first.active != 0 {
		t.Errorf("the refusing upstream: %d fails, %d in flight; want 1 and 0", first.fails, first.active)
	}
	// The client has more to say: the session keeps reading and dropping
	// it after the response (a lingering close), which must not keep the
	// upstream busy.
	s.client.source.ready = true
	second := s.lookup.balancer.upstreams[1]
	pump(t, s.core, func() bool { return second.active == 0 })
	if s.closed || !s.upstreamReplied || second.fails != 0 {
		t.Errorf("session closed %v, reply %v, %d fails; want the client still served, a reply and no failure", s.closed, s.upstreamReplied, second.fails)
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

// TestSessionIPAccess checks that a route's lists decide before the route
// does anything: a denied client gets 403 for a file, a missing file, a
// method the route refuses, a redirect and a proxied request alike, never
// reaches the upstream, and is no longer read from; request headers that
// name another client change nothing.
func TestSessionIPAccess(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"hello.txt", "team/hello.txt"} {
		writeFile(t, root, name, "hello\n")
	}
	path := filepath.Join(t.TempDir(), "xps_config.json")
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
		{"req_path": "/", "type": "file_serve", "dir_path": "` + root + `", "ip_blacklist": ["192.0.2.2"]},
		{"req_path": "/old", "type": "redirect", "http_status_code": 301, "redirect_url": "https://example.org/", "ip_blacklist": ["192.0.2.0/30"]},
		{"req_path": "/api", "type": "reverse_proxy", "upstreams": ["127.0.0.1:9"], "ip_whitelist": ["192.0.2.1"], "ip_blacklist": ["192.0.2.1"]},
		{"req_path": "/team", "type": "file_serve", "dir_path": "` + root + `", "ip_whitelist": ["192.0.2.1"]}]}]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	const spoofed = "X-Forwarded-For: 192.0.2.1\r\nX-Real-IP: 192.0.2.1\r\nForwarded: for=192.0.2.1\r\n"
	cases := []struct {
		from, request string
		status        int
	}{
		{"192.0.2.1", "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"192.0.2.2", "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 403},
		{"192.0.2.2", "GET /missing.txt HTTP/1.1\r\nHost: x\r\n\r\n", 403},
		{"192.0.2.1", "GET /missing.txt HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"192.0.2.2", "PUT /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc", 403},
		{"192.0.2.2", "HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 403},
		{"192.0.2.2", "GET /hello.txt HTTP/1.1\r\nHost: x\r\n" + spoofed + "\r\n", 403},
		{"192.0.2.3", "GET /old HTTP/1.1\r\nHost: x\r\n\r\n", 403},
		{"192.0.2.4", "GET /old HTTP/1.1\r\nHost: x\r\n\r\n", 301},
		{"192.0.2.1", "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 403},
		{"192.0.2.1", "GET /team/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"192.0.2.3", "GET /team/hello.txt HTTP/1.1\r\nHost: x\r\n" + spoofed + "\r\n", 403},
	}
	for _, tc := range cases {
		what := tc.from + " " + tc.request[:strings.Index(tc.request, " HTTP/")]
		s := testSession(t, cfg)
		s.client.remoteIP = tc.from
		s.client.remoteAddr = netip.MustParseAddr(tc.from)
		feed(s, tc.request, len(tc.request))
		b, err := s.toClient.Read(s.toClient.Len())
		if err != nil {
			t.Fatal(err)
		}
		r, err := harness.ParseResponse(b.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.Status != tc.status {
			t.Errorf("%s: status %d, want %d", what, r.Status, tc.status)
		}
		if tc.status != 403 {
			continue
		}
		if _, ok := r.Lookup("Location"); ok || s.upstream != nil || s.file != nil {
			t.Errorf("%s: a denied request went on: Location %q, upstream %v, file %v", what, r.Get("Location"), s.upstream, s.file)
		}
		if s.clientSink.pipe != nil || s.clientSink.active {
			t.Errorf("%s: the denied client is still read from", what)
		}
		head := strings.HasPrefix(tc.request, "HEAD ")
		if len(r.Body) > 0 == head || r.Get("Content-Type") != "text/html" || r.Get("Server") != "eXpServer" {
			t.Errorf("%s: 403 with %d bytes of body, Content-Type %q, Server %q", what, len(r.Body), r.Get("Content-Type"), r.Get("Server"))
		}
	}
}

// TestIPAllowedAllocates checks that the access check costs an allowed
// request no allocation.
func TestIPAllowedAllocates(t *testing.T) {
	s := testSession(t, testConfig(t, t.TempDir()))
	s.client.remoteAddr = netip.MustParseAddr("192.0.2.1")
	res := &lookupResult{
		ipWhitelist: ipList{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("::1/128")},
		ipBlacklist: ipList{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.128/25")},
	}
	if n := testing.AllocsPerRun(1000, func() {
		if !s.ipAllowed(res) {
			t.Fatal("denied")
		}
	}); n != 0 {
		t.Errorf("ipAllowed allocates %v times per request, want 0", n)
	}
}

// statusLine takes what the session has queued for the client and returns
// its first line, or "" when nothing is queued.
func statusLine(t *testing.T, s *session) string {
	t.Helper()
	if s.toClient.Len() == 0 {
		return ""
	}
	b, err := s.toClient.Read(s.toClient.Len())
	if err == nil {
		err = s.toClient.Clear(s.toClient.Len())
	}
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b.Bytes()), "\r\n")
	return line
}

func TestHeaderTimeout(t *testing.T) {
	cfg := testConfig(t, t.TempDir())

	// Part of a head came: 408, and the rest of the head, should it come
	// in the same iteration, gets no second answer.
	s := testSession(t, cfg)
	feed(s, "GET / HTTP/1.1\r\nHost: x\r\n", 100)
	s.clientTimedOut(false)
	if got := statusLine(t, s); got != "HTTP/1.1 408 Request Timeout" {
		t.Fatalf("a partial head timed out: %q queued, want a 408", got)
	}
	feed(s, "\r\n", 2)
	if got := statusLine(t, s); got != "" {
		t.Fatalf("the head completed after its 408: %q queued too", got)
	}

	// Nothing came: a close without a word.
	s = testSession(t, cfg)
	s.clientTimedOut(false)
	if !s.closed || !s.client.closed || s.toClient.Len() != 0 {
		t.Fatalf("an empty head timed out: session closed %v, client closed %v, %d bytes queued", s.closed, s.client.closed, s.toClient.Len())
	}

	// A complete head stops the deadline.
	s = testSession(t, cfg)
	s.client.readTimer.update(time.Minute)
	feed(s, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n", 5)
	if s.client.readTimer.armed() {
		t.Fatal("the head's deadline is still armed once the head is complete")
	}
}

func TestProxyTimeouts(t *testing.T) {
	const post = "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"

	t.Run("connect", func(t *testing.T) {
		s := proxySession(t)
		feed(s, "GET /api HTTP/1.1\r\nHost: h\r\n\r\n", 100)
		up := s.upstream
		if up.onConnect == nil || !up.writeTimer.armed() {
			t.Fatal("an upstream being connected to is not under proxy_connect_timeout")
		}
		s.upstreamTimedOut(true)
		if got := statusLine(t, s); got != "HTTP/1.1 504 Gateway Timeout" || !up.closed {
			t.Fatalf("connect timed out: %q queued, upstream closed %v; want a 504 and the upstream closed", got, up.closed)
		}
	})

	t.Run("connect fails over", func(t *testing.T) {
		var addrs []string
		for range 2 {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			addrs = append(addrs, `"`+ln.Addr().String()+`"`)
		}
		s := proxySessionTo(t, strings.Join(addrs, ", "))
		const request = "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
		feed(s, request, len(request))
		first := s.upstream
		s.upstreamTimedOut(true)
		second := s.upstream
		want := "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
		b, err := s.fromClient.Read(s.fromClient.Len())
		if err != nil {
			t.Fatal(err)
		}
		if !first.closed || second == nil || second == first || second.onConnect == nil || string(b.Bytes()) != want {
			t.Fatalf("after a connect timeout: first closed %v, a second connect under way %v, waiting %q; want the whole request for the second",
				first.closed, second != nil && second != first && second.onConnect != nil, b.Bytes())
		}
		if u := s.lookup.balancer.upstreams[0]; u.fails != 1 || u.active != 0 {
			t.Errorf("the upstream that timed out: %d fails, %d in flight; want 1 and 0", u.fails, u.active)
		}
		if second.replyIdle != defaultTimeout {
			t.Errorf("the second upstream's replyIdle %v; want proxy_read_timeout once it has the request", second.replyIdle)
		}
		s.upstreamTimedOut(true)
		if got := statusLine(t, s); got != "HTTP/1.1 504 Gateway Timeout" || !second.closed {
			t.Fatalf("both connects timed out: %q queued, second closed %v; want a 504", got, second.closed)
		}
	})

	t.Run("body", func(t *testing.T) {
		s := proxySession(t)
		feed(s, post+"abc", 1000)
		if s.client.readIdle != defaultTimeout || !s.client.readTimer.armed() {
			t.Fatalf("an incomplete body: client readIdle %v, armed %v; want client_body_timeout armed", s.client.readIdle, s.client.readTimer.armed())
		}
		if s.upstream.replyIdle != 0 {
			t.Fatal("proxy_read_timeout set before the request is complete")
		}
		up := s.upstream
		s.clientTimedOut(false)
		if got := statusLine(t, s); got != "HTTP/1.1 408 Request Timeout" || !up.closed {
			t.Fatalf("body timed out: %q queued, upstream closed %v; want a 408 and the upstream closed", got, up.closed)
		}
		if u := s.lookup.balancer.upstreams[0]; u.fails != 0 || u.active != 0 {
			t.Errorf("the upstream of a client too slow: %d fails, %d in flight; want neither", u.fails, u.active)
		}
	})

	t.Run("body complete", func(t *testing.T) {
		s := proxySession(t)
		feed(s, post+"abc", 1000)
		feed(s, "defghijEXTRA", 4)
		if s.client.readIdle != 0 || s.client.readTimer.armed() {
			t.Fatal("client_body_timeout still armed with the body complete")
		}
		if s.upstream.replyIdle != defaultTimeout || s.upstream.readIdle != 0 {
			t.Fatalf("upstream replyIdle %v, readIdle %v: want proxy_read_timeout to wait for the request to be sent",
				s.upstream.replyIdle, s.upstream.readIdle)
		}
	})

	t.Run("read after the reply began", func(t *testing.T) {
		s := proxySession(t)
		feed(s, "GET /api HTTP/1.1\r\nHost: h\r\n\r\n", 100)
		up := s.upstream
		up.settleConnect()
		s.upstreamReplied = true
		s.upstreamTimedOut(false)
		if !s.closed || !up.closed || s.toClient.Len() != 0 {
			t.Fatalf("read timed out mid-reply: session closed %v, upstream closed %v, %d bytes queued; want a close and no 504",
				s.closed, up.closed, s.toClient.Len())
		}
	})
}
