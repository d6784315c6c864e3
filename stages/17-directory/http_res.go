package main

import (
	"strconv"
	"time"
)

// imfFixdate is the HTTP date format (RFC 9110 §5.6.7), always in GMT:
// "Sun, 06 Nov 1994 08:49:37 GMT".
const imfFixdate = "Mon, 02 Jan 2006 15:04:05 GMT"

// httpResponse is a response being built: a status line, ordered headers
// and an optional body. Mirrors xps_http_res_t.
type httpResponse struct {
	status     int
	statusLine string
	headers    []header
	body       []byte
}

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

// newHTTPResponse returns a response with the given status and the headers
// every response carries, in this order: Date, Server, and
// Access-Control-Allow-Origin (any page may read what this server serves).
// Mirrors xps_http_res_create.
func newHTTPResponse(status int) *httpResponse {
	// Room for the headers a session adds, so they do not reallocate.
	headers := make([]header, 3, 8)
	headers[0] = header{"Date", httpDate()}
	headers[1] = header{"Server", serverName}
	headers[2] = header{"Access-Control-Allow-Origin", "*"}
	return &httpResponse{
		status:     status,
		statusLine: "HTTP/1.1 " + strconv.Itoa(status) + " " + statusText(status),
		headers:    headers,
	}
}

// setHeader appends a header; the caller makes sure it is not a duplicate.
// Mirrors xps_http_set_header.
func (r *httpResponse) setHeader(key, val string) {
	r.headers = append(r.headers, header{key, val})
}

// setBody sets the body. Mirrors xps_http_res_set_body.
func (r *httpResponse) setBody(body []byte) { r.body = body }

// serialize returns the response as sent: the status line, each header as
// "Name: value", each line ended by CRLF, an empty line, then the body.
// Mirrors xps_http_res_serialize.
func (r *httpResponse) serialize() []byte {
	return append(serializeHead(r.statusLine, r.headers, len(r.body)), r.body...)
}
