package main

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// parseResult tells the caller of the parser what to do next. It replaces
// the course's E_AGAIN / E_NEXT / OK codes; malformed input is reported
// through the error result instead, never through a parseResult.
type parseResult int

const (
	// parseAgain means every byte so far was consumed and more are needed.
	parseAgain parseResult = iota
	// parseNext means one header line is complete and the next may follow.
	parseNext
	// parseDone means the part asked for (the request line, or the whole
	// head) is complete.
	parseDone
)

// Limits the parser enforces on its own. The 100 000-byte cap on the whole
// head is the caller's, because only the caller knows how much it buffered.
const (
	// maxTargetLen bounds the request-target. nginx's request line must fit
	// in 8 KiB, so a target of 8192 bytes or more is a 414 there; here too,
	// as soon as its 8192nd byte arrives.
	maxTargetLen = 8191
	// maxHeaders bounds the number of header lines (431 beyond it), so the
	// header list cannot grow to tens of thousands of tiny entries.
	maxHeaders = 256
	// maxLeadingEmptyLines is how many empty lines before the request line
	// are forgiven; RFC 9112 §2.2 asks for at least one, we allow a few.
	maxLeadingEmptyLines = 8
	// maxMethodLen is the length of the longest method in httpMethods, so an
	// overlong method fails at its eighth letter instead of at the space.
	maxMethodLen = 7
	// maxIPLiteralLen is the longest IPv6 text between brackets
	// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").
	maxIPLiteralLen = 45
)

// parseState is where the parser stands inside the head: which byte it
// expects next. The states follow the course's RL_* and H_* states
// (xps_http_parser_state_t); the doc comment of each state that differs
// says how.
type parseState int

// Request-line states. The states from rlSchema to rlAsterisk are exactly
// those inside the request-target; inTarget relies on that order.
const (
	// rlStart (RL_START) skips empty lines and waits for the method.
	rlStart parseState = iota
	// rlStartCR has seen the CR of an empty line before the request line.
	rlStartCR
	// rlMethod (RL_METHOD) reads upper-case letters up to the space.
	rlMethod
	// rlSpAfterMethod (RL_SP_AFTER_METHOD) decides the request-target's form
	// from its first byte.
	rlSpAfterMethod
	// rlSchema (RL_SCHEMA) reads the scheme of an absolute-form target.
	rlSchema
	// rlSchemaSlash (RL_SCHEMA_SLASH) expects the first "/" after "http:".
	rlSchemaSlash
	// rlSchemaSlashSlash (RL_SCHEMA_SLASH_SLASH) expects the second "/".
	rlSchemaSlashSlash
	// rlHost (RL_HOST) reads a host name, or sees the "[" of an IPv6 literal.
	rlHost
	// rlHostIPLiteral reads an IPv6 address up to its "]".
	rlHostIPLiteral
	// rlHostEnd follows the "]" of an IPv6 literal.
	rlHostEnd
	// rlPort (RL_PORT) reads the port digits.
	rlPort
	// rlPath (RL_PATH) reads the path up to "?" or the space.
	rlPath
	// rlQuery (the query part of the course's RL_PATHNAME) reads the query.
	// Only "?" starts it: "&", "=" and "#" belong to the path or the query.
	rlQuery
	// rlAsterisk follows the "*" of OPTIONS' asterisk-form target.
	rlAsterisk
	// rlVersionStart (RL_VERSION_START) skips spaces before "HTTP/".
	rlVersionStart
	// rlVersionH (RL_VERSION_H) expects the first "T".
	rlVersionH
	// rlVersionHT (RL_VERSION_HT) expects the second "T".
	rlVersionHT
	// rlVersionHTT (RL_VERSION_HTT) expects "P".
	rlVersionHTT
	// rlVersionHTTP (RL_VERSION_HTTP) expects "/".
	rlVersionHTTP
	// rlVersionHTTPSlash (RL_VERSION_HTTP_SLASH) expects the major digit.
	rlVersionHTTPSlash
	// rlVersionMajor (RL_VERSION_MAJOR) expects ".".
	rlVersionMajor
	// rlVersionDot (RL_VERSION_DOT) expects the minor digit.
	rlVersionDot
	// rlVersionMinor (RL_VERSION_MINOR) expects the line end.
	rlVersionMinor
	// rlCR (RL_CR) expects the LF that completes the request line. The
	// course's RL_LF has no counterpart: the line is complete at its LF,
	// without waiting for the next byte.
	rlCR
)

