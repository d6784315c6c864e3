package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"expserver-go/common/buffer"
	"expserver-go/common/xlog"
)

// maxHeadSize caps a request head: a client that has sent this many bytes
// without finishing its head is answered 431.
const maxHeadSize = 100000

// session serves one client over HTTP: it reads the request head from the
// client, answers it, and streams the file when there is one. It relays
// through a one-slot buffer toward the client, as in stage 13.
// Mirrors xps_session_t.
//
//	client.source ──▶ clientSink                       (the request)
//	client.sink   ◀── clientSource [toClient] fileSink ◀── file.source
//
// The slot holds the response head first; while it is full the file sink is
// not ready, so the head always goes out before the first byte of the body.
type session struct {
	core   *core
	client *connection
	file   *file

	clientSource *pipeSource
	clientSink   *pipeSink
	fileSink     *pipeSink
	toClient     buffer.List // the one-slot buffer toward the client
	head         []byte      // the request head received so far
	parser       requestParser
	req          *httpRequest // set once the head is parsed
	responded    bool         // the response head is in toClient or sent
	closed       bool
	index        int // in core.sessions
}

// slot is where the session's index in core.sessions is kept.
func (s *session) slot() *int { return &s.index }

// keptHeadSize bounds the head storage a destroyed session keeps for the
// next client: a browser's head fits (a few hundred bytes to a kilobyte),
// and a head that grew larger, up to maxHeadSize, would hold that memory on
// the free list.
const keptHeadSize = 2 << 10

// newSession creates the session's ends, adds it to the core and pipes the
// client to it in both directions. Mirrors xps_session_create.
//
// The session comes from the core's free list if it can. Its ends are made
// with it, their callbacks bound to it once, and it keeps them, and the
// storage of its head and of the parser's header table: a reused session
// resets them and costs no allocation.
func newSession(c *core, client *connection) (*session, error) {
	s := c.freeSessions.get()
	if s == nil {
		s = &session{}
		s.clientSource = newPipeSource(s.sendToClient, s.check)
		s.clientSink = newPipeSink(s.takeFromClient, s.onClientDone)
		s.fileSink = newPipeSink(s.takeFromFile, s.onFileDone)
	}
	head := s.head[:0]
	if cap(head) > keptHeadSize {
		head = nil
	}
	*s = session{core: c, client: client,
		clientSource: s.clientSource, clientSink: s.clientSink, fileSink: s.fileSink,
		head: head, parser: requestParser{headers: s.parser.headers[:0], req: s.parser.req}}
	client.hold() // see connection.hold
	s.clientSource.reset()
	s.clientSink.reset()
	s.fileSink.reset()
	// The sinks are ready from the start: the slot they fill is empty.
	s.clientSink.ready, s.fileSink.ready = true, true
	c.sessions.add(s)

	if _, err := newPipe(c, pipeThreshold, client.source, s.clientSink); err != nil {
		s.close()
		return nil, fmt.Errorf("session: %w", err)
	}
	if _, err := newPipe(c, pipeThreshold, s.clientSource, client.sink); err != nil {
		s.close()
		return nil, fmt.Errorf("session: %w", err)
	}
	return s, nil
}

// close destroys the session's ends, which detaches them from their pipes
// and so tells the client and the file that the session is gone, and drops
// whatever the slot still holds. The session goes on the core's free list.
// Mirrors xps_session_destroy.
func (s *session) close() {
	if s.closed {
		return
	}
	s.closed = true
	s.clientSource.close()
	s.clientSink.close()
	s.fileSink.close()
	if s.file != nil && s.file.source.pipe == nil {
		s.file.close()
	}
	s.toClient.Reset()
	s.core.sessions.remove(s)
	// Done with its client: it may go to the free list once closed.
	s.client.release()
	s.core.freeSessions.put(s)
	xlog.Debugf("destroyed session")
}

// Slot rules: filling toClient makes the client source ready and the file
// sink not ready; emptying it does the reverse.
func (s *session) setToClient(full bool) {
	s.clientSource.setReady(full)
	s.fileSink.setReady(!full)
}

// takeFromClient is the client sink's handler. Until the head is complete it
// appends what the client sent to the head and runs the parser, which
// resumes where it stopped; once the request is answered, whatever else the
// client sends (a body this server does not use) is read and dropped, so
// the client can finish sending and close without the connection being
// reset under its response.
func (s *session) takeFromClient() {
	p := s.clientSink.pipe
	if s.responded {
		s.clientSink.clear(p.buf.Len())
		return
	}
	n := min(p.buf.Len(), maxHeadSize-len(s.head))
	want := len(s.head) + n
	for _, part := range s.clientSink.peek(nil, 0) {
		s.head = append(s.head, part[:min(len(part), want-len(s.head))]...)
		if len(s.head) == want {
			break
		}
	}
	s.clientSink.clear(n)

	res, err := s.parser.parse(s.head)
	switch {
	case err != nil:
		s.respondError(err)
	case res == parseAgain && len(s.head) >= maxHeadSize:
		s.respondError(newHTTPError(431, fmt.Sprintf("request head larger than %d bytes", maxHeadSize)))
	case res == parseDone:
		req, err := newHTTPRequest(s.head, &s.parser)
		if err != nil {
			s.respondError(err)
			return
		}
		s.req = req
		s.processRequest()
		// A request without a body, with nothing read past its head, is
		// all the client has to say: stop reading from it. The connection
		// then closes as soon as the response is sent, without another
		// read to find the socket empty.
		if req.bodyLen == 0 && !req.chunked && s.parser.pos == len(s.head) && p.buf.Len() == 0 {
			s.clientSink.close()
			s.clientSink.active = false
		}
	}
}

