package harness

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"
)

// The readers below take a response apart the way a browser or Node's
// fetch does — framing first (chunked, Content-Length, or up to the close),
// then the content coding — and are strict where those clients are lenient:
// a body that is cut short, framed twice, followed by stray bytes, or
// compressed into anything but one complete gzip member is an error that
// says so, because a server that sends one is wrong even where a browser
// shows the page.

// idleReader reads from a connection, failing when nothing arrives for
// idle.
type idleReader struct {
	c    net.Conn
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(r.idle))
	return r.c.Read(p)
}

// ReadHead reads a response head from c, failing when nothing arrives for
// idle, and returns it parsed (with an empty Body) together with the reader
// of what follows it, which keeps the same idle bound.
func ReadHead(c net.Conn, idle time.Duration) (*Response, *bufio.Reader, error) {
	br := bufio.NewReaderSize(idleReader{c, idle}, ChunkSize)
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, br, fmt.Errorf("the head after %d bytes: %w", len(head), err)
		}
		if len(head) > 64<<10 {
			return nil, br, fmt.Errorf("a head of more than 64 KiB: %s", Abbrev(head, 120))
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			break
		}
	}
	r, err := ParseResponse(head)
	return r, br, err
}

// FramedBody returns the body of the response r as its framing delimits it
// in rest, the bytes that follow the head: de-chunked when
// Transfer-Encoding is chunked (then the last chunk must close the body,
// without trailers), exactly Content-Length bytes when it has one,
// everything up to the close otherwise. Each response of the servers under
// test ends the connection, so after the body the stream must end too; the
// reader returns an error at its end if it does not, or if the body stops
// short.
func FramedBody(r *Response, rest io.Reader) (io.Reader, error) {
	te, chunked := r.Lookup("Transfer-Encoding")
	cl, sized := r.Lookup("Content-Length")
	switch {
	case chunked && sized:
		return nil, fmt.Errorf("both Transfer-Encoding and Content-Length")
	case chunked:
		if !strings.EqualFold(te, "chunked") || r.Count("Transfer-Encoding") != 1 {
			return nil, fmt.Errorf("Transfer-Encoding %q (want chunked)", te)
		}
		br, ok := rest.(*bufio.Reader)
		if !ok {
			br = bufio.NewReader(rest)
		}
		return &dechunker{br: br, body: httputil.NewChunkedReader(br)}, nil
	case sized:
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 || r.Count("Content-Length") != 1 {
			return nil, fmt.Errorf("Content-Length %q", cl)
		}
		return &exactly{r: rest, left: n}, nil
	}
	return rest, nil
}

// dechunker is a chunked body that checks the end of it: after the last
// chunk, an empty trailer section and then the end of the stream.
type dechunker struct {
	br   *bufio.Reader
	body io.Reader
	done bool
}

func (d *dechunker) Read(p []byte) (int, error) {
	if d.done {
		return 0, io.EOF
	}
	n, err := d.body.Read(p)
	if err == io.EOF {
		err = endsAfter(d.br, "\r\n", "after the last chunk")
		d.done = err == nil
		if err == nil {
			err = io.EOF
		}
	} else if err != nil {
		err = fmt.Errorf("chunked body: %w", err)
	}
	return n, err
}

// exactly is a body of a known length followed by the end of the stream.
type exactly struct {
	r    io.Reader
	left int64
}

func (x *exactly) Read(p []byte) (int, error) {
	if x.left == 0 {
		if err := endsAfter(x.r, "", "after Content-Length bytes"); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > x.left {
		p = p[:x.left]
	}
	n, err := x.r.Read(p)
	x.left -= int64(n)
	if err == io.EOF && x.left > 0 {
		err = fmt.Errorf("the body ended %d bytes short of its Content-Length: %w", x.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

// endsAfter reads r to its end and requires exactly want.
func endsAfter(r io.Reader, want, where string) error {
	got, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil && !IsReset(err) {
		return fmt.Errorf("%s: %w", where, err)
	}
	if string(got) != want {
		return fmt.Errorf("%s: %s, want %q and the end of the stream", where, Abbrev(got, 60), want)
	}
	return nil
}

// Decoded returns the payload of a response whose framed body is body (see
// FramedBody): the body itself without a Content-Encoding, and for gzip
// (or x-gzip) the decompression of exactly one gzip member, which must end
// where the body ends. Any other coding is an error: the clients of the
// checks accept gzip only.
func Decoded(r *Response, body io.Reader) (io.Reader, error) {
	ce, coded := r.Lookup("Content-Encoding")
	if !coded {
		return body, nil
	}
	if r.Count("Content-Encoding") != 1 || !strings.EqualFold(ce, "gzip") && !strings.EqualFold(ce, "x-gzip") {
		return nil, fmt.Errorf("Content-Encoding %q (want gzip or none)", ce)
	}
	br := bufio.NewReader(body)
	z, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	z.Multistream(false)
	return &gunzipper{z: z, rest: br}, nil
}

// gunzipper is one gzip member followed by the end of the body.
type gunzipper struct {
	z    *gzip.Reader
	rest io.Reader
}

func (g *gunzipper) Read(p []byte) (int, error) {
	n, err := g.z.Read(p)
	if err == io.EOF {
		if err := endsAfter(g.rest, "", "after the gzip member"); err != nil {
			return n, err
		}
	} else if err != nil {
		err = fmt.Errorf("gzip: %w", err)
	}
	return n, err
}

// Payload is Decoded(FramedBody(r, rest)): what a browser or fetch hands
// the page.
func Payload(r *Response, rest io.Reader) (io.Reader, error) {
	body, err := FramedBody(r, rest)
	if err != nil {
		return nil, err
	}
	return Decoded(r, body)
}

// DecodeBody returns the payload of a whole response, read to the close
// and parsed with ParseResponse.
func DecodeBody(r *Response) ([]byte, error) {
	p, err := Payload(r, bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(p)
}

// Dechunk returns the chunk data of a whole chunked body, and an error if
// the body is malformed, followed by more bytes, or not finished by its last
// chunk (then wrapping io.ErrUnexpectedEOF).
func Dechunk(body []byte) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(body))
	return io.ReadAll(&dechunker{br: br, body: httputil.NewChunkedReader(br)})
}