// Header states.
const (
	// hStart (H_START, and the course's H_LF) is at the start of a line: a
	// name begins, or an empty line ends the head. The course finishes a
	// header line only when the next line's first byte arrives; here it is
	// finished at its LF, so H_LF's decisions move to the next line's start.
	hStart parseState = iota + rlCR + 1
	// hName (H_NAME) reads token characters up to ":".
	hName
	// hColon (H_COLON and H_SP_AFTER_COLON) skips spaces and tabs after ":".
	hColon
	// hValue (H_VAL) reads the value up to the line end.
	hValue
	// hCR (H_CR) expects the LF that ends a header line.
	hCR
	// hLFCR (H_LF_CR) has seen the CR of the empty line and expects its LF.
	hLFCR
	// hDone is after the empty line: the head is complete.
	hDone
)

// inTarget reports whether s is a state inside the request-target.
func (s parseState) inTarget() bool {
	return rlSchema <= s && s <= rlAsterisk
}

// targetForm is the form of the request-target (RFC 9112 §3.2).
type targetForm int

const (
	formOrigin    targetForm = iota // "/path?query"
	formAbsolute                    // "http://host:port/path?query"
	formAuthority                   // "host:port", CONNECT only
	formAsterisk                    // "*", OPTIONS only
)

// headerSpan locates one header line's name and value (trimmed) in the head.
type headerSpan struct {
	nameStart, nameEnd int
	valStart, valEnd   int
}

// requestParser is the resumable state of one request head being parsed.
// Every component is a [start, end) pair of offsets into the head, so the
// parser copies nothing; an absent component is an empty pair. Mirrors the
// parser fields of xps_http_req_t.
type requestParser struct {
	state parseState
	// pos is the offset of the next byte to read.
	pos int
	// err is the first error; once set, every later call returns it.
	err error

	emptyLines int
	method     string // one of httpMethods, once the method is complete
	form       targetForm
	port       int // the value of the port digits read so far

	requestLineStart, requestLineEnd int
	methodStart, methodEnd           int
	uriStart, uriEnd                 int
	schemaStart, schemaEnd           int
	hostStart, hostEnd               int
	portStart, portEnd               int
	pathStart, pathEnd               int
	pathnameStart, pathnameEnd       int
	queryStart, queryEnd             int
	versionStart, versionEnd         int // "1.1": the major digit to after the minor

	nameStart, nameEnd int // the header line being read
	valStart, valEnd   int

	headers []headerSpan

	// req is the request newHTTPRequest last built from this parser, whose
	// storage it builds the next one in: a session that is reused keeps
	// its parser, and so builds its requests without allocating.
	req *httpRequest
}

// parse runs the request-line parser, then the header-line parser until the
// head is complete or the bytes run out. b is the whole head received so
// far: the caller appends to it and calls again with the same parser, and
// parsing resumes at p.pos. It returns parseDone or parseAgain, never
// parseNext. After parseDone, p.pos is the length of the head including its
// empty line; the bytes after it are body bytes.
func (p *requestParser) parse(b []byte) (parseResult, error) {
	res, err := p.parseRequestLine(b)
	if err != nil || res != parseDone {
		return res, err
	}
	for {
		res, err = p.parseHeaderLine(b)
		if err != nil || res != parseNext {
			return res, err
		}
	}
}

// fail stops the parse with an error carrying status.
func (p *requestParser) fail(status int, reason string) (parseResult, error) {
	return p.abort(newHTTPError(status, reason))
}

