package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"expserver-go/common/buffer"
	"expserver-go/common/xlog"
)

// maxHeadSize caps a request head: a client that has sent this many bytes
// without finishing its head is answered 431.
const maxHeadSize = 100000

// session serves one client: it reads the request head, looks the request
// up in the config, and answers it with a file, a redirect, or the reply of
// an upstream it forwards the request to. Bytes go through two one-slot
// buffers, one for each direction, as in stage 13. Mirrors xps_session_t.
//
//	client.source ──▶ clientSink   [fromClient] upstreamSource ──▶ upstream.sink
//	client.sink   ◀── clientSource [toClient]   upstreamSink   ◀── upstream.source
//	                                            fileSink       ◀── file.source, or a listing's,
//	                                                               or gzip.source ◀── file.source
type session struct {
	core     *core
	client   *connection
	upstream *connection
	file     *file
	gzip     *gzipper // compresses the file or listing, when the response is gzipped

	clientSource, upstreamSource       *pipeSource
	clientSink, upstreamSink, fileSink *pipeSink

	toClient, fromClient buffer.List // the one-slot buffers; full when non-empty

	head      []byte // the request head received so far
	parser    requestParser
	req       *httpRequest  // set once the head is parsed
	lookup    *lookupResult // set once the request is looked up
	responded bool          // a response has been decided: ours, or the upstream's
	proxying  bool          // the request went to an upstream; its body follows it

	// bodyLeft and chunks follow the body of a proxied request, so that the
	// upstream gets that body and nothing after it (see forwardBody).
	bodyLeft int64       // Content-Length bytes not yet forwarded
	chunks   chunkedBody // how far a chunked body has come

	// reply follows the upstream's reply far enough to know where it ends,
	// so that a client leaving after all of it is not taken to abandon it.
	reply replyEnd

	upstreamReplied     bool // the upstream has sent its first byte
	upstreamErrorResSet bool // a 502 was queued for an upstream that failed first
	closed              bool
	index               int // in core.sessions

	// keptUpstreamSource and keptUpstreamSink are the upstream's ends the
	// session made the first time it proxied a request, kept for the next
	// clients it serves (see proxyEnds).
	keptUpstreamSource *pipeSource
	keptUpstreamSink   *pipeSink

	// contentHeaderBuf is the storage of the table contentHeaders builds.
	contentHeaderBuf []header
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
		s.contentHeaderBuf = make([]header, 0, 4) // see contentHeaders
	}
	head := s.head[:0]
	if cap(head) > keptHeadSize {
		head = nil
	}
	*s = session{core: c, client: client,
		clientSource: s.clientSource, clientSink: s.clientSink, fileSink: s.fileSink,
		head: head, parser: requestParser{headers: s.parser.headers[:0], req: s.parser.req},
		keptUpstreamSource: s.keptUpstreamSource, keptUpstreamSink: s.keptUpstreamSink, contentHeaderBuf: s.contentHeaderBuf}
	client.hold() // see connection.hold
	s.clientSource.reset()
	s.clientSink.reset()
	s.fileSink.reset()
	// The upstream's ends are used only for a request that goes to one
	// (see proxy); until then they are idle ends, attached to nothing.
	s.upstreamSource, s.upstreamSink = &idleSource, &idleSink
	// The sinks are ready from the start: the slots they fill are empty.
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
// and so tells the client, upstream and file that the session is gone, and
// drops whatever the slots still hold. The session goes on the core's free
// list. Mirrors xps_session_destroy.
func (s *session) close() {
	if s.closed {
		return
	}
	s.closed = true
	s.clientSource.close()
	s.upstreamSource.close()
	s.clientSink.close()
	s.upstreamSink.close()
	s.fileSink.close()
	if s.gzip != nil {
		s.gzip.close()
	}
	if s.file != nil && s.file.source.pipe == nil {
		s.file.close()
	}
	s.toClient.Reset()
	s.fromClient.Reset()
	s.core.sessions.remove(s)
	// Done with its connections: they may go to the free list once closed.
	s.client.release()
	if s.upstream != nil {
		s.upstream.release()
	}
	s.core.freeSessions.put(s)
	xlog.Debugf("destroyed session")
}

