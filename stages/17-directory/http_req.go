package main

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// httpRequest is a parsed and validated request head. Mirrors
// xps_http_req_t.
type httpRequest struct {
	requestLine string // as received, without the line ending
	method      string
	uri         string // the request-target as sent
	schema      string // absolute-form only, lower-cased
	host        string // absolute-form and authority-form only
	port        int    // absolute-form: explicit, else 80 or 443; -1 without a scheme
	path        string // pathname plus "?query" if there was one
	pathname    string // without the query, still percent-encoded
	query       string // without the "?"
	version     string // "1.0" or "1.1"
	headers     []header
	headerLen   int   // bytes in the head, empty line included
	bodyLen     int64 // Content-Length, 0 without one
	chunked     bool  // Transfer-Encoding: chunked
}

// newHTTPRequest builds the request from a parser that returned parseDone on
// head, then checks the rules that span several fields (Host, message
// framing, CONNECT). On a violation it returns an *httpError carrying the
// status to answer with. The request is built in the parser's storage (see
// requestParser.req): the next request built from the same parser takes
// its place. Mirrors xps_http_req_create.
func newHTTPRequest(head []byte, p *requestParser) (*httpRequest, error) {
	if p.state != hDone || p.pos > len(head) {
		return nil, newHTTPError(500, "request head is not complete")
	}
	// One copy of the head backs every string of the request.
	s := string(head[:p.pos])
	// The request is built in the storage of the one the parser built
	// before, if any (see requestParser.req), its header table too.
	r := p.req
	if r == nil {
		r = &httpRequest{}
		p.req = r
	}
	headers := r.headers[:0]
	if cap(headers) < len(p.headers) {
		headers = make([]header, 0, len(p.headers))
	}
	*r = httpRequest{
		requestLine: s[p.requestLineStart:p.requestLineEnd],
		method:      p.method,
		uri:         s[p.uriStart:p.uriEnd],
		schema:      strings.ToLower(s[p.schemaStart:p.schemaEnd]),
		host:        s[p.hostStart:p.hostEnd],
		port:        -1,
		path:        s[p.pathStart:p.pathEnd],
		pathname:    s[p.pathnameStart:p.pathnameEnd],
		query:       s[p.queryStart:p.queryEnd],
		version:     "1.1",
		headers:     headers[:len(p.headers)],
		headerLen:   p.pos,
	}
	if s[p.versionStart:p.versionEnd] == "1.0" {
		r.version = "1.0"
	}
	switch {
	case p.portEnd > p.portStart:
		r.port = p.port
	case r.schema == "http":
		r.port = 80
	case r.schema == "https":
		r.port = 443
	}
	if p.form == formAbsolute && r.pathname == "" {
		// "http://host" and "http://host?q" ask for the root (RFC 9112 §3.2.2).
		r.pathname = "/"
		r.path = "/" + r.path
	}
	for i, h := range p.headers {
		r.headers[i] = header{key: s[h.nameStart:h.nameEnd], val: s[h.valStart:h.valEnd]}
	}

	if err := r.checkHost(); err != nil {
		return nil, err
	}
	if err := r.checkFraming(); err != nil {
		return nil, err
	}
	if r.method == "CONNECT" {
		return nil, newHTTPError(501, "CONNECT is not supported: this server is not a tunnel")
	}
	return r, nil
}

// checkHost applies RFC 9112 §3.2: an HTTP/1.1 request needs exactly one
// Host, any request at most one, and its value must be a valid authority.
func (r *httpRequest) checkHost() error {
	var host string
	n := 0
	for _, h := range r.headers {
		if strings.EqualFold(h.key, "Host") {
			host = h.val
			n++
		}
	}
	switch {
	case n > 1:
		return newHTTPError(400, "more than one Host header")
	case n == 0 && r.version == "1.1":
		return newHTTPError(400, "HTTP/1.1 request without a Host header")
	case n == 1 && !validHostValue(host):
		return newHTTPError(400, fmt.Sprintf("invalid Host header %q", host))
	}
	return nil
}

// validHostValue reports whether v is uri-host [":" port] with the host
// characters the parser accepts in a request-target. An empty value is
// valid: RFC 9110 §7.2 requires it when the target has no authority.
func validHostValue(v string) bool {
	if v == "" {
		return true
	}
	host, port := v, ""
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return false
		}
		addr, err := netip.ParseAddr(v[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return false
		}
		host, port = "", v[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
	} else if i := strings.IndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i:]
		if host == "" {
			return false
		}
	}
	for i := 0; i < len(host); i++ {
		if !isUnreserved(host[i]) {
			return false
		}
	}
	if port == "" {
		return true
	}
	digits := port[1:]
	if len(digits) > len("65535") {
		return false
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return false
		}
		n = n*10 + int(digits[i]-'0')
	}
	return n <= 65535
}