// abort records the first error so that a caller who keeps feeding bytes
// gets the same answer instead of a parse resumed in a broken state.
func (p *requestParser) abort(err error) (parseResult, error) {
	p.err = err
	return parseAgain, err
}

// parseRequestLine reads the request line from b, starting at p.pos. It
// returns parseDone once the line's LF is read (p.pos is then the first byte
// of the header section), or parseAgain when b ends first.
// Mirrors xps_http_parse_request_line.
func (p *requestParser) parseRequestLine(b []byte) (parseResult, error) {
	if p.err != nil {
		return parseAgain, p.err
	}
	if p.state >= hStart {
		return parseDone, nil
	}
	for p.pos < len(b) {
		i, ch := p.pos, b[p.pos]
		p.pos++
		if p.state.inTarget() && ch != ' ' && i-p.uriStart >= maxTargetLen {
			return p.fail(414, fmt.Sprintf("request-target longer than %d bytes", maxTargetLen))
		}

		switch p.state {
		case rlStart:
			switch {
			case ch == '\r':
				p.state = rlStartCR
			case ch == '\n':
				if err := p.countEmptyLine(); err != nil {
					return p.abort(err)
				}
			case 'A' <= ch && ch <= 'Z':
				p.requestLineStart, p.methodStart = i, i
				p.state = rlMethod
			default:
				return p.fail(400, fmt.Sprintf("request line starts with %s, not an upper-case method", quoteByte(ch)))
			}

		case rlStartCR:
			if ch != '\n' {
				return p.fail(400, "bare CR before the request line")
			}
			if err := p.countEmptyLine(); err != nil {
				return p.abort(err)
			}
			p.state = rlStart

		case rlMethod:
			switch {
			case 'A' <= ch && ch <= 'Z':
				if i-p.methodStart >= maxMethodLen {
					return p.fail(400, fmt.Sprintf("unknown method %q...", b[p.methodStart:i+1]))
				}
			case ch == ' ':
				p.methodEnd = i
				p.method = lookupMethod(b[p.methodStart:i])
				if p.method == "" {
					return p.fail(400, fmt.Sprintf("unknown method %q", b[p.methodStart:i]))
				}
				p.state = rlSpAfterMethod
			default:
				return p.fail(400, fmt.Sprintf("invalid character %s in method", quoteByte(ch)))
			}

		case rlSpAfterMethod:
			if ch == ' ' {
				break
			}
			p.uriStart = i
			switch {
			case p.method == "CONNECT":
				// RFC 9112 §3.2.3: CONNECT takes host:port and nothing else.
				p.form = formAuthority
				p.hostStart = i
				switch {
				case ch == '[':
					p.state = rlHostIPLiteral
				case isUnreserved(ch):
					p.state = rlHost
				default:
					return p.fail(400, "CONNECT needs a host:port request-target")
				}
			case ch == '/':
				// Origin-form, including "//" and "//x": a path, never an
				// authority.
				p.pathStart, p.pathnameStart = i, i
				p.state = rlPath
			case ch == '*':
				if p.method != "OPTIONS" {
					return p.fail(400, "asterisk-form request-target is only valid with OPTIONS")
				}
				p.form = formAsterisk
				p.pathStart, p.pathnameStart = i, i
				p.state = rlAsterisk
			case isAlpha(ch):
				p.form = formAbsolute
				p.schemaStart = i
				p.state = rlSchema
			case ch == '\r' || ch == '\n':
				return p.fail(400, "request line has no request-target")
			default:
				return p.fail(400, fmt.Sprintf("request-target starts with %s", quoteByte(ch)))
			}

		case rlSchema:
			switch {
			case isAlpha(ch):
				if i-p.schemaStart >= len("https") {
					return p.fail(400, "unsupported scheme in request-target")
				}
			case ch == ':':
				p.schemaEnd = i
				s := b[p.schemaStart:i]
				if !strings.EqualFold(string(s), "http") && !strings.EqualFold(string(s), "https") {
					return p.fail(400, fmt.Sprintf("unsupported scheme %q in request-target", s))
				}
				p.state = rlSchemaSlash
			default:
				return p.fail(400, fmt.Sprintf("invalid character %s in scheme", quoteByte(ch)))
			}

		case rlSchemaSlash:
			if ch != '/' {
				return p.fail(400, "absolute-form request-target lacks \"//\" after the scheme")
			}
			p.state = rlSchemaSlashSlash

		case rlSchemaSlashSlash:
			if ch != '/' {
				return p.fail(400, "absolute-form request-target lacks \"//\" after the scheme")
			}
			p.hostStart = i + 1
			p.state = rlHost

		case rlHost:
			switch {
			case isUnreserved(ch):
			case ch == '[' && i == p.hostStart:
				p.state = rlHostIPLiteral
			default:
				if err := p.endHost(i, ch); err != nil {
					return p.abort(err)
				}
			}

		case rlHostIPLiteral:
			switch {
			case isHexDigit(ch) || ch == ':' || ch == '.':
				if i-p.hostStart > maxIPLiteralLen {
					return p.fail(400, "IPv6 address in request-target is too long")
				}
			case ch == ']':
				addr, err := netip.ParseAddr(string(b[p.hostStart+1 : i]))
				if err != nil || !addr.Is6() {
					return p.fail(400, fmt.Sprintf("invalid IPv6 address %q in request-target", b[p.hostStart:i+1]))
				}
				p.state = rlHostEnd
			default:
				return p.fail(400, fmt.Sprintf("invalid character %s in IPv6 address", quoteByte(ch)))
			}

		case rlHostEnd:
			if err := p.endHost(i, ch); err != nil {
				return p.abort(err)
			}

		case rlPort:
			if isDigit(ch) {
				if i-p.portStart >= len("65535") {
					return p.fail(400, "port in request-target has too many digits")
				}
				p.port = p.port*10 + int(ch-'0')
				if p.port > 65535 {
					return p.fail(400, "port in request-target is out of range")
				}
				break
			}
			p.portEnd = i
			if err := p.endAuthority(i, ch); err != nil {
				return p.abort(err)
			}

		case rlPath:
			switch {
			case ch == ' ':
				p.uriEnd, p.pathEnd, p.pathnameEnd = i, i, i
				p.state = rlVersionStart
			case ch == '?':
				p.pathnameEnd = i
				p.queryStart = i + 1
				p.state = rlQuery
			default:
				if err := checkTargetByte(ch); err != nil {
					return p.abort(err)
				}
			}

		case rlQuery:
			if ch == ' ' {
				p.uriEnd, p.pathEnd, p.queryEnd = i, i, i
				p.state = rlVersionStart
				break
			}
			if err := checkTargetByte(ch); err != nil {
				return p.abort(err)
			}

		case rlAsterisk:
			if ch != ' ' {
				return p.fail(400, "asterisk-form request-target must be exactly \"*\"")
			}
			p.uriEnd, p.pathEnd, p.pathnameEnd = i, i, i
			p.state = rlVersionStart

		case rlVersionStart:
			switch ch {
			case ' ':
			case 'H':
				p.state = rlVersionH
			case '\r', '\n':
				return p.fail(400, "request line has no HTTP version")
			default:
				return p.fail(400, "malformed HTTP version")
			}

		// "HTTP" is case-sensitive (RFC 9112 §2.3), so "http/1.1" and
		// "HTTX/2.0" both fail here.
		case rlVersionH:
			if ch != 'T' {
				return p.fail(400, "malformed HTTP version")
			}
			p.state = rlVersionHT

		case rlVersionHT:
			if ch != 'T' {
				return p.fail(400, "malformed HTTP version")
			}
			p.state = rlVersionHTT

		case rlVersionHTT:
			if ch != 'P' {
				return p.fail(400, "malformed HTTP version")
			}
			p.state = rlVersionHTTP

		case rlVersionHTTP:
			if ch != '/' {
				return p.fail(400, "malformed HTTP version")
			}
			p.state = rlVersionHTTPSlash

		case rlVersionHTTPSlash:
			if !isDigit(ch) {
				return p.fail(400, "malformed HTTP version")
			}
			p.versionStart = i
			p.state = rlVersionMajor

		case rlVersionMajor:
			if ch != '.' {
				return p.fail(400, "malformed HTTP version")
			}
			p.state = rlVersionDot

		case rlVersionDot:
			if !isDigit(ch) {
				return p.fail(400, "malformed HTTP version")
			}
			p.versionEnd = i + 1
			p.state = rlVersionMinor

		case rlVersionMinor:
			if ch != '\r' && ch != '\n' {
				return p.fail(400, "malformed HTTP version")
			}
			// Only now is the version known to be well-formed, so only now
			// can a foreign major version earn 505 rather than 400.
			if major := b[p.versionStart]; major != '1' {
				return p.fail(505, fmt.Sprintf("HTTP/%s is not supported", b[p.versionStart:p.versionEnd]))
			}
			p.requestLineEnd = i
			if ch == '\r' {
				p.state = rlCR
				break
			}
			p.state = hStart
			return parseDone, nil

		case rlCR:
			if ch != '\n' {
				return p.fail(400, "bare CR in the request line")
			}
			p.state = hStart
			return parseDone, nil
		}
	}
	return parseAgain, nil
}