// idleSource and idleSink stand in for the upstream's ends of a session
// that has no upstream: never attached, never ready, never active, so every
// rule below treats them as ends that are done. They are shared, and
// nothing changes them: the slot rules touch the upstream's ends only once
// there is an upstream.
var (
	idleSource pipeSource
	idleSink   pipeSink
)

// proxyEnds makes the session's upstream ends its kept ones, as new: made,
// their callbacks bound to the session, the first time it proxies, and made
// again only if a previous use left them attached.
func (s *session) proxyEnds() {
	if s.keptUpstreamSource == nil || s.keptUpstreamSource.pipe != nil || s.keptUpstreamSink.pipe != nil {
		s.keptUpstreamSource = newPipeSource(s.sendToUpstream, s.onUpstreamClosed)
		s.keptUpstreamSink = newPipeSink(s.takeFromUpstream, s.onUpstreamClosed)
	}
	s.keptUpstreamSource.reset()
	s.keptUpstreamSink.reset()
	s.upstreamSource, s.upstreamSink = s.keptUpstreamSource, s.keptUpstreamSink
}

// Slot rules: filling a slot makes the source that empties it ready and the
// sinks that fill it not ready; emptying it does the reverse.

func (s *session) setToClient(full bool) {
	s.clientSource.setReady(full)
	s.fileSink.setReady(!full)
	if s.upstream != nil {
		s.upstreamSink.setReady(!full)
	}
}

func (s *session) setFromClient(full bool) {
	if s.upstream != nil {
		s.upstreamSource.setReady(full)
	}
	s.clientSink.setReady(!full)
}

// takeFromClient is the client sink's handler. Until the head is complete it
// appends what the client sent to the head and runs the parser, which
// resumes where it stopped. Once the request goes to an upstream, its body
// follows it through fromClient (see forwardBody); once it is answered here,
// later bytes are read and dropped, so the client can finish sending and
// close without the connection being reset under its response.
func (s *session) takeFromClient() {
	p := s.clientSink.pipe
	switch {
	case s.proxying:
		s.forwardBody()
		return
	case s.responded:
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
		// Bytes after the head are the start of the body.
		s.processRequest(s.head[s.parser.pos:])
		// A request without a body, with nothing read past its head, is
		// all the client has to say: unless it went to an upstream, which
		// must not see its request end early, stop reading from the
		// client. The connection then closes as soon as the response is
		// sent, without another read to find the socket empty.
		if !s.proxying && req.bodyLen == 0 && !req.chunked && s.parser.pos == len(s.head) && p.buf.Len() == 0 {
			s.clientSink.close()
			s.clientSink.active = false
		}
	}
}

// processRequest looks the request up in the config, applies the route's
// access lists, and dispatches on the route's type. Mirrors
// session_process_request.
func (s *session) processRequest(body []byte) {
	l := s.client.listener
	res, err := s.core.config.lookup(s.req, l.host, l.port)
	// The lists are checked as soon as a route is chosen, before the route
	// does anything — opens a file, lists a folder, redirects, checks the
	// method, connects to an upstream — and before a lookup error is
	// answered: a denied client gets 403 whatever it asked for, so it never
	// learns whether a file exists.
	if res != nil && !s.ipAllowed(res) {
		s.deny()
		return
	}
	if err != nil {
		s.respondError(err)
		return
	}
	s.lookup = res
	switch res.typ {
	case routeFileServe:
		s.serveFile()
	case routeRedirect:
		s.respond(res.httpStatusCode, []header{{"Location", res.redirectURL}})
	case routeReverseProxy:
		s.proxy(body)
	default:
		s.respond(500, nil)
	}
}

