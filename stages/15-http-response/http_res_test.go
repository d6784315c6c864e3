package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func fixedClock(t *testing.T) {
	t.Helper()
	saved := now
	now = func() time.Time { return time.Date(1994, 11, 6, 8, 49, 37, 0, time.FixedZone("CET", 3600)) }
	t.Cleanup(func() { now = saved })
}

// fixedHeaders are the four headers newHTTPResponse adds, as they read
// under fixedClock.
const fixedHeaders = "Date: Sun, 06 Nov 1994 07:49:37 GMT\r\n" +
	"Server: eXpServer\r\n" +
	"Access-Control-Allow-Origin: *\r\n" +
	"Connection: close\r\n"

func TestResponseSerializeGolden(t *testing.T) {
	fixedClock(t)
	cases := []struct {
		name  string
		build func() *httpResponse
		want  string
	}{
		{
			name: "file head",
			build: func() *httpResponse {
				r := newHTTPResponse(testCore(), 200)
				r.setHeader("Content-Type", "text/plain")
				r.setHeader("Content-Length", "1242")
				return r
			},
			want: "HTTP/1.1 200 OK\r\n" +
				fixedHeaders +
				"Content-Type: text/plain\r\n" +
				"Content-Length: 1242\r\n" +
				"\r\n",
		},
		{
			name: "redirect without body",
			build: func() *httpResponse {
				r := newHTTPResponse(testCore(), 302)
				r.setHeader("Location", "http://localhost:8002/")
				r.setHeader("Content-Length", "0")
				return r
			},
			want: "HTTP/1.1 302 Found\r\n" +
				fixedHeaders +
				"Location: http://localhost:8002/\r\n" +
				"Content-Length: 0\r\n" +
				"\r\n",
		},
		{
			name: "error with its page",
			build: func() *httpResponse {
				r := newHTTPResponse(testCore(), 404)
				r.setHeader("Content-Length", "120")
				return r
			},
			want: "HTTP/1.1 404 Not Found\r\n" +
				fixedHeaders +
				"Content-Type: text/html\r\n" +
				"Content-Length: 120\r\n" +
				"\r\n" +
				"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n" +
				"<body><h1>404 Not Found</h1><hr>eXpServer</body></html>\n",
		},
		{
			name: "body set by the caller",
			build: func() *httpResponse {
				r := newHTTPResponse(testCore(), 200)
				r.setHeader("Content-Length", "6")
				r.setBody([]byte("hello\n"))
				return r
			},
			want: "HTTP/1.1 200 OK\r\n" +
				fixedHeaders +
				"Content-Length: 6\r\n" +
				"\r\n" +
				"hello\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, string(tc.build().serialize())); diff != "" {
				t.Errorf("serialize() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResponseStatusLines(t *testing.T) {
	for code, line := range map[int]string{
		400: "HTTP/1.1 400 Bad Request", 403: "HTTP/1.1 403 Forbidden", 405: "HTTP/1.1 405 Method Not Allowed",
		414: "HTTP/1.1 414 URI Too Long", 431: "HTTP/1.1 431 Request Header Fields Too Large",
		500: "HTTP/1.1 500 Internal Server Error", 501: "HTTP/1.1 501 Not Implemented",
		502: "HTTP/1.1 502 Bad Gateway", 505: "HTTP/1.1 505 HTTP Version Not Supported",
	} {
		if got := newHTTPResponse(testCore(), code).statusLine; got != line {
			t.Errorf("status %d: %q, want %q", code, got, line)
		}
	}
}

// TestErrorPage checks the page an error carries as its body: the status and
// its reason in the title and the heading, and the server's name.
func TestErrorPage(t *testing.T) {
	got := string(errorPage(404))
	want := "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n" +
		"<body><h1>404 Not Found</h1><hr>eXpServer</body></html>\n"
	if got != want {
		t.Errorf("errorPage(404) = %q, want %q", got, want)
	}
}