// countEmptyLine counts an empty line before the request line.
func (p *requestParser) countEmptyLine() error {
	p.emptyLines++
	if p.emptyLines > maxLeadingEmptyLines {
		return newHTTPError(400, fmt.Sprintf("more than %d empty lines before the request line", maxLeadingEmptyLines))
	}
	return nil
}

// endHost handles the byte at i that ends the host of an absolute-form or
// authority-form request-target.
func (p *requestParser) endHost(i int, ch byte) error {
	if i == p.hostStart {
		// RFC 9110 §4.2.1: an http URI with an empty host is invalid.
		return newHTTPError(400, "empty host in request-target")
	}
	p.hostEnd = i
	if ch == ':' {
		p.portStart = i + 1
		p.state = rlPort
		return nil
	}
	return p.endAuthority(i, ch)
}

// endAuthority handles the byte at i that ends the authority (host and
// optional port) of the request-target: the path, the query or the whole
// target begins or ends there.
func (p *requestParser) endAuthority(i int, ch byte) error {
	if p.form == formAuthority {
		if ch != ' ' || p.state != rlPort || p.portStart == i {
			return newHTTPError(400, "CONNECT needs a host:port request-target")
		}
		p.uriEnd = i
		p.state = rlVersionStart
		return nil
	}
	switch ch {
	case '/':
		p.pathStart, p.pathnameStart = i, i
		p.state = rlPath
	case '?':
		p.pathStart, p.pathnameStart, p.pathnameEnd = i, i, i
		p.queryStart = i + 1
		p.state = rlQuery
	case ' ':
		p.uriEnd = i
		p.pathStart, p.pathEnd, p.pathnameStart, p.pathnameEnd = i, i, i, i
		p.state = rlVersionStart
	case '\r', '\n':
		return newHTTPError(400, "request line has no HTTP version")
	default:
		return newHTTPError(400, fmt.Sprintf("invalid character %s in request-target authority", quoteByte(ch)))
	}
	return nil
}

