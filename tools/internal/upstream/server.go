package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"expserver-go/common/mime"
)

const (
	serverName = "expserver-upstream/1.0"

	// maxHead bounds the request line plus headers; Python's own limit is
	// 64 KiB per line and 100 header lines.
	maxHead    = 64 << 10
	maxHeaders = 100

	// maxEcho bounds a POST body, because it is held in memory: echoing while
	// still reading would deadlock a client that sends the whole body before
	// it reads anything.
	maxEcho = 64 << 20

	// lingerTime is how long a closing connection keeps draining what the
	// client still sends, so unread input does not turn the close into a
	// reset that destroys the response in flight.
	lingerTime = time.Second

	httpDate = "Mon, 02 Jan 2006 15:04:05 GMT"
	logDate  = "02/Jan/2006 15:04:05"
)

// server holds what every connection shares.
type server struct {
	root  *os.Root
	logMu sync.Mutex
	logw  io.Writer
}

// serve answers each connection accepted on ln in its own goroutine, serving
// files below dir and logging requests to logw. It returns Accept's error
// once ln is closed or fails for good.
func serve(ln net.Listener, dir string, logw io.Writer) error {
	return serveMode(ln, dir, logw, mode{})
}

// serveMode is serve with the test modes of m (see modes.go).
func serveMode(ln net.Listener, dir string, logw io.Writer, m mode) error {
	// os.Root confines every open to dir, symbolic links included, so no
	// spelling of a path can reach outside it.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	s := &server{root: root, logw: logw}
	var wg sync.WaitGroup
	defer func() {
		go func() {
			wg.Wait()
			root.Close()
		}()
	}()
	stopped := make(chan struct{})
	defer close(stopped)
	var pause time.Duration
	accepted := 0
	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of descriptors is a passing state under a connection
			// flood; wait for some to close rather than give up.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		accepted++
		c, handle := m.apply(c, accepted, s.handle, stopped)
		wg.Go(func() { handle(c) })
	}
}

// field is one header line; headers are kept as a list because their order
// is part of the wire behaviour being reproduced.
type field struct{ name, value string }

// exchange is one connection's single request and response.
type exchange struct {
	s    *server
	c    net.Conn
	br   *bufio.Reader
	peer string

	line    string // the request line as received, for the log
	method  string
	target  string
	version string
	header  []field
}

// httpError is a request the server answers with an error page.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }

var errHeadTooLarge = &httpError{431, "Request header fields too large"}

func (s *server) handle(c net.Conn) {
	defer closeLingering(c)
	x := &exchange{s: s, c: c, br: bufio.NewReader(c), peer: peerHost(c)}
	if err := x.readHead(); err != nil {
		if he, ok := err.(*httpError); ok {
			x.sendError(he.code, he.msg)
		}
		return
	}
	if he := x.checkRequestLine(); he != nil {
		x.sendError(he.code, he.msg)
		return
	}
	n, ok := x.contentLength()
	if !ok {
		x.sendError(400, "Bad Content-Length")
		return
	}
	switch x.method {
	case "GET", "HEAD":
		if x.discard(n) {
			x.serveStatic()
		}
	case "POST":
		x.echo(n)
	default:
		if x.discard(n) {
			x.sendError(501, fmt.Sprintf("Unsupported method ('%s')", x.method))
		}
	}
}

// closeLingering half-closes so the client sees end of file at once, then
// drains until the client closes or lingerTime passes.
func closeLingering(c net.Conn) {
	defer c.Close()
	tc, ok := c.(interface{ CloseWrite() error })
	if !ok || tc.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, c)
}

func peerHost(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	return host
}

