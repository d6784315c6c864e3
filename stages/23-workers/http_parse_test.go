package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// goodCase is a request that must parse and validate. want.headerLen is
// filled in from len(head).
type goodCase struct {
	name string
	head string // ends with the empty line
	body string // bytes that arrived after the head
	want httpRequest
}

// badCase is a complete (or hopelessly long) input that must be refused
// with status, by the parser or by newHTTPRequest.
type badCase struct {
	name   string
	in     string
	status int
}

// typicalHead is what a desktop browser sends for a stylesheet.
const typicalHead = "GET /assets/css/site.css?v=3 HTTP/1.1\r\n" +
	"Host: localhost:8001\r\n" +
	"Connection: keep-alive\r\n" +
	"sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n" +
	"sec-ch-ua-mobile: ?0\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
	"sec-ch-ua-platform: \"Linux\"\r\n" +
	"Accept: text/css,*/*;q=0.1\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Dest: style\r\n" +
	"Referer: http://localhost:8001/\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"\r\n"

// longTarget returns an origin-form target of n bytes.
func longTarget(n int) string {
	return "/" + strings.Repeat("a", n-1)
}

// manyHeaders returns n header lines "X-Header-i: v".
func manyHeaders(n int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "X-Header-%d: v\r\n", i)
	}
	return sb.String()
}

// rootRequest is the parse of "GET / HTTP/1.1" with these headers, the
// expected result of most of the header-focused cases below.
func rootRequest(headers []header) httpRequest {
	return httpRequest{
		requestLine: "GET / HTTP/1.1", method: "GET", uri: "/", port: -1, path: "/", pathname: "/",
		version: "1.1", headers: headers,
	}
}