// checkTargetByte rejects the bytes that may not appear in a path or query.
// Everything else passes: clients send unencoded "|", "^" and UTF-8, and
// the pathname is percent-decoded and cleaned later anyway.
func checkTargetByte(ch byte) error {
	switch {
	case ch == '\r' || ch == '\n':
		return newHTTPError(400, "request line has no HTTP version")
	case isCtl(ch):
		return newHTTPError(400, fmt.Sprintf("control character %s in request-target", quoteByte(ch)))
	}
	return nil
}

// parseHeaderLine reads one header line from b, starting at p.pos. It
// returns parseNext when the line's LF is read and the header is stored,
// parseDone when the empty line ending the head is read, and parseAgain when
// b ends first. Mirrors xps_http_parse_header_line.
func (p *requestParser) parseHeaderLine(b []byte) (parseResult, error) {
	if p.err != nil {
		return parseAgain, p.err
	}
	if p.state < hStart {
		return p.fail(500, "header parser called before the request line was complete")
	}
	if p.state == hDone {
		return parseDone, nil
	}
	for p.pos < len(b) {
		i, ch := p.pos, b[p.pos]
		p.pos++

		switch p.state {
		case hStart:
			switch {
			case ch == '\r':
				p.state = hLFCR
			case ch == '\n':
				p.state = hDone
				return parseDone, nil
			case ch == ' ' || ch == '\t':
				// RFC 9112 §5.2 obs-fold, or whitespace between the request
				// line and the first header (§2.2); rejecting is allowed for
				// both and safer than guessing what the client meant.
				return p.fail(400, "header line starts with whitespace (obs-fold)")
			case ch == ':':
				return p.fail(400, "empty header name")
			case isTchar(ch):
				if len(p.headers) >= maxHeaders {
					return p.fail(431, fmt.Sprintf("more than %d header fields", maxHeaders))
				}
				p.nameStart = i
				p.state = hName
			default:
				return p.fail(400, fmt.Sprintf("invalid character %s in header name", quoteByte(ch)))
			}

		case hName:
			switch {
			case isTchar(ch):
			case ch == ':':
				p.nameEnd = i
				p.state = hColon
			case ch == ' ' || ch == '\t':
				// RFC 9112 §5.1: whitespace before the colon must be
				// rejected; "Host value" with no colon also lands here.
				return p.fail(400, "header name contains whitespace (or the colon is missing)")
			case ch == '\r' || ch == '\n':
				return p.fail(400, "header line has no colon")
			default:
				return p.fail(400, fmt.Sprintf("invalid character %s in header name", quoteByte(ch)))
			}

		case hColon:
			switch {
			case ch == ' ' || ch == '\t':
			case ch == '\r':
				p.valStart, p.valEnd = i, i
				p.state = hCR
			case ch == '\n':
				p.valStart, p.valEnd = i, i
				return p.endHeaderLine()
			case isCtl(ch):
				return p.fail(400, fmt.Sprintf("control character %s in header value", quoteByte(ch)))
			default:
				p.valStart, p.valEnd = i, i+1
				p.state = hValue
			}

		case hValue:
			switch {
			case ch == '\r':
				p.state = hCR
			case ch == '\n':
				return p.endHeaderLine()
			case ch == ' ' || ch == '\t':
				// valEnd stays behind the last visible byte, which trims
				// trailing whitespace without a second pass.
			case isCtl(ch):
				return p.fail(400, fmt.Sprintf("control character %s in header value", quoteByte(ch)))
			default:
				p.valEnd = i + 1
			}

		case hCR:
			if ch != '\n' {
				return p.fail(400, "bare CR in a header line")
			}
			return p.endHeaderLine()

		case hLFCR:
			if ch != '\n' {
				return p.fail(400, "bare CR in the empty line ending the head")
			}
			p.state = hDone
			return parseDone, nil
		}
	}
	return parseAgain, nil
}