// ipAllowed reports whether the route the lookup chose lets the client in:
// its whitelist is empty or contains the client's address, and its
// blacklist does not. The address is the TCP peer recorded at accept; no
// request header (X-Forwarded-For, X-Real-IP, Forwarded…) takes part. A
// DEBUG line names the list that turned the client away. Mirrors the
// whitelist and blacklist checks of session_process_request, which compare
// strings; these compare addresses with prefixes, without allocating.
func (s *session) ipAllowed(res *lookupResult) bool {
	ip := s.client.remoteAddr
	if len(res.ipWhitelist) > 0 && !res.ipWhitelist.contains(ip) {
		if xlog.DebugEnabled() {
			xlog.Debugf("client ip %s is not whitelisted for %s", s.client.remoteIP, res.route.reqPath)
		}
		return false
	}
	if res.ipBlacklist.contains(ip) {
		if xlog.DebugEnabled() {
			xlog.Debugf("client ip %s is blacklisted for %s", s.client.remoteIP, res.route.reqPath)
		}
		return false
	}
	return true
}

// deny answers 403 to a client the route's lists turn away, and stops
// reading from it. Whatever it sends after its head, a body of any size
// included, is neither read nor forwarded: the connection closes once the
// 403 is sent, so a denied client cannot keep the server busy reading.
func (s *session) deny() {
	s.respond(403, nil)
	s.clientSink.close()
	s.clientSink.active = false
}

// serveFile answers with the file the lookup found, or with a listing of
// the directory it found when that directory has no index file.
func (s *session) serveFile() {
	req := s.req
	if req.method != "GET" && req.method != "HEAD" {
		s.respond(405, []header{{"Allow", "GET, HEAD"}})
		return
	}
	if s.lookup.dirPath != "" {
		s.serveListing()
		return
	}
	f, err := newFile(s.core, s.lookup.filePath, s.lookup.route.dirPath)
	if err != nil {
		s.respondError(err)
		return
	}
	headers, level := s.contentHeaders(f.mimeType, f.size)
	s.respond(200, headers)
	if req.method == "HEAD" {
		f.close()
		return
	}
	// Hold the head in the slot: the file's first chunk joins it there, so
	// a small file leaves with its head in one send. The head still goes
	// out whole, and before any byte of the body.
	s.setToClient(false)
	s.file = f
	if err := s.pipeBody(f.source, pipeThreshold, f.size, level); err != nil {
		xlog.Errorf("session: %v", err)
		f.close()
		s.close()
	}
}

// serveListing answers with the HTML listing of the directory the lookup
// found. The listing's links are built from the path the client asked for,
// cleaned as the lookup cleaned it, so "//" lists the root with "/x" links.
// The page streams like a file: it is generated as the client reads it.
func (s *session) serveListing() {
	pathname, err := cleanPathname(s.req.pathname)
	if err != nil {
		s.respondError(err)
		return
	}
	l, err := newListing(s.lookup.route.dirPath, s.lookup.dirPath, pathname)
	if err != nil {
		s.respondError(err)
		return
	}
	headers, level := s.contentHeaders("text/html", l.size)
	s.respond(200, headers)
	if s.req.method == "HEAD" {
		l.close()
		return
	}
	// As for a file, the head waits in the slot for the page's first part.
	s.setToClient(false)
	if err := s.pipeBody(l.source, listingThreshold, l.size, level); err != nil {
		xlog.Errorf("session: %v", err)
		l.close()
		s.close()
		return
	}
	// Every byte of the page on its way to the client is memory, so the
	// client's pipe takes no more of it than the listing's own pipe does:
	// a client that does not read holds a few kilobytes, not a megabyte.
	s.clientSource.pipe.thresh = min(s.clientSource.pipe.thresh, listingThreshold)
}

