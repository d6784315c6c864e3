package main

import (
	"fmt"
	"strconv"
	"time"
)

// imfFixdate is the HTTP date format (RFC 9110 §5.6.7), always in GMT:
// "Sun, 06 Nov 1994 08:49:37 GMT".
const imfFixdate = "Mon, 02 Jan 2006 15:04:05 GMT"

// httpResponse is a response being built: a status line, ordered headers
// and an optional body. Mirrors xps_http_res_t.
type httpResponse struct {
	core       *core
	status     int
	statusLine string
	headers    []header
	body       []byte
	out        []byte // the serialized response, kept for reuse (see serialize)
}

// keptOutSize bounds the serialized response a destroyed response keeps
// for the next: a large body would hold its memory on the free list.
const keptOutSize = 4 << 10

// now is the clock responses are dated with; tests replace it.
var now = time.Now

// The Date value changes once a second, so it is formatted once a second,
// not once per response.
var (
	dateSecond int64
	dateValue  string
)

// httpDate returns the current time as an IMF-fixdate.
func httpDate() string {
	t := now()
	if s := t.Unix(); s != dateSecond || dateValue == "" {
		dateSecond, dateValue = s, t.UTC().Format(imfFixdate)
	}
	return dateValue
}

// newHTTPResponse returns a response with the given status and what every
// response says by default: the headers Date, Server,
// Access-Control-Allow-Origin (any page may read what this server serves)
// and Connection: close (the server closes the connection after each
// response, and says so, so a client sends no second request on it), in
// this order; and for an error, its page (errorPage) as the body, with
// Content-Type: text/html. The response comes from the core's free list
// if it can, with the storage of its header table and serialized bytes.
// Mirrors xps_http_res_create.
func newHTTPResponse(c *core, status int) *httpResponse {
	r := c.freeResponses.get()
	if r == nil {
		r = &httpResponse{}
	}
	// Room for the headers a session adds, so they do not reallocate.
	headers := r.headers[:0]
	if cap(headers) < 8 {
		headers = make([]header, 0, 8)
	}
	headers = append(headers,
		header{"Date", httpDate()},
		header{"Server", serverName},
		header{"Access-Control-Allow-Origin", "*"},
		header{"Connection", "close"})
	*r = httpResponse{core: c, status: status, statusLine: responseLine(status), headers: headers, out: r.out[:0]}
	if status >= 400 {
		r.setHeader("Content-Type", "text/html")
		r.setBody(errorPage(status))
	}
	return r
}

// close puts the response on the core's free list, its header table and
// serialized bytes with it. Mirrors xps_http_res_destroy.
func (r *httpResponse) close() {
	if cap(r.out) > keptOutSize {
		r.out = nil
	}
	r.body = nil
	r.core.freeResponses.put(r)
}

// setHeader appends a header; the caller makes sure it is not a duplicate.
// Mirrors xps_http_set_header.
func (r *httpResponse) setHeader(key, val string) {
	r.headers = append(r.headers, header{key, val})
}

// setBody sets the body. Mirrors xps_http_res_set_body.
func (r *httpResponse) setBody(body []byte) { r.body = body }

// serialize returns the response as sent: the status line, each header as
// "Name: value", each line ended by CRLF, an empty line, then the body. The
// bytes are the response's own storage, valid until it is closed or
// serialized again. Mirrors xps_http_res_serialize.
func (r *httpResponse) serialize() []byte {
	r.out = append(appendHead(r.out[:0], r.statusLine, r.headers), r.body...)
	return r.out
}

// responseLine returns the status line of a response with code, from
// statusLines when it is there.
func responseLine(code int) string {
	if code >= 0 && code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + statusText(code)
}

// statusLines holds the status lines of the codes 100 to 599, made once, so
// that no response builds its own.
var statusLines = func() (lines [600]string) {
	for code := 100; code < len(lines); code++ {
		lines[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + statusText(code)
	}
	return lines
}()

// statusText returns the reason phrase of an HTTP status code (RFC 9110
// §15), or "Unknown" for a code the course never sends.
func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 414:
		return "URI Too Long"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Unknown"
}

// errorPage is the small HTML page an error response carries as its body.
func errorPage(status int) []byte {
	title := fmt.Sprintf("%d %s", status, statusText(status))
	return fmt.Appendf(nil, "<!DOCTYPE html>\n<html><head><title>%s</title></head>\n<body><h1>%s</h1><hr>%s</body></html>\n", title, title, serverName)
}