// endHeaderLine stores the header line just read and waits for the next.
func (p *requestParser) endHeaderLine() (parseResult, error) {
	if p.headers == nil {
		// Browsers send about fifteen headers; one allocation covers them.
		p.headers = make([]headerSpan, 0, 16)
	}
	p.headers = append(p.headers, headerSpan{p.nameStart, p.nameEnd, p.valStart, p.valEnd})
	p.state = hStart
	return parseNext, nil
}

// chunkedBody follows a chunked request body (RFC 9112 §7.1) as its bytes
// arrive, to find where it ends. A proxy forwards the body as it came,
// still chunked, and must stop after the last chunk and its trailer
// section: what follows is not part of the request — junk, or a second
// request, perhaps for a path outside the route. Every line must end in
// CRLF: a proxy that took a bare LF for a line end where its upstream does
// not would see the body end somewhere else than the upstream does. The
// zero value is ready for a body's first byte.
type chunkedBody struct {
	state chunkState
	size  int64 // the chunk-size being read, then the data bytes still to come
}

// chunkState is what the next byte of a chunked body must be.
type chunkState uint8

const (
	chunkSize        chunkState = iota // the first hex digit of a chunk-size
	chunkSizeMore                      // another digit, or what ends the size
	chunkExt                           // a chunk extension, up to its CR
	chunkSizeLF                        // the LF ending the size line
	chunkData                          // the chunk's data
	chunkDataCR                        // the CR after the data
	chunkDataLF                        // the LF after it
	chunkTrailer                       // a trailer field line, or the final CRLF
	chunkTrailerLine                   // the rest of a trailer field line, up to its CR
	chunkTrailerLF                     // the LF ending a trailer field line
	chunkLastLF                        // the LF ending the body
	chunkDone                          // the body is complete
)

