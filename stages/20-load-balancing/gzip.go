package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"expserver-go/common/buffer"
	"expserver-go/common/gzip"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// How much a compressing response holds, and how it moves:
//
//   - gzipStep is the most input handed to the compressor in one Write, and
//     the size of the read from a file region;
//   - gzipBudget is the most input one call of the sink's handler
//     compresses, so that a fast client of a very compressible file, whose
//     output never fills, does not keep the loop from everyone else;
//   - gzipChunk is how many compressed bytes wait before they are passed on,
//     as one HTTP chunk: the compressor writes a few hundred bytes at a
//     time, and a chunk per write would cost more in framing and sends than
//     it carries. The last chunk of a response may be shorter;
//   - gzipThreshold is the capacity of the pipe from the gzip module to the
//     session, and of the client's pipe: every byte in them is memory.
const (
	gzipStep      = 64 << 10
	gzipBudget    = 256 << 10
	gzipChunk     = 16 << 10
	gzipThreshold = 32 << 10
)

// defaultGzipTypes are the media types compressed by default (the h5bp list the
// course's reference solution uses); a route's gzip_mime_types adds to
// them. Images, audio, video, PDFs and archives are compressed already.
var defaultGzipTypes = []string{
	"text/html", "text/css", "text/plain", "text/xml", "text/x-component", "text/javascript",
	"application/x-javascript", "application/javascript", "application/json", "application/xml",
	"application/xhtml+xml", "application/rss+xml", "application/atom+xml", "application/vnd.ms-fontobject",
	"application/x-font-ttf", "application/x-font-opentype", "application/x-font-truetype",
	"image/svg+xml", "image/x-icon", "font/ttf", "font/eot", "font/otf", "font/opentype",
}

// compressible reports whether the route compresses bodies of mimeType, a
// bare type/subtype: one of the default types or of its gzip_mime_types,
// compared without regard to case.
func (r *routeConfig) compressible(mimeType string) bool {
	for _, list := range [][]string{defaultGzipTypes, r.gzipTypes} {
		for _, t := range list {
			if strings.EqualFold(t, mimeType) {
				return true
			}
		}
	}
	return false
}

// acceptsGzip reports whether req accepts a gzip body, reading its
// Accept-Encoding lines as RFC 9110 §12.5.3 does: every line joined with
// commas, each element a coding with an optional weight. gzip (or its old
// name x-gzip) is accepted when an element names it with a weight above 0,
// or when none names it and "*" has a weight above 0: an explicit
// "gzip;q=0" refuses it whatever "*" says. An element with a malformed
// weight is ignored. No header, an empty one, or only other codings, mean
// identity. The course looks for the substring "gzip", which accepts
// "gzip;q=0".
func acceptsGzip(req *httpRequest) bool {
	named, namedOK, star := false, false, false
	for _, h := range req.headers {
		if !strings.EqualFold(h.key, "Accept-Encoding") {
			continue
		}
		for elem := range strings.SplitSeq(h.val, ",") {
			coding, q, ok := parseCoding(elem)
			switch {
			case !ok:
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				named = true
				namedOK = namedOK || q
			case coding == "*":
				star = star || q
			}
		}
	}
	if named {
		return namedOK
	}
	return star
}

// parseCoding splits one Accept-Encoding element, `coding [ ; q=value ]`
// with optional spaces and tabs around the semicolon, into its coding and
// whether its weight is above 0 (1 without a weight). ok is false for an
// empty element and for one whose parameter is not a well-formed weight.
func parseCoding(elem string) (coding string, positive, ok bool) {
	coding, param, hasParam := strings.Cut(elem, ";")
	coding = strings.Trim(coding, " \t")
	if coding == "" {
		return "", false, false
	}
	if !hasParam {
		return coding, true, true
	}
	param = strings.Trim(param, " \t")
	if len(param) < 2 || param[0] != 'q' && param[0] != 'Q' || param[1] != '=' {
		return "", false, false
	}
	positive, ok = parseQvalue(param[2:])
	return coding, positive, ok
}

