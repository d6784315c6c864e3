package harness

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Header is one response header as it appeared on the wire.
type Header struct{ Name, Value string }

// Response is an HTTP response parsed from raw bytes, keeping the header
// order and the exact body bytes.
type Response struct {
	Proto   string // "HTTP/1.1"
	Status  int
	Reason  string
	Headers []Header
	HeadLen int    // bytes up to and including the blank line
	Body    []byte // everything after the head
}

// Get returns the first value of the named header (case-insensitive), or "".
func (r *Response) Get(name string) string {
	v, _ := r.Lookup(name)
	return v
}

// Lookup returns the first value of the named header and whether it exists.
func (r *Response) Lookup(name string) (string, bool) {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Count returns how many times the named header appears.
func (r *Response) Count(name string) int {
	n := 0
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			n++
		}
	}
	return n
}

// ParseResponse parses raw as a status line, headers and a blank line,
// followed by the body. It accepts CRLF or bare LF line endings and treats
// everything after the head as the body, whatever Content-Length says, so a
// caller can compare the two.
func ParseResponse(raw []byte) (*Response, error) {
	end, sepLen := bytes.Index(raw, []byte("\r\n\r\n")), 4
	if lf := bytes.Index(raw, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
		end, sepLen = lf, 2
	}
	if end < 0 {
		return nil, fmt.Errorf("no end of head in %d bytes: %q", len(raw), Abbrev(raw, 120))
	}
	lines := strings.Split(strings.ReplaceAll(string(raw[:end]), "\r\n", "\n"), "\n")
	r := &Response{HeadLen: end + sepLen, Body: raw[end+sepLen:]}
	proto, rest, _ := strings.Cut(lines[0], " ")
	code, reason, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/") || err != nil || len(code) != 3 {
		return nil, fmt.Errorf("malformed status line %q", lines[0])
	}
	r.Proto, r.Status, r.Reason = proto, status, reason
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("malformed header line %q", l)
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: strings.TrimSpace(value)})
	}
	return r, nil
}

// RoundTrip connects to addr, writes the raw request, reads until the server
// closes the connection and parses what came back.
func RoundTrip(addr, request string, timeout time.Duration) (*Response, []byte, error) {
	return RoundTripFrom("", addr, request, timeout)
}

// Get sends a minimal HTTP/1.1 GET for target to addr and returns the
// response once the server closes the connection.
func Get(addr, target string, timeout time.Duration) (*Response, error) {
	host, _, _ := net.SplitHostPort(addr)
	r, _, err := RoundTrip(addr, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n", timeout)
	return r, err
}

// Abbrev quotes at most n bytes of b for a message, marking a cut.
func Abbrev(b []byte, n int) string {
	if len(b) <= n {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:n])) + fmt.Sprintf("… (%d bytes)", len(b))
}