// contentHeaders returns the headers of a 200 whose body is size bytes of
// mimeType, and the level to gzip the body at, or 0 to send it as it is.
// A body is compressed when the route turns gzip on for its type, it is at
// least gzip_min_length long, and the client accepts gzip over HTTP/1.1
// (an HTTP/1.0 client cannot read chunks). A compressed body has no length
// known in advance, so it goes in chunks, with no Content-Length. A body
// that could have been compressed for another request carries Vary, so a
// cache keeps the two apart.
func (s *session) contentHeaders(mimeType string, size int64) ([]header, int) {
	// The headers go into the session's own table, made with room for all
	// of them, which respond copies from at once: a reused session builds
	// them without allocating.
	headers := append(s.contentHeaderBuf[:0], header{"Content-Type", mimeType})
	r := s.lookup.route
	eligible := r.gzipEnable && r.compressible(mimeType) && size >= r.gzipMinLength
	if !eligible || s.req.version != "1.1" || !acceptsGzip(s.req) {
		headers = append(headers, header{"Content-Length", strconv.FormatInt(size, 10)})
		if eligible {
			headers = append(headers, header{"Vary", "Accept-Encoding"})
		}
		return headers, 0
	}
	return append(headers, header{"Content-Encoding", "gzip"}, header{"Vary", "Accept-Encoding"},
		header{"Transfer-Encoding", "chunked"}), r.gzipLevel
}

// pipeBody pipes src, the source of a body of size bytes, to the file sink
// through a pipe of capacity thresh: straight, or, when level is not 0,
// through a gzip module that compresses it at level. Compressed bytes are
// memory, not file regions, so with gzip the pipes after the module are
// small.
func (s *session) pipeBody(src *pipeSource, thresh int, size int64, level int) error {
	if level == 0 {
		_, err := newPipe(s.core, thresh, src, s.fileSink)
		return err
	}
	s.gzip = newGzipper(s.core, level, size)
	if _, err := newPipe(s.core, thresh, src, s.gzip.sink); err != nil {
		return err
	}
	if _, err := newPipe(s.core, gzipThreshold, s.gzip.source, s.fileSink); err != nil {
		return err
	}
	s.clientSource.pipe.thresh = gzipThreshold
	return nil
}

// proxy opens a connection to the route's upstream and forwards the request
// to it: the head, then the body — the bytes already received after the
// head, then what the client sends next — up to the end the head gives it.
// The upstream's reply is relayed to the client byte for byte — this server
// adds, removes or rewrites nothing in it.
func (s *session) proxy(body []byte) {
	res := s.lookup
	s.bodyLeft = s.req.bodyLen
	n, err := s.framed(body)
	if err != nil {
		s.respondError(err)
		return
	}
	up, err := newUpstream(s.core, &res.upstreamAddr)
	if err != nil {
		if outOfDescriptors(err) {
			s.respondError(err)
			return
		}
		xlog.Errorf("%v", err)
		s.respond(502, nil)
		return
	}
	s.upstream = up
	up.hold()
	s.proxyEnds()
	s.upstreamSink.ready = true
	_, err = newPipe(s.core, pipeThreshold, s.upstreamSource, up.sink)
	if err == nil {
		_, err = newPipe(s.core, pipeThreshold, up.source, s.upstreamSink)
	}
	if err != nil {
		xlog.Errorf("session: %v", err)
		up.close(false)
		s.respond(502, nil)
		return
	}
	s.responded, s.proxying = true, true
	s.fromClient.Append(buffer.Wrap(proxyHead(s.req)))
	s.fromClient.Write(body[:n])
	s.setFromClient(true)
	if xlog.HTTPEnabled() {
		xlog.HTTPf("%s %s %s → upstream %s:%d", s.client.remoteIP, s.req.method, s.req.path, res.upstreamHost, res.upstreamPort)
	}
}

// hopByHop are the headers that describe one connection rather than the
// message (RFC 9110 §7.6.1), so a proxy does not pass them on.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"}

// endToEnd are headers that frame the body or route the request. A
// client's Connection header may not remove them: the upstream would then
// read the body, or pick the site, differently from this proxy.
var endToEnd = []string{"Content-Length", "Transfer-Encoding", "Host"}

