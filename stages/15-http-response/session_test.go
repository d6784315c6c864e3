package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"expserver-go/tests/harness"
)

// testSession builds a session piped to inert peers, as newSession would,
// but without sockets, serving files from root.
func testSession(t *testing.T, root string) *session {
	t.Helper()
	c := testCore()
	if root != "" {
		if err := c.setPublicRoot(root); err != nil {
			t.Fatal(err)
		}
	}
	client := &connection{core: c, remoteIP: "192.0.2.1"}
	client.source = newPipeSource(func() {}, func() {})
	client.sink = newPipeSink(func() {}, func() {})
	s, err := newSession(c, client)
	if err != nil {
		t.Fatal(err)
	}
	return s
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

// responseHead returns the response head waiting in the slot.
func responseHead(t *testing.T, s *session) *harness.Response {
	t.Helper()
	b, err := s.toClient.Read(s.toClient.Len())
	if err != nil {
		t.Fatal(err)
	}
	r, err := harness.ParseResponse(b.Bytes())
	if err != nil {
		t.Fatalf("slot holds no response: %v", err)
	}
	return r
}

func TestSessionAnswers(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := harness.WriteTree(root, map[string]string{"private/secret.txt": "secret\n"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop", filepath.Join(root, "loop")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, request string
		status        int
		headers       map[string]string
	}{
		{"file", "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 200,
			map[string]string{"Content-Type": "text/plain", "Content-Length": "6", "Server": "eXpServer", "Connection": "close"}},
		{"head", "HEAD /hello.txt HTTP/1.0\r\n\r\n", 200, map[string]string{"Content-Length": "6"}},
		{"query ignored", "GET /hello.txt?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200, nil},
		{"missing", "GET /nope.txt HTTP/1.1\r\nHost: x\r\n\r\n", 404, map[string]string{"Server": "eXpServer"}},
		{"directory", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, nil},
		{"traversal", "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404, nil},
		{"method", "DELETE /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 405, map[string]string{"Allow": "GET, HEAD"}},
		{"no host", "GET /hello.txt HTTP/1.1\r\n\r\n", 400, map[string]string{"Server": "eXpServer"}},
		{"bad version", "GET /hello.txt HTTP/9.9\r\nHost: x\r\n\r\n", 505, nil},
		// What a client asks for never makes a 500: these are nginx's answers.
		{"file asked for as a folder", "GET /hello.txt/ HTTP/1.1\r\nHost: x\r\n\r\n", 404, nil},
		{"name too long to exist", "GET /" + strings.Repeat("n", 300) + " HTTP/1.1\r\nHost: x\r\n\r\n", 404, nil},
		{"target of 8 KiB", "GET " + longTarget(8192) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, nil},
		{"symbolic link loop", "GET /loop HTTP/1.1\r\nHost: x\r\n\r\n", 403, nil},
		{"file in a private folder", "GET /private/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 403, nil},
	}
	for _, tc := range cases {
		for _, piece := range []int{1, 7, len(tc.request)} {
			s := testSession(t, root)
			feed(s, tc.request, piece)
			r := responseHead(t, s)
			if r.Status != tc.status {
				t.Errorf("%s (pieces of %d): status %d, want %d", tc.name, piece, r.Status, tc.status)
			}
			for k, v := range tc.headers {
				if got := r.Get(k); got != v {
					t.Errorf("%s: %s = %q, want %q", tc.name, k, got, v)
				}
			}
			if strings.HasPrefix(tc.request, "HEAD") && len(r.Body) != 0 {
				t.Errorf("%s: HEAD response has a body", tc.name)
			}
		}
	}
}

func TestSessionHeadTooLarge(t *testing.T) {
	s := testSession(t, t.TempDir())
	feed(s, "GET / HTTP/1.1\r\nX: "+strings.Repeat("a", maxHeadSize), 4096)
	if r := responseHead(t, s); r.Status != 431 {
		t.Fatalf("status %d, want 431", r.Status)
	}
	if len(s.head) > maxHeadSize {
		t.Fatalf("the session buffered %d bytes of head, over the %d cap", len(s.head), maxHeadSize)
	}
}

// TestSessionCheck covers the destroy check of an HTTP session.
func TestSessionCheck(t *testing.T) {
	cases := []struct {
		name               string
		setup              func(s *session)
		wantClosed         bool
		wantClientAttached bool
	}{
		{"waiting for the request", func(s *session) {}, false, true},
		{"response head still in the slot", func(s *session) {
			s.responded = true
			s.toClient.Write([]byte("HTTP/1.1 404 Not Found\r\n\r\n"))
		}, false, true},
		{"response sent, client may still send: the client gets the end, its input is drained", func(s *session) {
			s.responded = true
			s.client.source.ready = true
		}, false, false},
		{"response sent, client drained: closed at once", func(s *session) {
			s.responded = true
		}, true, false},
		{"response sent, client finished sending", func(s *session) {
			s.responded = true
			s.clientSink.active = false
		}, true, false},
		{"client gone", func(s *session) {
			s.clientSource.active = false
			s.clientSink.active = false
		}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testSession(t, "")
			tc.setup(s)
			s.check()
			if s.closed != tc.wantClosed {
				t.Fatalf("closed = %v, want %v", s.closed, tc.wantClosed)
			}
			if got := s.clientSource.pipe != nil; got != tc.wantClientAttached {
				t.Fatalf("clientSource attached = %v, want %v", got, tc.wantClientAttached)
			}
		})
	}
}

func TestClientLeavingBeforeItsHeadGetsNoAnswer(t *testing.T) {
	s := testSession(t, "")
	feed(s, "GET / HTTP/1.1\r\nHo", 100)
	s.onClientDone()
	if !s.closed || s.toClient.Len() != 0 {
		t.Fatalf("closed = %v, %d bytes queued; want closed with nothing", s.closed, s.toClient.Len())
	}
}
