package main

import (
	"fmt"
	"strconv"
	"strings"
)

// What the parser, the request and the response share, as the course's
// xps_http module holds it: header fields, the methods, the error a bad
// request becomes, the serialization of a head, and the classes of bytes
// the grammar is written in.

// header is one header field as received: the name with its original case
// and the value without surrounding whitespace.
type header struct {
	key, val string
}

// httpMethods are the methods the parser accepts, case-sensitively. The
// course's enumeration stops at CONNECT; PATCH (RFC 5789) is our addition,
// because it is common and calling it malformed would be wrong. Any other
// method is answered with 400, as the course's tester requires (RFC 9110
// would allow 501).
var httpMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"}

// lookupMethod returns the entry of httpMethods equal to m, or "".
func lookupMethod(m []byte) string {
	for _, name := range httpMethods {
		if string(m) == name {
			return name
		}
	}
	return ""
}

// httpError is a malformed or unsupported request. status is the HTTP status
// to answer with; reason names the defect for the log.
type httpError struct {
	status int
	reason string
}

// newHTTPError returns the error for a request that must be answered with
// status.
func newHTTPError(status int, reason string) *httpError {
	return &httpError{status: status, reason: reason}
}

// Error returns the status, its reason phrase and the defect, e.g.
// "400 Bad Request: header name contains a space".
func (e *httpError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, statusText(e.status), e.reason)
}

// serializeHead returns a message head: the first line, each header as
// "Key: Value", each line ended by CRLF, and the empty line. The slice is
// sized for the head and spare more bytes, so a body appended after it
// needs no second allocation.
func serializeHead(first string, headers []header, spare int) []byte {
	n := len(first) + len("\r\n\r\n") + spare
	for _, h := range headers {
		n += len(h.key) + len(": \r\n") + len(h.val)
	}
	return appendHead(make([]byte, 0, n), first, headers)
}

// appendHead appends a message head, as serializeHead makes it, to b.
func appendHead(b []byte, first string, headers []header) []byte {
	b = append(b, first...)
	b = append(b, "\r\n"...)
	b = appendHeaders(b, headers)
	return append(b, "\r\n"...)
}

// appendHeaders appends each header as "Key: Value" CRLF to b. Mirrors
// xps_http_serialize_headers.
func appendHeaders(b []byte, headers []header) []byte {
	for _, h := range headers {
		b = append(b, h.key...)
		b = append(b, ": "...)
		b = append(b, h.val...)
		b = append(b, "\r\n"...)
	}
	return b
}

func isDigit(c byte) bool    { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool    { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isHexDigit(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// quoteByte quotes c for an error message, showing any byte that is not
// printable ASCII as an escape rather than as the character it would be in
// Latin-1.
func quoteByte(c byte) string {
	return strconv.QuoteToASCII(string([]byte{c}))
}

// isCtl reports whether c is an ASCII control character (space excluded).
func isCtl(c byte) bool { return c < 0x20 || c == 0x7f }

// isUnreserved reports whether c is an RFC 3986 unreserved character, the
// set we accept in host names (percent-encoding and sub-delims in a reg-name
// are legal but unused in practice, and refusing them keeps hosts plain).
func isUnreserved(c byte) bool {
	return isDigit(c) || isAlpha(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// tchars marks the bytes that may appear in a token such as a header name
// (RFC 9110 §5.6.2). A table, because header names are the parser's
// hottest loop.
var tchars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isDigit(byte(c)) || isAlpha(byte(c)) || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

// isTchar reports whether c is a token character.
func isTchar(c byte) bool { return tchars[c] }