// checkFraming validates Content-Length and Transfer-Encoding (RFC 9112
// §6) and sets bodyLen and chunked. Disagreements about where the body ends
// are what request smuggling feeds on, so every doubtful case is a 400.
func (r *httpRequest) checkFraming() error {
	haveLength := false
	for _, h := range r.headers {
		if !strings.EqualFold(h.key, "Content-Length") {
			continue
		}
		// A comma list of identical values is allowed (RFC 9110 §8.6); an
		// empty element is not, since nothing legitimate produces one.
		for elem := range strings.SplitSeq(h.val, ",") {
			n, ok := parseContentLength(strings.Trim(elem, " \t"))
			if !ok {
				return newHTTPError(400, fmt.Sprintf("invalid Content-Length %q", h.val))
			}
			if haveLength && n != r.bodyLen {
				return newHTTPError(400, "conflicting Content-Length values")
			}
			r.bodyLen, haveLength = n, true
		}
	}

	haveTE, chunked, other := false, 0, ""
	for _, h := range r.headers {
		if !strings.EqualFold(h.key, "Transfer-Encoding") {
			continue
		}
		haveTE = true
		for elem := range strings.SplitSeq(h.val, ",") {
			coding := strings.Trim(elem, " \t")
			switch {
			case coding == "":
				return newHTTPError(400, fmt.Sprintf("empty transfer coding in %q", h.val))
			case strings.EqualFold(coding, "chunked"):
				chunked++
			case other == "":
				other = coding
			}
		}
	}
	switch {
	case !haveTE:
		return nil
	case r.version == "1.0":
		// RFC 9112 §6.1: HTTP/1.0 has no Transfer-Encoding, so its
		// presence means the framing is faulty.
		return newHTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
	case haveLength:
		return newHTTPError(400, "both Transfer-Encoding and Content-Length")
	case other != "":
		return newHTTPError(501, fmt.Sprintf("unsupported transfer coding %q", other))
	case chunked > 1:
		return newHTTPError(400, "chunked transfer coding applied more than once")
	}
	r.chunked = true
	return nil
}

// parseContentLength parses a Content-Length value: one or more decimal
// digits that fit an int64. Signs, spaces, hex and the empty string fail;
// strconv.ParseInt would accept a sign.
func parseContentLength(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, false
		}
		d := int64(v[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// getHeader returns the value of the first header named key, compared
// case-insensitively (RFC 9110 §5.1). Mirrors xps_http_get_header.
func (r *httpRequest) getHeader(key string) (string, bool) {
	for _, h := range r.headers {
		if strings.EqualFold(h.key, key) {
			return h.val, true
		}
	}
	return "", false
}

// serialize returns the head as it is forwarded: the request line as
// received, the headers as "Key: Value", all with CRLF, and the empty line.
// The caller appends any body bytes. Mirrors xps_http_req_serialize.
func (r *httpRequest) serialize() []byte {
	return serializeHead(r.requestLine, r.headers, 0)
}

// cleanPathname turns a request pathname into a clean absolute path that
// cannot climb above "/": it percent-decodes it, then removes dot-segments
// (RFC 3986 §5.2.4) and empty segments. Decoding comes first so that
// "%2e%2e" and "%2f" cannot smuggle a ".." or "/" past the cleaning. A
// trailing slash is kept because it marks a directory. A malformed escape
// or an encoded NUL is a 400.
func cleanPathname(pathname string) (string, error) {
	decoded, err := percentDecode(pathname)
	if err != nil {
		return "", err
	}
	if alreadyClean(decoded) {
		// Nearly every request: nothing to remove, nothing to allocate.
		return decoded, nil
	}
	segments := make([]string, 0, strings.Count(decoded, "/")+1)
	last := ""
	for seg := range strings.SplitSeq(decoded, "/") {
		last = seg
		switch seg {
		case "", ".":
		case "..":
			if len(segments) > 0 {
				segments = segments[:len(segments)-1]
			}
		default:
			segments = append(segments, seg)
		}
	}
	var sb strings.Builder
	sb.Grow(len(decoded) + 1)
	for _, seg := range segments {
		sb.WriteByte('/')
		sb.WriteString(seg)
	}
	// "/a/b/", "/a/b/." and "/a/b/c/.." all name the directory /a/b/.
	if len(segments) == 0 || last == "" || last == "." || last == ".." {
		sb.WriteByte('/')
	}
	return sb.String(), nil
}

// alreadyClean reports whether cleanPathname would return p unchanged: p is
// absolute and has no empty, "." or ".." segment, a trailing slash aside.
func alreadyClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for rest := p[1:]; rest != ""; {
		seg, after, _ := strings.Cut(rest, "/")
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		rest = after
	}
	return true
}

// percentDecode replaces each %XX escape in s by its byte.
func percentDecode(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2]) {
			return "", newHTTPError(400, fmt.Sprintf("malformed percent-escape in path %q", s))
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if c == 0 {
			return "", newHTTPError(400, "encoded NUL in path")
		}
		b = append(b, c)
		i += 2
	}
	return string(b), nil
}

// unhex returns the value of the hex digit c.
func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
