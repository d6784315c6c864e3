// Upstream is a small HTTP file server that stands in for
// `python3 -m http.server`, the upstream the eXpServer grader runs on port
// 3000 beside every stage from 11 on. Tests and users get the same wire
// behaviour without needing Python on the machine.
//
// Usage:
//
//	upstream [-port 3000] [-bind 127.0.0.1] [-d DIR] [-backlog 1024] [-silent] [-record DIR] [PORT]
//
// A positional PORT overrides -port, so `upstream 3000` reads like
// `python3 -m http.server 3000`.
//
// Two flags make it a test instrument for the proxy in front of it:
// -silent accepts connections and reads them but never answers nor closes
// them (an upstream that hangs), and -record DIR writes the bytes received on each
// connection, once it has ended, to DIR/N.raw, N counting connections from 1
// in the order they were accepted — what the proxy forwarded, byte for byte.
//
// Like Python's server it answers every request with HTTP/1.0 and closes the
// connection after one response; accepts CRLF or bare-LF line endings; serves
// files under DIR with the headers Server, Date, Content-type (lower-case t,
// as Python writes it), Content-Length and Last-Modified, in that order;
// honours If-Modified-Since on files; redirects a directory asked for without
// a trailing slash (301, Location with the slash added); serves index.html or
// index.htm in a directory, or else an HTML listing; percent-decodes the path,
// drops the query and removes dot segments; answers errors with Python's
// status lines ("404 File not found", "501 Unsupported method ('PUT')") and
// error-page headers (Connection: close, Content-Type: text/html;charset=utf-8);
// and logs each request to stderr in Python's format.
//
// Where it differs, on purpose:
//
//   - The Server header is "expserver-upstream/1.0": this is not Python and
//     does not claim to be.
//   - POST to any path answers 200 with Content-Type: application/octet-stream
//     and a body equal to the request body (Content-Length required; chunked
//     bodies get 411, bodies over 64 MiB get 413), so a test can check that a
//     proxy forwards a body intact. Python answers 501 to POST.
//   - A request body announced by Content-Length is read before answering,
//     and the connection lingers briefly after the response to drain what the
//     client still sends. Python closes with the body unread, which can make
//     the kernel reset the connection and destroy the response in flight.
//   - The listen backlog defaults to 1024 (Python's is 5), so hundreds of
//     concurrent connects do not fall into SYN retries.
//   - Media types come from the course's table (package common/mime), not
//     from Python's mimetypes module; for the course's files they agree.
//   - Bad request lines get a full HTTP/1.0 error response; Python, not yet
//     knowing the version, sends the error page with no status line at all.
//     A request line of two words is an error rather than HTTP/0.9.
//   - Paths never leave DIR, not even through a symbolic link; Python follows
//     links wherever they point.
//   - Error pages say "Error code" and "Message" as Python's do, without
//     Python's longer explanation line.
//   - It binds IPv4 only, as every eXpServer stage does.
package main

import (
	"os"

	"expserver-go/tools/internal/upstream"
)

func main() {
	os.Exit(upstream.Main(os.Args[1:], os.Stdout, os.Stderr))
}