// parseQvalue parses a weight (RFC 9110 §12.4.2): "0" or "1", optionally
// followed by a dot and at most three digits, none above 0 after a 1. It
// reports whether the weight is above 0 and whether it was well formed.
func parseQvalue(v string) (positive, ok bool) {
	if v == "" || v[0] != '0' && v[0] != '1' {
		return false, false
	}
	frac := v[1:]
	if frac != "" {
		if frac[0] != '.' || len(frac) > 4 {
			return false, false
		}
		frac = frac[1:]
	}
	for i := 0; i < len(frac); i++ {
		if !isDigit(frac[i]) || v[0] == '1' && frac[i] != '0' {
			return false, false
		}
		positive = positive || frac[i] != '0'
	}
	return v[0] == '1' || positive, true
}

// gzipper compresses a body on its way from a file or a listing to the
// session: it is the sink of the pipe its producer writes to and the source
// of the pipe the session reads from. What it passes on is the body as it
// goes on the wire — one gzip member (RFC 1952) in HTTP chunks, ended by
// the last chunk — so the session sends it as it sends a file. It compresses
// only while what it has compressed and not yet passed on is under
// gzipChunk: a client that does not read stops the session, which stops
// the gzipper, which stops reading the file, as in stage 10.
// Mirrors xps_gzip_t.
type gzipper struct {
	core     *core
	w        *gzip.Writer // the compressor: z_stream in the course
	level    int
	sink     *pipeSink   // the body comes in here
	source   *pipeSource // compressed chunks go out here
	transfer gzipOutput  // compressed, not yet passed on
	frame    buffer.List // a chunk being framed, reused
	size     int64       // the body's length, as its producer announced it
	totalIn  int64       // body bytes compressed so far
	totalOut int64       // compressed bytes passed on so far
	finished bool        // the stream is complete and waits to go out with the last chunk
	closed   bool
}

// gzipOutput is where the compressor writes: a buffer list, to which each
// write appends a copy. Mirrors transfer_buff.
type gzipOutput struct{ buffer.List }

// Write appends a copy of p; it never fails.
func (o *gzipOutput) Write(p []byte) (int, error) {
	o.List.Write(p)
	return len(p), nil
}

// gzipReadBuf is where a file region's bytes are read before they are
// compressed. The server has one thread, and the compressor takes each
// read whole before the next, so one buffer serves every response.
var gzipReadBuf = make([]byte, gzipStep)

// newGzipper returns a gzip module for a body of size bytes, compressed at
// level (1–9), with a compressor from the core's spare ones. Its sink
// starts ready — nothing waits to go out — and its source not: there is
// nothing to pass on yet. Mirrors xps_gzip_create.
func newGzipper(c *core, level int, size int64) *gzipper {
	g := &gzipper{core: c, level: level, size: size}
	g.w = c.compressors.get(level, &g.transfer)
	g.sink = newPipeSink(g.deflate, g.endOfInput)
	g.source = newPipeSource(g.send, g.close)
	g.sink.ready = true
	return g
}

// deflate is the sink's handler: it compresses what the pipe holds, in
// steps of gzipStep, until gzipBudget bytes are done, the pipe is empty or
// a chunk's worth of output waits. A file region's bytes are read here,
// only now that there is room for what they compress to. A region that
// reads short — the file shrank after it was opened — or fails to read
// means the body can never be complete, so the response is cut off (see
// abort) rather than finished on the wrong bytes.
func (g *gzipper) deflate() {
	p := g.sink.pipe
	for budget := gzipBudget; budget > 0 && p.readable() && g.transfer.Len() < gzipChunk; {
		in, err := g.next(p.buf.Head(), min(budget, gzipStep))
		if err != nil {
			g.abort(err)
			return
		}
		if _, err := g.w.Write(in); err != nil {
			g.abort(err)
			return
		}
		g.sink.clear(len(in))
		g.totalIn += int64(len(in))
		budget -= len(in)
	}
	if g.transfer.Len() >= gzipChunk {
		g.sink.setReady(false)
		g.source.setReady(true)
	}
}

// next returns the next at most n bytes of b, the pipe's first buffer: its
// own bytes, or a file region's, read into gzipReadBuf.
func (g *gzipper) next(b *buffer.Buffer, n int) ([]byte, error) {
	fd, off, ok := b.FileRegion()
	if !ok {
		in := b.Bytes()
		return in[:min(len(in), n)], nil
	}
	for {
		k, err := unix.Pread(fd, gzipReadBuf[:min(b.Len(), n)], off)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, os.NewSyscallError("pread", err)
		case k == 0:
			return nil, errors.New("the file shrank while it was being sent")
		}
		return gzipReadBuf[:k], nil
	}
}