// proxyHead is the request head as forwarded: the request line as received
// and the client's headers — Host included — except the hop-by-hop ones and
// those the Connection header names (never endToEnd ones), followed by
// "Connection: close",
// because each connection to the upstream carries one request and the
// upstream's close is what ends the relay.
func proxyHead(req *httpRequest) []byte {
	conn, _ := req.getHeader("Connection")
	kept := make([]header, 0, len(req.headers)+1)
	for _, h := range req.headers {
		if !dropHeader(h.key, conn) {
			kept = append(kept, h)
		}
	}
	kept = append(kept, header{"Connection", "close"})
	return serializeHead(req.requestLine, kept, 0)
}

// dropHeader reports whether a proxy leaves out the header named key of a
// request whose Connection header is conn: a hop-by-hop header, or one conn
// names, unless it is an end-to-end one.
func dropHeader(key, conn string) bool {
	for _, h := range hopByHop {
		if strings.EqualFold(key, h) {
			return true
		}
	}
	for _, h := range endToEnd {
		if strings.EqualFold(key, h) {
			return false
		}
	}
	for name := range strings.SplitSeq(conn, ",") {
		if strings.EqualFold(strings.TrimSpace(name), key) {
			return true
		}
	}
	return false
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

// respond puts a response into toClient: what newHTTPResponse gives every
// response of its status (an error's page included), the headers given,
// and Content-Length unless they give one or frame the body in chunks. A
// HEAD request gets the head alone. The head is serialized whole before it
// is queued, so it goes out in one send. Mirrors the response part of
// session_process_request.
func (s *session) respond(status int, headers []header) {
	res := newHTTPResponse(s.core, status)
	for _, h := range headers {
		res.setHeader(h.key, h.val)
	}
	// A chunked body carries its own framing, and a Content-Length beside
	// it would contradict it (RFC 9112 §6.3).
	if !hasHeader(headers, "Content-Length") && !hasHeader(headers, "Transfer-Encoding") {
		res.setHeader("Content-Length", strconv.Itoa(len(res.body)))
	}
	if s.req != nil && s.req.method == "HEAD" {
		res.setBody(nil)
	}
	s.toClient.Write(res.serialize())
	res.close()
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

// sendToUpstream is the upstream source's handler: fromClient moves into the
// upstream's pipe.
func (s *session) sendToUpstream() {
	if err := s.upstreamSource.writeList(&s.fromClient); err != nil {
		xlog.Errorf("session: %v", err)
		return
	}
	s.setFromClient(false)
	s.check()
}

// takeFromUpstream is the upstream sink's handler: the upstream's reply
// moves into toClient.
func (s *session) takeFromUpstream() {
	s.upstreamReplied = true
	if s.reply.state < replyUntilClose {
		for _, part := range s.upstreamSink.peek(nil, 0) {
			s.reply.scan(part, s.req.method)
		}
	}
	s.upstreamSink.readAll(&s.toClient)
	s.setToClient(true)
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

// onFileDone is the file sink's close callback: the file (or the listing)
// has been read and its pipe drained. A head still held for the body's first chunk — an empty
// file, a read that failed — goes out now.
func (s *session) onFileDone() {
	if s.toClient.Len() > 0 {
		s.setToClient(true)
	}
	s.check()
}

// onClientDone is the client sink's close callback: the client will send
// nothing more — it sent its FIN, or its connection failed. One that leaves
// before its head is complete gets no answer; one that leaves while the
// upstream has not finished replying has given up on the reply (abandon).
// One that leaves once the whole reply has come from the upstream, as a
// client does that reads a reply to its end, has not: only the upstream's
// close, which the relay waits for, is still to come, and nobody needs it,
// so the upstream connection closes now and the rest of the reply, if any
// is still on its way, goes out as usual.
func (s *session) onClientDone() {
	switch {
	case !s.responded:
		s.close()
	case s.proxying && s.upstreamSink.active && s.reply.state != replyComplete:
		s.abandon()
	case s.proxying && s.upstreamSink.active:
		s.upstream.close(false)
		s.check()
	default:
		s.check()
	}
}

// abandon ends a proxied request whose client has left before the upstream
// finished replying. Nobody will read the rest of the reply, so the
// upstream connection is closed at once, rather than held — with the
// client's socket, which the client has closed — until the upstream ends
// it, however long that takes. nginx does the same by default, and logs a
// 499.
func (s *session) abandon() {
	if xlog.HTTPEnabled() {
		xlog.HTTPf("%s %s %s → 499 client closed the connection", s.client.remoteIP, s.req.method, s.req.path)
	}
	s.upstream.close(false)
	s.close()
}

// forwardBody moves what the client has sent since its head into
// fromClient, for the upstream, up to the end of the request's body and no
// further: bytes after it — junk, or a pipelined request that may not even
// belong to this route — are read and dropped, and the session keeps
// reading only to notice the client leave. Bytes that are all body move
// without a copy.
func (s *session) forwardBody() {
	p := s.clientSink.pipe
	parts := s.clientSink.peek(nil, 0)
	n := 0
	var err error
	for _, part := range parts {
		k, ferr := s.framed(part)
		n += k
		if err = ferr; k < len(part) || err != nil {
			break
		}
	}
	if n == p.buf.Len() {
		s.clientSink.readAll(&s.fromClient)
	} else {
		for _, part := range parts {
			k := min(n, len(part))
			s.fromClient.Write(part[:k])
			if n -= k; n == 0 {
				break
			}
		}
		s.clientSink.clear(p.buf.Len())
	}
	if err != nil {
		s.rejectBody(err)
		return
	}
	if s.fromClient.Len() > 0 {
		s.setFromClient(true)
	}
}

// framed returns how many bytes at the start of b still belong to the
// request's body — Content-Length bytes, or a chunked body up to and
// including its last chunk and trailer section — and counts them as
// forwarded. A malformed chunked body is an *httpError (400).
func (s *session) framed(b []byte) (int, error) {
	if s.req.chunked {
		n, _, err := s.chunks.scan(b)
		return n, err
	}
	n := int(min(int64(len(b)), s.bodyLeft))
	s.bodyLeft -= int64(n)
	return n, nil
}

// rejectBody ends a proxied request whose chunked body turned out
// malformed. The upstream has the start of a request that can never be
// completed, so its connection is closed. The client gets a 400 if no byte
// of a reply has reached it yet; otherwise it is let go.
func (s *session) rejectBody(err error) {
	s.proxying = false
	s.upstreamErrorResSet = true // the upstream closed here gets no 502
	s.upstream.close(false)
	s.fromClient.Reset()
	if s.upstreamReplied {
		s.close()
		return
	}
	s.respondError(err)
}

// onUpstreamClosed is the close callback of the upstream-facing ends. An
// upstream that goes away before its first reply byte — refused, or closed
// after taking the request — gets the client a 502, once.
func (s *session) onUpstreamClosed() {
	if !s.upstreamReplied && !s.upstreamErrorResSet {
		s.upstreamErrorResSet = true
		xlog.Errorf("upstream %s:%d closed before replying", s.lookup.upstreamHost, s.lookup.upstreamPort)
		if s.clientSource.active {
			s.respond(502, nil)
		}
	}
	s.check()
}

// check is the destroy check, run after every handler that can end a flow.
//
//	request:  the client may still send (clientSink active)
//	upstream: upstreamSource active, and clientSink active or fromClient full
//	response: clientSource active, and not yet decided, or the file or the
//	          upstream still producing, or toClient full
//
// A flow that has ended passes its end on — the upstream sees the end of the
// request, the client the end of the response — and with every flow over the
// session is destroyed.
func (s *session) check() {
	if s.closed {
		return
	}
	responseAlive := s.clientSource.active &&
		(!s.responded || s.fileSink.active || s.upstreamSink.active || s.toClient.Len() > 0)
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
	// The request's flows are judged after the response's, which may just
	// have let the client go.
	requestAlive := s.clientSink.active
	toUpstream := s.upstreamSource.active && (s.clientSink.active || s.fromClient.Len() > 0)
	if !toUpstream && s.upstreamSource.pipe != nil {
		s.upstreamSource.close()
	}
	if !requestAlive && !toUpstream && !responseAlive {
		s.close()
	}
}