// scan reads b, the next bytes of the body, and returns how many of them
// belong to it: all of b, or fewer when the body ends inside b; done says
// whether it has ended. A malformed body is an *httpError with status 400.
func (c *chunkedBody) scan(b []byte) (n int, done bool, err error) {
	for n < len(b) && c.state != chunkDone {
		if c.state == chunkData {
			k := int(min(c.size, int64(len(b)-n)))
			n += k
			if c.size -= int64(k); c.size == 0 {
				c.state = chunkDataCR
			}
			continue
		}
		ch := b[n]
		n++
		next, ok := c.state, true
		switch c.state {
		case chunkSize:
			next, ok = chunkSizeMore, isHexDigit(ch)
			c.size = int64(unhex(ch))
		case chunkSizeMore:
			switch {
			case isHexDigit(ch) && c.size <= (math.MaxInt64-15)/16:
				c.size = c.size<<4 | int64(unhex(ch))
			case ch == ';' || ch == ' ' || ch == '\t':
				next = chunkExt
			case ch == '\r':
				next = chunkSizeLF
			default:
				ok = false
			}
		case chunkExt:
			if ch == '\r' {
				next = chunkSizeLF
			}
			ok = ch == '\t' || !isCtl(ch) || ch == '\r'
		case chunkSizeLF:
			next, ok = chunkData, ch == '\n'
			if c.size == 0 {
				next = chunkTrailer
			}
		case chunkDataCR:
			next, ok = chunkDataLF, ch == '\r'
		case chunkDataLF:
			next, ok = chunkSize, ch == '\n'
		case chunkTrailer:
			next, ok = chunkTrailerLine, ch != '\n'
			if ch == '\r' {
				next = chunkLastLF
			}
		case chunkTrailerLine:
			if ch == '\r' {
				next = chunkTrailerLF
			}
			ok = ch != '\n'
		case chunkTrailerLF:
			next, ok = chunkTrailer, ch == '\n'
		case chunkLastLF:
			next, ok = chunkDone, ch == '\n'
		}
		if !ok {
			c.state = chunkDone
			return n, true, newHTTPError(400, "malformed chunked body at "+quoteByte(ch))
		}
		c.state = next
	}
	return n, c.state == chunkDone, nil
}

// replyEnd follows an upstream's reply as the proxy relays it, only as far
// as it takes to know where the reply ends (RFC 9112 §6.3), so that a
// client that leaves once it has the whole reply is told apart from one
// that gives up on it: the upstream's own close, which is what ends the
// relay, may come a moment after the client's. A reply ends right after its
// head when it answers a HEAD or is a 204 or a 304; after Content-Length
// bytes; after the last chunk and the trailer section of a chunked body. A
// reply framed by neither, or one whose framing does not parse, ends only
// when the upstream closes. Interim 1xx heads are skipped. Nothing here
// changes the reply, which goes to the client byte for byte. The zero
// value is ready for a reply's first byte.
type replyEnd struct {
	state  replyState
	head   []byte      // the head received so far, until its blank line
	line   int         // bytes of the head's current line so far
	lastCR bool        // the line's last byte so far is a CR
	left   int64       // Content-Length bytes still to come
	chunks chunkedBody // how far a chunked body has come
}