// processRequest answers a parsed request with the file it names under the
// public folder. Mirrors session_process_request.
func (s *session) processRequest() {
	req := s.req
	if req.method != "GET" && req.method != "HEAD" {
		s.respond(405, []header{{"Allow", "GET, HEAD"}})
		return
	}
	// The pathname is percent-decoded and cleaned before it touches the
	// file system: "%2e%2e/" cannot climb out, and the file module still
	// checks the real path against the public folder.
	path, err := cleanPathname(req.pathname)
	if err != nil {
		s.respondError(err)
		return
	}
	// A trailing slash asks for a folder, and this stage serves no folder:
	// "/sample.txt/" is not found, as nginx says, rather than the file.
	if strings.HasSuffix(path, "/") {
		s.respondError(fmt.Errorf("%s names a folder: %w", path, fs.ErrNotExist))
		return
	}
	f, err := newFile(s.core, filepath.Join(s.core.publicRoot, path))
	if err != nil {
		s.respondError(err)
		return
	}
	s.respond(200, []header{
		{"Content-Type", f.mimeType},
		{"Content-Length", strconv.FormatInt(f.size, 10)},
	})
	if req.method == "HEAD" {
		f.close()
		return
	}
	// Hold the head in the slot: the file's first chunk joins it there, so
	// a small file leaves with its head in one send. The head still goes
	// out whole, and before any byte of the body.
	s.setToClient(false)
	s.file = f
	if _, err := newPipe(s.core, pipeThreshold, f.source, s.fileSink); err != nil {
		xlog.Errorf("session: %v", err)
		f.close()
		s.close()
	}
}

// respondError answers a request that failed with the status its error
// calls for: the one an *httpError carries, or the one the file module's
// errorStatus gives.
func (s *session) respondError(err error) {
	var he *httpError
	if errors.As(err, &he) {
		xlog.Debugf("bad request: %v", he)
		s.respond(he.status, nil)
		return
	}
	status := errorStatus(err)
	switch status {
	case 503:
		// The server's condition, not the request's: the client may try
		// again. The limit may have been lowered; the budget follows it.
		xlog.Errorf("%v", err)
		s.core.setClientBudget()
	case 500:
		xlog.Errorf("%v", err)
	}
	s.respond(status, nil)
}

// respond puts a response head into toClient: the status line, the headers
// every response carries, then the headers given, and Content-Length: 0
// unless they give one. The head is built whole before it is queued, so it
// goes out in one send.
func (s *session) respond(status int, headers []header) {
	all := make([]header, 0, 4+len(headers))
	all = append(all,
		header{"Server", serverName},
		header{"Access-Control-Allow-Origin", "*"},
		header{"Connection", "close"})
	all = append(all, headers...)
	if !hasHeader(headers, "Content-Length") {
		all = append(all, header{"Content-Length", "0"})
	}
	statusLine := "HTTP/1.1 " + strconv.Itoa(status) + " " + statusText(status)
	s.toClient.Append(buffer.Wrap(serializeHead(statusLine, all, 0)))
	s.responded = true
	s.setToClient(true)
	switch {
	case !xlog.HTTPEnabled():
		// No access log: nothing to build.
	case s.req != nil:
		xlog.HTTPf("%s %s %s → %d", s.client.remoteIP, s.req.method, s.req.path, status)
	default:
		xlog.HTTPf("%s bad request → %d", s.client.remoteIP, status)
	}
}

// hasHeader reports whether headers has one named key, as spelt.
func hasHeader(headers []header, key string) bool {
	for _, h := range headers {
		if h.key == key {
			return true
		}
	}
	return false
}

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

// takeFromFile is the file sink's handler: the next part of the file moves
// into toClient.
func (s *session) takeFromFile() {
	s.fileSink.readAll(&s.toClient)
	s.setToClient(true)
}

// sendToClient is the client source's handler: toClient moves into the
// client's pipe.
func (s *session) sendToClient() {
	if err := s.clientSource.writeList(&s.toClient); err != nil {
		xlog.Errorf("session: %v", err)
		return
	}
	s.setToClient(false)
	s.check()
}

// onFileDone is the file sink's close callback: the file has been read and
// its pipe drained. A head still held for the body's first chunk — an empty
// file, a read that failed — goes out now.
func (s *session) onFileDone() {
	if s.toClient.Len() > 0 {
		s.setToClient(true)
	}
	s.check()
}

// onClientDone is the client sink's close callback: the client will send
// nothing more. One that leaves before its head is complete gets no answer.
func (s *session) onClientDone() {
	if !s.responded {
		s.close()
		return
	}
	s.check()
}

// check is the destroy check, run after every handler that can end a flow.
// The response is alive until it has been produced and every byte of it has
// been passed on (head in the slot, file still sending); the request is
// alive while the client may still send. A finished response passes its end
// on, so the client sees the end of the stream after the last byte; with
// both over, the session is destroyed.
func (s *session) check() {
	if s.closed {
		return
	}
	responseAlive := s.clientSource.active && (!s.responded || s.fileSink.active || s.toClient.Len() > 0)
	if !responseAlive && s.clientSource.pipe != nil {
		s.clientSource.close()
		// With the response complete, a client that has nothing more to
		// say — its last read found the socket empty and nothing waits in
		// its pipe — is let go at once: the connection closes as soon as the
		// response is sent, as nginx does. Otherwise the session keeps
		// reading and dropping what the client sends until it leaves, so
		// that a close with unread bytes cannot reset the connection under
		// the response.
		if !s.client.source.ready && s.clientSink.pipe != nil && !s.clientSink.pipe.readable() {
			s.clientSink.close()
			s.clientSink.active = false
		}
	}
	// The request is judged after the response, which may just have let
	// the client go.
	requestAlive := s.clientSink.active
	if !requestAlive && !responseAlive {
		s.close()
	}
}