var goodRequests = []goodCase{
	{
		name: "simple GET",
		head: "GET /index.html HTTP/1.1\r\nHost: localhost:8001\r\n\r\n",
		want: httpRequest{
			requestLine: "GET /index.html HTTP/1.1", method: "GET", uri: "/index.html", port: -1,
			path: "/index.html", pathname: "/index.html", version: "1.1",
			headers: []header{{"Host", "localhost:8001"}},
		},
	},
	{
		name: "grader request for cat.jpg",
		head: "GET /cat.jpg HTTP/1.1\r\nHost: 172.17.0.2:8001\r\nUser-Agent: expserver-tester\r\n" +
			"Accept: image/jpeg\r\nConnection: close\r\n\r\n",
		want: httpRequest{
			requestLine: "GET /cat.jpg HTTP/1.1", method: "GET", uri: "/cat.jpg", port: -1,
			path: "/cat.jpg", pathname: "/cat.jpg", version: "1.1",
			headers: []header{
				{"Host", "172.17.0.2:8001"}, {"User-Agent", "expserver-tester"},
				{"Accept", "image/jpeg"}, {"Connection", "close"},
			},
		},
	},
	{
		name: "absolute-form with port and query",
		head: "GET http://example.com:8080/a/b.html?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
		want: httpRequest{
			requestLine: "GET http://example.com:8080/a/b.html?x=1&y=2 HTTP/1.1", method: "GET",
			uri: "http://example.com:8080/a/b.html?x=1&y=2", schema: "http", host: "example.com", port: 8080,
			path: "/a/b.html?x=1&y=2", pathname: "/a/b.html", query: "x=1&y=2", version: "1.1",
			headers: []header{{"Host", "example.com:8080"}},
		},
	},
	{
		name: "absolute-form https in capitals without path",
		head: "GET HTTPS://Example.COM HTTP/1.1\r\nHost: Example.COM\r\n\r\n",
		want: httpRequest{
			requestLine: "GET HTTPS://Example.COM HTTP/1.1", method: "GET", uri: "HTTPS://Example.COM",
			schema: "https", host: "Example.COM", port: 443, path: "/", pathname: "/", version: "1.1",
			headers: []header{{"Host", "Example.COM"}},
		},
	},
	{
		name: "absolute-form query without path",
		head: "GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
		want: httpRequest{
			requestLine: "GET http://h?q=1 HTTP/1.1", method: "GET", uri: "http://h?q=1", schema: "http",
			host: "h", port: 80, path: "/?q=1", pathname: "/", query: "q=1", version: "1.1",
			headers: []header{{"Host", "h"}},
		},
	},
	{
		name: "absolute-form empty port means default",
		head: "GET http://h:/x HTTP/1.1\r\nHost: h\r\n\r\n",
		want: httpRequest{
			requestLine: "GET http://h:/x HTTP/1.1", method: "GET", uri: "http://h:/x", schema: "http",
			host: "h", port: 80, path: "/x", pathname: "/x", version: "1.1",
			headers: []header{{"Host", "h"}},
		},
	},
	{
		name: "absolute-form IPv6 literal",
		head: "GET http://[::1]:8001/x HTTP/1.1\r\nHost: [::1]:8001\r\n\r\n",
		want: httpRequest{
			requestLine: "GET http://[::1]:8001/x HTTP/1.1", method: "GET", uri: "http://[::1]:8001/x",
			schema: "http", host: "[::1]", port: 8001, path: "/x", pathname: "/x", version: "1.1",
			headers: []header{{"Host", "[::1]:8001"}},
		},
	},
	{
		name: "origin-form query",
		head: "GET /search?q=a+b&lang=en HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "GET /search?q=a+b&lang=en HTTP/1.1", method: "GET", uri: "/search?q=a+b&lang=en",
			port: -1, path: "/search?q=a+b&lang=en", pathname: "/search", query: "q=a+b&lang=en", version: "1.1",
			headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "empty query",
		head: "GET /a? HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "GET /a? HTTP/1.1", method: "GET", uri: "/a?", port: -1,
			path: "/a?", pathname: "/a", version: "1.1", headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "query holding ? and # and & = in the path",
		head: "GET /a&b=c?d?e#f HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "GET /a&b=c?d?e#f HTTP/1.1", method: "GET", uri: "/a&b=c?d?e#f", port: -1,
			path: "/a&b=c?d?e#f", pathname: "/a&b=c", query: "d?e#f", version: "1.1",
			headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "pathname stays percent-encoded",
		head: "GET /a%20b/%2e%2e/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "GET /a%20b/%2e%2e/caf\xc3\xa9 HTTP/1.1", method: "GET", uri: "/a%20b/%2e%2e/caf\xc3\xa9",
			port: -1, path: "/a%20b/%2e%2e/caf\xc3\xa9", pathname: "/a%20b/%2e%2e/caf\xc3\xa9", version: "1.1",
			headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "double slash is a path",
		head: "GET // HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "GET // HTTP/1.1", method: "GET", uri: "//", port: -1,
			path: "//", pathname: "//", version: "1.1", headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "double slash file is a path",
		head: "GET //sample.pdf HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "GET //sample.pdf HTTP/1.1", method: "GET", uri: "//sample.pdf", port: -1,
			path: "//sample.pdf", pathname: "//sample.pdf", version: "1.1", headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "bare LF line endings",
		head: "GET / HTTP/1.1\nHost: x\nAccept: */*\n\n",
		want: rootRequest([]header{{"Host", "x"}, {"Accept", "*/*"}}),
	},
	{
		name: "mixed line endings",
		head: "GET / HTTP/1.1\r\nHost: x\nA: b\r\n\n",
		want: rootRequest([]header{{"Host", "x"}, {"A", "b"}}),
	},
	{
		name: "leading empty lines are skipped",
		head: "\r\n\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		want: rootRequest([]header{{"Host", "x"}}),
	},
	{
		name: "header values are trimmed",
		head: "GET / HTTP/1.1\r\nHost:x\r\nX-A:   spaced  value \t \r\nX-B:\tv\t\r\nX-C:\r\nX-D: \t \r\nX-E: a:b: c\r\n\r\n",
		want: rootRequest([]header{
			{"Host", "x"}, {"X-A", "spaced  value"}, {"X-B", "v"}, {"X-C", ""}, {"X-D", ""}, {"X-E", "a:b: c"},
		}),
	},
	{
		name: "duplicate headers are kept in order",
		head: "GET / HTTP/1.1\r\nAccept: a\r\nHost: x\r\nCookie: c=1\r\naccept: b\r\nCookie: d=2\r\n\r\n",
		want: rootRequest([]header{
			{"Accept", "a"}, {"Host", "x"}, {"Cookie", "c=1"}, {"accept", "b"}, {"Cookie", "d=2"},
		}),
	},
	{
		name: "OPTIONS asterisk-form",
		head: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "OPTIONS * HTTP/1.1", method: "OPTIONS", uri: "*", port: -1, path: "*", pathname: "*",
			version: "1.1", headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "HTTP/1.0 without headers",
		head: "GET / HTTP/1.0\r\n\r\n",
		want: httpRequest{
			requestLine: "GET / HTTP/1.0", method: "GET", uri: "/", port: -1, path: "/", pathname: "/",
			version: "1.0",
		},
	},
	{
		name: "HTTP/1.2 is treated as 1.1",
		head: "HEAD /x HTTP/1.2\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "HEAD /x HTTP/1.2", method: "HEAD", uri: "/x", port: -1, path: "/x", pathname: "/x",
			version: "1.1", headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "POST with body bytes after the head",
		head: "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
		body: "hello",
		want: httpRequest{
			requestLine: "POST /upload HTTP/1.1", method: "POST", uri: "/upload", port: -1,
			path: "/upload", pathname: "/upload", version: "1.1",
			headers: []header{{"Host", "x"}, {"Content-Length", "5"}}, bodyLen: 5,
		},
	},
	{
		name: "identical Content-Length repeats",
		head: "PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 007, 7\r\ncontent-length:7\r\n\r\n",
		want: httpRequest{
			requestLine: "PUT /f HTTP/1.1", method: "PUT", uri: "/f", port: -1, path: "/f", pathname: "/f",
			version: "1.1", headers: []header{{"Host", "x"}, {"Content-Length", "007, 7"}, {"content-length", "7"}},
			bodyLen: 7,
		},
	},
	{
		name: "largest Content-Length",
		head: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\n",
		want: httpRequest{
			requestLine: "POST / HTTP/1.1", method: "POST", uri: "/", port: -1, path: "/", pathname: "/",
			version: "1.1", headers: []header{{"Host", "x"}, {"Content-Length", "9223372036854775807"}},
			bodyLen: 9223372036854775807,
		},
	},
	{
		name: "chunked in any case",
		head: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
		want: httpRequest{
			requestLine: "POST / HTTP/1.1", method: "POST", uri: "/", port: -1, path: "/", pathname: "/",
			version: "1.1", headers: []header{{"Host", "x"}, {"Transfer-Encoding", "Chunked"}}, chunked: true,
		},
	},
	{
		name: "obs-text in a value",
		head: "GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9 \xff\x80\r\n\r\n",
		want: rootRequest([]header{{"Host", "x"}, {"X-Name", "caf\xc3\xa9 \xff\x80"}}),
	},
	{
		name: "PATCH method",
		head: "PATCH /doc HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "PATCH /doc HTTP/1.1", method: "PATCH", uri: "/doc", port: -1, path: "/doc",
			pathname: "/doc", version: "1.1", headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "extra spaces between the parts",
		head: "DELETE   /a   HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "DELETE   /a   HTTP/1.1", method: "DELETE", uri: "/a", port: -1, path: "/a",
			pathname: "/a", version: "1.1", headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "every token character in a header name",
		head: "GET / HTTP/1.1\r\nHost: x\r\nX-!#$%&'*+.^_`|~09az: v\r\n\r\n",
		want: rootRequest([]header{{"Host", "x"}, {"X-!#$%&'*+.^_`|~09az", "v"}}),
	},
	{
		name: "empty Host on HTTP/1.1",
		head: "GET / HTTP/1.1\r\nhOsT:\r\n\r\n",
		want: rootRequest([]header{{"hOsT", ""}}),
	},
	{
		name: "Host with IPv6 literal",
		head: "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n",
		want: rootRequest([]header{{"Host", "[2001:db8::1]:8080"}}),
	},
	{
		name: "request-target of 8191 bytes, the longest",
		head: "GET " + longTarget(8191) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		want: httpRequest{
			requestLine: "GET " + longTarget(8191) + " HTTP/1.1", method: "GET", uri: longTarget(8191), port: -1,
			path: longTarget(8191), pathname: longTarget(8191), version: "1.1", headers: []header{{"Host", "x"}},
		},
	},
	{
		name: "256 headers",
		head: "GET / HTTP/1.1\r\nHost: x\r\n" + manyHeaders(255) + "\r\n",
		want: rootRequest(append([]header{{"Host", "x"}}, manyHeaderFields(255)...)),
	},
}