// readHead reads the request line and headers up to the blank line. End of
// input also ends the head, as it does for Python, so a client that
// half-closes after its headers is still answered; end of input before any
// byte is a silent close.
func (x *exchange) readHead() error {
	budget := maxHead
	line, err := x.readLine(&budget)
	if err != nil {
		return err
	}
	x.line = line
	if strings.TrimSpace(line) == "" {
		return io.EOF // Python closes without a word on an empty request line
	}
	for {
		l, err := x.readLine(&budget)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if l == "" {
			return nil
		}
		if l[0] == ' ' || l[0] == '\t' {
			if len(x.header) > 0 {
				last := &x.header[len(x.header)-1]
				last.value += " " + strings.TrimSpace(l)
			}
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		if len(x.header) == maxHeaders {
			return &httpError{431, "Too many headers"}
		}
		x.header = append(x.header, field{name, strings.TrimSpace(value)})
	}
}

// readLine returns one line without its LF or CRLF ending. A last line cut
// short by end of input is returned whole; io.EOF means nothing was left.
func (x *exchange) readLine(budget *int) (string, error) {
	var line []byte
	for {
		frag, err := x.br.ReadSlice('\n')
		*budget -= len(frag)
		if *budget < 0 {
			return "", errHeadTooLarge
		}
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && (err != io.EOF || len(line) == 0) {
			return "", err
		}
		break
	}
	return string(bytes.TrimRight(line, "\r\n")), nil
}

// checkRequestLine applies Python's parse_request rules.
func (x *exchange) checkRequestLine() *httpError {
	words := strings.Fields(x.line)
	if len(words) != 3 {
		return &httpError{400, fmt.Sprintf("Bad request syntax ('%s')", x.line)}
	}
	x.method, x.target, x.version = words[0], words[1], words[2]
	num, ok := strings.CutPrefix(x.version, "HTTP/")
	major, minor, dot := strings.Cut(num, ".")
	if !ok || !dot || !isVersionNumber(major) || !isVersionNumber(minor) {
		return &httpError{400, fmt.Sprintf("Bad request version ('%s')", x.version)}
	}
	if m, _ := strconv.Atoi(major); m >= 2 {
		return &httpError{505, fmt.Sprintf("Invalid HTTP version (%s)", num)}
	}
	// A target starting with "//" would read as a host name once echoed
	// in a Location header; Python reduces it to one slash for that reason.
	if strings.HasPrefix(x.target, "//") {
		x.target = "/" + strings.TrimLeft(x.target, "/")
	}
	return nil
}

func isVersionNumber(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// get returns the first value of the named header.
func (x *exchange) get(name string) (string, bool) {
	for _, f := range x.header {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// contentLength returns the announced body length, -1 when there is none,
// and false when the header is malformed or repeated with another value.
func (x *exchange) contentLength() (int64, bool) {
	n := int64(-1)
	for _, f := range x.header {
		if !strings.EqualFold(f.name, "Content-Length") {
			continue
		}
		v, err := strconv.ParseInt(f.value, 10, 64)
		if err != nil || v < 0 || f.value[0] == '+' || (n >= 0 && v != n) {
			return 0, false
		}
		n = v
	}
	return n, true
}

// discard reads and drops an announced body, reporting whether the client
// is still there to be answered.
func (x *exchange) discard(n int64) bool {
	if n <= 0 {
		return true
	}
	_, err := io.CopyN(io.Discard, x.br, n)
	return err == nil
}

func (x *exchange) echo(n int64) {
	if n < 0 {
		if _, chunked := x.get("Transfer-Encoding"); chunked {
			x.sendError(411, "Length Required")
			return
		}
		n = 0
	}
	if n > maxEcho {
		x.sendError(413, "Request body too large to echo")
		return
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(x.br, body); err != nil {
		return
	}
	x.respond(200, "OK", body, field{"Content-Type", "application/octet-stream"})
}

// serveStatic mirrors Python's send_head: directory redirect, index file,
// listing, or the file itself.
func (x *exchange) serveStatic() {
	rawPath, query := splitTarget(x.target)
	slash := strings.HasSuffix(rawPath, "/")
	// Cleaning a rooted path cannot climb above the root, so "..", however
	// it was spelled before decoding, stops at DIR.
	name := strings.TrimPrefix(path.Clean("/"+unquote(rawPath)), "/")
	if name == "" {
		name = "."
	}
	st, err := x.s.root.Stat(name)
	if err != nil {
		x.sendError(404, "File not found")
		return
	}
	if st.IsDir() {
		if !slash {
			loc := rawPath + "/"
			if query != "" {
				loc += "?" + query
			}
			x.writeHead(301, "Moved Permanently", field{"Location", loc}, field{"Content-Length", "0"})
			return
		}
		index := ""
		for _, cand := range []string{"index.html", "index.htm"} {
			if ist, err := x.s.root.Stat(path.Join(name, cand)); err == nil && ist.Mode().IsRegular() {
				index = path.Join(name, cand)
				break
			}
		}
		if index == "" {
			x.listDirectory(name)
			return
		}
		name = index
	} else if slash {
		x.sendError(404, "File not found")
		return
	}
	x.sendFile(name)
}

// splitTarget separates the path from the query and drops any fragment.
func splitTarget(target string) (rawPath, query string) {
	target, _, _ = strings.Cut(target, "#")
	rawPath, query, _ = strings.Cut(target, "?")
	return rawPath, query
}

func (x *exchange) sendFile(name string) {
	f, err := x.s.root.Open(name)
	if err != nil {
		x.sendError(404, "File not found")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	// A FIFO or device would block or never end; only regular files are
	// served.
	if err != nil || !st.Mode().IsRegular() {
		x.sendError(404, "File not found")
		return
	}
	mtime := st.ModTime().UTC().Truncate(time.Second)
	if x.notModifiedSince(mtime) {
		x.writeHead(304, "Not Modified")
		return
	}
	err = x.writeHead(200, "OK",
		field{"Content-type", mime.TypeByPath(name)},
		field{"Content-Length", strconv.FormatInt(st.Size(), 10)},
		field{"Last-Modified", mtime.Format(httpDate)})
	if err != nil || x.method == "HEAD" {
		return
	}
	// CopyN keeps the body to the announced length should the file grow.
	io.CopyN(x.c, f, st.Size())
}

// notModifiedSince follows Python: If-None-Match disables the check, and a
// date that does not parse is ignored.
func (x *exchange) notModifiedSince(mtime time.Time) bool {
	ims, ok := x.get("If-Modified-Since")
	if !ok {
		return false
	}
	if _, ok := x.get("If-None-Match"); ok {
		return false
	}
	t, err := time.Parse(httpDate, ims)
	return err == nil && !mtime.After(t)
}

// listDirectory sends a listing shaped like Python's: relative links, names
// sorted without regard to case, "/" after a directory and "@" after a link.
func (x *exchange) listDirectory(name string) {
	d, err := x.s.root.Open(name)
	if err != nil {
		x.sendError(404, "No permission to list directory")
		return
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		x.sendError(404, "No permission to list directory")
		return
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i].Name(), entries[j].Name()
		if la, lb := strings.ToLower(a), strings.ToLower(b); la != lb {
			return la < lb
		}
		return a < b
	})
	title := "Directory listing for " + escapeHTML(unquote(x.target))
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	fmt.Fprintf(&b, "<title>%s</title>\n</head>\n<body>\n<h1>%s</h1>\n<hr>\n<ul>\n", title, title)
	for _, e := range entries {
		display, link := e.Name(), e.Name()
		isDir := e.IsDir()
		isLink := e.Type()&fs.ModeSymlink != 0
		if isLink {
			st, err := x.s.root.Stat(path.Join(name, e.Name()))
			isDir = err == nil && st.IsDir()
		}
		if isDir {
			display += "/"
			link += "/"
		}
		if isLink {
			display = e.Name() + "@"
		}
		fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", quote(link), escapeHTML(display))
	}
	b.WriteString("</ul>\n<hr>\n</body>\n</html>\n")
	x.respond(200, "OK", b.Bytes(), field{"Content-type", "text/html; charset=utf-8"})
}

// sendError answers with Python's error shape: the message doubles as the
// reason phrase, and the page is announced with Connection: close.
func (x *exchange) sendError(code int, msg string) {
	x.logf("code %d, message %s", code, msg)
	body := fmt.Sprintf("<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"+
		"<title>Error response</title>\n</head>\n<body>\n<h1>Error response</h1>\n"+
		"<p>Error code: %d</p>\n<p>Message: %s.</p>\n</body>\n</html>\n", code, escapeHTML(msg))
	x.respond(code, msg, []byte(body),
		field{"Connection", "close"},
		field{"Content-Type", "text/html;charset=utf-8"})
}

// respond sends a whole response: the head with fields and a
// Content-Length for body, then body unless the request was HEAD.
func (x *exchange) respond(code int, reason string, body []byte, fields ...field) {
	fields = append(fields, field{"Content-Length", strconv.Itoa(len(body))})
	if err := x.writeHead(code, reason, fields...); err == nil && x.method != "HEAD" {
		x.c.Write(body)
	}
}

// writeHead logs the request with its status and sends the status line and
// headers in one write, Server and Date first as Python's send_response
// does.
func (x *exchange) writeHead(code int, reason string, fields ...field) error {
	x.logf("\"%s\" %d -", x.line, code)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.0 %d %s\r\n", code, reason)
	fmt.Fprintf(&b, "Server: %s\r\nDate: %s\r\n", serverName, time.Now().UTC().Format(httpDate))
	for _, f := range fields {
		fmt.Fprintf(&b, "%s: %s\r\n", f.name, f.value)
	}
	b.WriteString("\r\n")
	_, err := x.c.Write(b.Bytes())
	return err
}

// logf writes one line the way Python's log_message does, control
// characters escaped so a request cannot forge log lines.
func (x *exchange) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	var b strings.Builder
	fmt.Fprintf(&b, "%s - - [%s] ", x.peer, time.Now().Format(logDate))
	for i := 0; i < len(msg); i++ {
		switch c := msg[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c < 0x20 || (c >= 0x7f && c < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\n')
	x.s.logMu.Lock()
	defer x.s.logMu.Unlock()
	io.WriteString(x.s.logw, b.String())
}

// unquote decodes %XX escapes and, like Python's urllib.parse.unquote,
// leaves a malformed escape as it is rather than rejecting the request.
func unquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// quote percent-encodes a link as Python's urllib.parse.quote does: letters,
// digits, "_.-~" and "/" stay, every other byte is escaped.
func quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// escapeHTML escapes like Python's html.escape(s, quote=False); the text
// only ever lands in element content.
var escapeHTML = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