// replyState is where the next byte of a reply falls.
type replyState uint8

const (
	replyHead       replyState = iota // in the head
	replyLength                       // in a body of left bytes
	replyChunked                      // in a chunked body
	replyUntilClose                   // anywhere until the upstream closes
	replyComplete                     // past the end: the whole reply has come
)

// scan follows b, the next bytes of the reply to a request whose method is
// method.
func (r *replyEnd) scan(b []byte, method string) {
	for len(b) > 0 {
		switch r.state {
		case replyHead:
			n := r.headEnd(b)
			if n < 0 {
				n = len(b)
			}
			if len(r.head)+n > maxHeadSize {
				r.state, r.head = replyUntilClose, nil
				return
			}
			r.head = append(r.head, b[:n]...)
			b = b[n:]
			if r.line < 0 {
				r.state = r.framing(method)
				r.head, r.line = nil, 0
			}
		case replyLength:
			k := min(int64(len(b)), r.left)
			b = b[k:]
			if r.left -= k; r.left == 0 {
				r.state = replyComplete
			}
		case replyChunked:
			n, done, err := r.chunks.scan(b)
			switch {
			case err != nil:
				r.state = replyUntilClose
			case done:
				r.state = replyComplete
			}
			b = b[n:]
		default:
			return
		}
	}
}

// headEnd returns how many bytes of b complete the head — up to and
// including the LF of its blank line — and marks that end by setting line
// to -1; -1 if the head goes on past b.
func (r *replyEnd) headEnd(b []byte) int {
	for i, ch := range b {
		if ch != '\n' {
			r.line++
			r.lastCR = ch == '\r'
			continue
		}
		if r.line == 0 || r.line == 1 && r.lastCR {
			r.line = -1
			return i + 1
		}
		r.line = 0
	}
	return -1
}

// framing reads the complete head and returns where the reply goes on:
// the next head after an interim 1xx, its body, its end, or the
// upstream's close when the head does not say.
func (r *replyEnd) framing(method string) replyState {
	code, ok := replyStatus(r.head)
	if !ok {
		return replyUntilClose
	}
	switch {
	case code == "101":
		return replyUntilClose // the connection becomes something else
	case code[0] == '1':
		return replyHead
	case method == "HEAD" || code == "204" || code == "304":
		return replyComplete
	}
	length, haveLength, coding := int64(0), false, ""
	_, rest, _ := bytes.Cut(r.head, []byte("\n")) // past the status line
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, val, _ := bytes.Cut(bytes.TrimSuffix(l, []byte("\r")), []byte(":"))
		switch {
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			coding = string(val) // the last coding of the last line is the one that frames
		case bytes.EqualFold(name, []byte("Content-Length")):
			for elem := range strings.SplitSeq(string(val), ",") {
				n, ok := parseContentLength(strings.Trim(elem, " \t"))
				if !ok || haveLength && n != length {
					return replyUntilClose
				}
				length, haveLength = n, true
			}
		}
	}
	switch {
	case coding != "":
		last := coding[strings.LastIndexByte(coding, ',')+1:]
		if strings.EqualFold(strings.Trim(last, " \t"), "chunked") {
			return replyChunked
		}
		return replyUntilClose
	case !haveLength:
		return replyUntilClose
	case length == 0:
		return replyComplete
	}
	r.left = length
	return replyLength
}

// replyStatus returns the status code at the start of a reply, b, which
// must begin with an HTTP/1 status line ("HTTP/1.1 200 OK"); ok is false
// when it does not.
func replyStatus(b []byte) (code string, ok bool) {
	if len(b) < 12 || string(b[:7]) != "HTTP/1." || b[8] != ' ' || !isDigit(b[9]) || !isDigit(b[10]) || !isDigit(b[11]) {
		return "", false
	}
	return string(b[9:12]), true
}