// manyHeaderFields returns the fields manyHeaders(n) produces.
func manyHeaderFields(n int) []header {
	h := make([]header, n)
	for i := range h {
		h[i] = header{fmt.Sprintf("X-Header-%d", i), "v"}
	}
	return h
}

var badRequests = []badCase{
	// The course grader's cases.
	{"grader: missing version", "GET /index.html\r\nHost: x\r\n\r\n", 400},
	{"grader: unknown method GOT", "GOT /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"grader: no headers on HTTP/1.1", "GET /index.html HTTP/1.1\r\n\r\n", 400},
	{"grader: HTTX/2.0", "GET /index.html HTTX/2.0\r\nHost: x\r\n\r\n", 400},
	{"grader: Host without colon", "GET /index.html HTTP/1.1\r\nHost localhost:8001\r\n\r\n", 400},

	// Method.
	{"lower-case method", "get / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"mixed-case method", "Get / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"unknown method PROPFIND", "PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"method prefix GE", "GE / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"overlong method", "GETTTTTTTTTTTTTTT / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"tab after method", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"method then line end", "GET\r\nHost: x\r\n\r\n", 400},
	{"leading space", " GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"no request-target", "GET \r\nHost: x\r\n\r\n", 400},
	{"version but no request-target", "GET HTTP/1.1\r\nHost: x\r\n\r\n", 400},

	// Request-target.
	{"asterisk-form with GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"asterisk followed by a path", "OPTIONS */x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"control character in path", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"DEL in path", "GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"tab in path", "GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"NUL in query", "GET /a?b\x00c HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"request-target of 8192 bytes", "GET " + longTarget(8192) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
	{"endless request-target", "GET " + longTarget(8192), 414},
	{"endless absolute-form host", "GET http://" + strings.Repeat("h", 8200), 414},
	{"unsupported scheme", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"overlong scheme", "GET httpss://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"scheme with one slash", "GET http:/x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"empty host", "GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"empty host before port", "GET http://:80/x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"userinfo in request-target", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"port out of range", "GET http://h:65536/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"port with six digits", "GET http://h:000080/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"port with a letter", "GET http://h:8a/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"invalid IPv6 literal", "GET http://[::g]/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"IPv4 in brackets", "GET http://[1.2.3.4]/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"unclosed IPv6 literal", "GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"absolute-form without version", "GET http://h\r\nHost: h\r\n\r\n", 400},
	{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501},
	{"CONNECT with origin-form", "CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"CONNECT without port", "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
	{"CONNECT with a path", "CONNECT example.com:443/x HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},

	// Version.
	{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	{"HTTP/9.9", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505},
	{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
	{"lower-case http", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
	{"two-digit minor", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400},
	{"two-digit major", "GET / HTTP/11.1\r\nHost: x\r\n\r\n", 400},
	{"missing minor", "GET / HTTP/1.\r\nHost: x\r\n\r\n", 400},
	{"missing dot", "GET / HTTP/2\r\nHost: x\r\n\r\n", 400},
	{"letter as major", "GET / HTTP/a.1\r\nHost: x\r\n\r\n", 400},
	{"space after version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
	{"text after version", "GET / HTTP/1.1x\r\nHost: x\r\n\r\n", 400},

	// Line endings.
	{"bare CR ending the request line", "GET / HTTP/1.1\rHost: x\r\n\r\n", 400},
	{"bare CR before the request line", "\rGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"bare CR inside a value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400},
	{"bare CR ending a header line", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\r\n\r\n", 400},
	{"bare CR in the empty line", "GET / HTTP/1.1\r\nHost: x\r\n\rX\r\n", 400},
	{"too many leading empty lines", strings.Repeat("\r\n", 9) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},

	// Header names.
	{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
	{"tab before colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400},
	{"empty header name", "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400},
	{"control character in name", "GET / HTTP/1.1\r\nHost: x\r\nX\x01Y: v\r\n\r\n", 400},
	{"NUL in name", "GET / HTTP/1.1\r\nHost: x\r\nX\x00: v\r\n\r\n", 400},
	{"separator in name", "GET / HTTP/1.1\r\nHost: x\r\nX(Y): v\r\n\r\n", 400},
	{"obs-text in name", "GET / HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: v\r\n\r\n", 400},
	{"name without colon at line end", "GET / HTTP/1.1\r\nHost: x\r\nX-Flag\r\n\r\n", 400},
	{"obs-fold with space", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400},
	{"obs-fold with tab", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n", 400},
	{"whitespace line after the request line", "GET / HTTP/1.1\r\n \r\nHost: x\r\n\r\n", 400},
	{"too many headers", "GET / HTTP/1.1\r\nHost: x\r\n" + manyHeaders(256) + "\r\n", 431},

	// Header values.
	{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400},
	{"NUL starting a value", "GET / HTTP/1.1\r\nHost: x\r\nX: \x00\r\n\r\n", 400},
	{"control character in value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n", 400},
	{"vertical tab in value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\vb\r\n\r\n", 400},

	// Host.
	{"zero Host on HTTP/1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
	{"two Hosts in different case", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
	{"two Hosts on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
	{"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
	{"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
	{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400},
	{"Host with port out of range", "GET / HTTP/1.1\r\nHost: h:99999\r\n\r\n", 400},
	{"Host with a letter in the port", "GET / HTTP/1.1\r\nHost: h:8a\r\n\r\n", 400},
	{"Host with only a port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
	{"Host with bad IPv6", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", 400},

	// Content-Length.
	{"Content-Length with plus sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400},
	{"negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
	{"hex Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", 400},
	{"Content-Length overflow", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
	{"Content-Length just past int64", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", 400},
	{"Content-Length with inner space", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n", 400},
	{"empty Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400},
	{"differing Content-Length headers", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
	{"differing Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n", 400},
	{"Content-Length list with empty element", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,\r\n\r\n", 400},

	// Transfer-Encoding.
	{"Transfer-Encoding with Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"Transfer-Encoding gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	{"Transfer-Encoding gzip then chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
	{"Transfer-Encoding in two headers", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 501},
	{"chunked twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
	{"empty Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n", 400},
	{"Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
}

// outcome is everything one way of feeding an input to the parser produced.
type outcome struct {
	res    parseResult
	err    error
	p      requestParser
	req    *httpRequest
	reqErr error
}

// finish completes an outcome, building the request when the head is done.
func finish(in []byte, p *requestParser, res parseResult, err error) outcome {
	o := outcome{res: res, err: err, p: *p}
	if err == nil && res == parseDone {
		o.req, o.reqErr = newHTTPRequest(in, p)
	}
	return o
}

// checkCall fails t if a call to parse on b broke the parser's contract.
func checkCall(t testing.TB, b []byte, p *requestParser, res parseResult, err error) {
	t.Helper()
	switch {
	case p.pos > len(b):
		t.Fatalf("p.pos = %d beyond the %d bytes given", p.pos, len(b))
	case err == nil && res == parseAgain && p.pos != len(b):
		t.Fatalf("parseAgain with %d of %d bytes consumed", p.pos, len(b))
	case err == nil && res != parseAgain && res != parseDone:
		t.Fatalf("parse returned %d", res)
	case err != nil && !errors.As(err, new(*httpError)):
		t.Fatalf("parse error %v is not an *httpError", err)
	}
}

// parseWhole parses in with one call.
func parseWhole(t testing.TB, in []byte) outcome {
	var p requestParser
	res, err := p.parse(in)
	checkCall(t, in, &p, res, err)
	return finish(in, &p, res, err)
}

// parseByteAtATime grows the head one byte per call, as a client sending
// one byte per segment would.
func parseByteAtATime(t testing.TB, in []byte) outcome {
	var p requestParser
	res, err := p.parse(nil)
	checkCall(t, nil, &p, res, err)
	var buf []byte
	for _, c := range in {
		if err != nil || res == parseDone {
			break
		}
		buf = append(buf, c)
		res, err = p.parse(buf)
		checkCall(t, buf, &p, res, err)
	}
	return finish(in, &p, res, err)
}

// parseSplit parses in[:k] and then, if more is needed, all of in.
func parseSplit(t testing.TB, in []byte, k int) outcome {
	var p requestParser
	res, err := p.parse(in[:k])
	checkCall(t, in[:k], &p, res, err)
	if err == nil && res == parseAgain {
		res, err = p.parse(in)
		checkCall(t, in, &p, res, err)
	}
	return finish(in, &p, res, err)
}

// status returns the status an outcome answers with: the error's, 0 for a
// valid request, or -1 when the head is still incomplete.
func (o outcome) status() int {
	var he *httpError
	switch {
	case errors.As(o.err, &he), errors.As(o.reqErr, &he):
		return he.status
	case o.res == parseAgain:
		return -1
	}
	return 0
}

func (o outcome) String() string {
	return fmt.Sprintf("res=%d err=%v reqErr=%v pos=%d state=%d req=%+v", o.res, o.err, o.reqErr, o.p.pos, o.p.state, o.req)
}

// sameRequest compares two requests, treating nil and empty header lists
// alike.
func sameRequest(a, b httpRequest) bool {
	ha, hb := a.headers, b.headers
	a.headers, b.headers = nil, nil
	return reflect.DeepEqual(a, b) && slices.Equal(ha, hb)
}

func TestParseGood(t *testing.T) {
	for _, c := range goodRequests {
		t.Run(c.name, func(t *testing.T) {
			o := parseWhole(t, []byte(c.head+c.body))
			if o.err != nil || o.res != parseDone || o.reqErr != nil {
				t.Fatalf("got %v, want a valid request", o)
			}
			if o.p.pos != len(c.head) {
				t.Errorf("p.pos = %d, want the head length %d", o.p.pos, len(c.head))
			}
			want := c.want
			want.headerLen = len(c.head)
			if !sameRequest(*o.req, want) {
				t.Errorf("request mismatch\n got %+v\nwant %+v", *o.req, want)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	for _, c := range badRequests {
		t.Run(c.name, func(t *testing.T) {
			o := parseWhole(t, []byte(c.in))
			if got := o.status(); got != c.status {
				t.Fatalf("status %d, want %d (%v)", got, c.status, o)
			}
			err := o.err
			if err == nil {
				err = o.reqErr
			}
			if want := fmt.Sprintf("%d %s: ", c.status, statusText(c.status)); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

func TestParseEveryMethod(t *testing.T) {
	for _, m := range httpMethods {
		in := []byte(m + " /x HTTP/1.1\r\nHost: x\r\n\r\n")
		o := parseWhole(t, in)
		if m == "CONNECT" {
			// CONNECT's own form is covered by the bad table.
			if o.status() != 400 {
				t.Errorf("%s with origin-form: %v, want 400", m, o)
			}
			continue
		}
		if o.status() != 0 || o.req.method != m {
			t.Errorf("%s: %v", m, o)
		}
	}
}

// TestParseResumable feeds every case one byte at a time and in two parts
// split at every offset; the outcome must never depend on how the bytes
// arrived.
func TestParseResumable(t *testing.T) {
	var inputs []struct{ name, in string }
	for _, c := range goodRequests {
		inputs = append(inputs, struct{ name, in string }{c.name, c.head + c.body})
	}
	for _, c := range badRequests {
		inputs = append(inputs, struct{ name, in string }{c.name, c.in})
	}
	for _, c := range inputs {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			whole := parseWhole(t, in)
			if got := parseByteAtATime(t, in); !reflect.DeepEqual(got, whole) {
				t.Fatalf("byte at a time:\n got %v\nwant %v", got, whole)
			}
			for k := 0; k <= len(in); k++ {
				if got := parseSplit(t, in, k); !reflect.DeepEqual(got, whole) {
					t.Fatalf("split at %d:\n got %v\nwant %v", k, got, whole)
				}
			}
		})
	}
}

// TestParseStopsAfterError checks that an error is sticky: more bytes do
// not revive a parser that refused the head.
func TestParseStopsAfterError(t *testing.T) {
	var p requestParser
	_, err := p.parse([]byte("get / HTTP/1.1\r\n"))
	if err == nil {
		t.Fatal("lower-case method accepted")
	}
	pos := p.pos
	_, err2 := p.parse([]byte("get / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if err2 != err || p.pos != pos {
		t.Errorf("second call: err %v pos %d, want %v pos %d", err2, p.pos, err, pos)
	}
}

// TestParseDoneIsStable checks that calling parse again after parseDone,
// with body bytes appended, neither moves p.pos nor reads the body.
func TestParseDoneIsStable(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	var p requestParser
	if res, err := p.parse([]byte(head)); res != parseDone || err != nil {
		t.Fatalf("parse = %d, %v", res, err)
	}
	if res, err := p.parse([]byte(head + "GARBAGE\x00\r")); res != parseDone || err != nil || p.pos != len(head) {
		t.Errorf("after done: %d, %v, pos %d", res, err, p.pos)
	}
}

func TestParseHeaderLineBeforeRequestLine(t *testing.T) {
	var p requestParser
	if _, err := p.parseHeaderLine([]byte("Host: x\r\n")); err == nil {
		t.Error("parseHeaderLine on a fresh parser did not fail")
	}
}

func TestHTTPErrorMessage(t *testing.T) {
	err := newHTTPError(400, "header name contains a space")
	if got, want := err.Error(), "400 Bad Request: header name contains a space"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// largeHead is a head with 100 headers, about 8 KB.
var largeHead = func() string {
	var sb strings.Builder
	sb.WriteString("GET /some/deep/path/index.html?session=abcdef HTTP/1.1\r\nHost: localhost:8001\r\n")
	for i := range 99 {
		fmt.Fprintf(&sb, "X-Custom-Header-%02d: %s\r\n", i, strings.Repeat("v", 56))
	}
	sb.WriteString("\r\n")
	return sb.String()
}()

func benchmarkParse(b *testing.B, head string) {
	in := []byte(head)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var p requestParser
		if res, err := p.parse(in); res != parseDone || err != nil {
			b.Fatalf("parse = %d, %v", res, err)
		}
	}
}

// BenchmarkParseTypical parses a browser's ~550-byte GET head.
func BenchmarkParseTypical(b *testing.B) { benchmarkParse(b, typicalHead) }

// BenchmarkParseLarge parses a head with 100 headers, about 8 KB.
func BenchmarkParseLarge(b *testing.B) { benchmarkParse(b, largeHead) }

// BenchmarkNewHTTPRequestTypical parses the typical head and builds the
// request from it, which is what a session does per request.
func BenchmarkNewHTTPRequestTypical(b *testing.B) {
	in := []byte(typicalHead)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var p requestParser
		if _, err := p.parse(in); err != nil {
			b.Fatal(err)
		}
		if _, err := newHTTPRequest(in, &p); err != nil {
			b.Fatal(err)
		}
	}
}