// endOfInput is the sink's close callback: the producer has gone and its
// pipe has drained. When the whole body came, the stream is finished — the
// compressor writes its last block and the gzip trailer — and goes out with
// the last chunk. When less came than the producer announced, it is cut
// off instead.
func (g *gzipper) endOfInput() {
	if g.totalIn != g.size {
		g.abort(fmt.Errorf("the body ended after %d of %d bytes", g.totalIn, g.size))
		return
	}
	if err := g.w.Close(); err != nil {
		g.abort(err)
		return
	}
	g.finished = true
	g.sink.close()
	g.source.setReady(true)
}

// send is the source's handler: what the compressor wrote goes into the
// pipe as one chunk — its size in hex, the bytes, CRLF — and, once the
// stream is finished, the last chunk after it, and the gzipper is done.
// No chunk is empty: an empty one would end the body. The sink is ready
// again, since the output has room.
func (g *gzipper) send() {
	if n := g.transfer.Len(); n > 0 {
		g.frame.Write(strconv.AppendInt(gzipChunkHead[:0], int64(n), 16))
		g.frame.Write(crlf)
		g.transfer.MoveTo(&g.frame)
		g.frame.Write(crlf)
		g.totalOut += int64(n)
	}
	if g.finished {
		g.frame.Write(lastChunk)
	}
	if err := g.source.writeList(&g.frame); err != nil {
		xlog.Errorf("gzip: %v", err)
		g.close()
		return
	}
	g.source.setReady(false)
	if g.finished {
		if xlog.DebugEnabled() {
			xlog.Debugf("gzip: %d bytes compressed to %d at level %d", g.totalIn, g.totalOut, g.level)
		}
		g.close()
		return
	}
	g.sink.setReady(true)
}

// The framing of chunks (RFC 9112 §7.1). The last chunk has no trailer
// section.
var (
	crlf          = []byte("\r\n")
	lastChunk     = []byte("0\r\n\r\n")
	gzipChunkHead = make([]byte, 0, 16)
)

// abort ends a body that cannot be completed: what was passed on stays,
// but the stream is never finished and no last chunk follows, so the
// client, reading chunks, sees the body cut off when the connection closes,
// and never a well-formed gzip stream of the wrong content.
func (g *gzipper) abort(err error) {
	xlog.Errorf("gzip: %v", err)
	g.close()
}

// close detaches both ends — the producer learns that nobody reads, the
// session that nothing more comes — and gives the compressor back to the
// core. It is also the source's close callback: when the session goes, the
// gzipper goes, and the producer with it. Mirrors xps_gzip_destroy.
func (g *gzipper) close() {
	if g.closed {
		return
	}
	g.closed = true
	g.sink.close()
	g.source.close()
	g.transfer.Reset()
	g.frame.Reset()
	g.core.compressors.put(g.level, g.w)
	g.w = nil
}

// maxSpareCompressors caps the compressors kept for reuse at each level. A
// compressor is most of a megabyte of tables; clearing one for the next
// response costs far less than allocating one and leaving the old to the
// garbage collector. Beyond the cap, what a burst of clients needed is let
// go.
const maxSpareCompressors = 16

// compressors keeps the compressors of finished responses, by level, for
// the next ones.
type compressors struct {
	spare [10][]*gzip.Writer
}

// get returns a compressor at level, writing to dst: a spare one reset,
// or a new one.
func (cs *compressors) get(level int, dst *gzipOutput) *gzip.Writer {
	if n := len(cs.spare[level]); n > 0 {
		w := cs.spare[level][n-1]
		cs.spare[level][n-1] = nil
		cs.spare[level] = cs.spare[level][:n-1]
		w.Reset(dst)
		return w
	}
	// level is 1–9, which the config checked; NewWriterLevel fails on
	// nothing else.
	w, _ := gzip.NewWriterLevel(dst, level)
	return w
}

// put keeps w for the next response at level, unless enough are kept.
func (cs *compressors) put(level int, w *gzip.Writer) {
	if len(cs.spare[level]) < maxSpareCompressors {
		cs.spare[level] = append(cs.spare[level], w)
	}
}
