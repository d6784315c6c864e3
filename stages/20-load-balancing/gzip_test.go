package main

import (
	"bytes"
	"compress/gzip" // the standard library decodes what the server wrote
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"expserver-go/common/buffer"
	compressor "expserver-go/common/gzip"
	"expserver-go/tests/harness"

	"golang.org/x/sys/unix"
)

func TestAcceptsGzip(t *testing.T) {
	// The table of spec §3.2, then the edges of its grammar. Each entry is
	// the Accept-Encoding lines of one request.
	yes := [][]string{{"gzip"}, {"GZIP"}, {"gzip, deflate, br"}, {"deflate, gzip;q=0.5"}, {"gzip;q=0.001"}, {"x-gzip"},
		{"*"}, {"br, *;q=0.1"},
		{"deflate", "gzip"}, {"gzip ; q=1"}, {"gzip;\tQ=0.5"}, {"gzip;q=1."}, {"gzip;q=1.000"}, {"gzip;q=0.5 "},
		{" , ,gzip"}, {"*;q=0, gzip"}, {"X-GZip;q=0.9"}, {"gzip;q=2, *"}, {"identity;q=0, gzip"}, {"", "gzip"}}
	no := [][]string{nil, {""}, {"identity"}, {"deflate"}, {"br"}, {"gzip;q=0"}, {"gzip;q=0.000"}, {"gzip;Q=0"},
		{"gzip;q=0, *"}, {"*;q=0"}, {"gzipx"}, {"gzip;q=2"},
		{"zstd, br"}, {"gzip;q=0."}, {"x-gzip;q=0, *"}, {"*, gzip;q=0"}, {"gzip;q=1.001"}, {"gzip;q=0.0001"},
		{"gzip;q=.5"}, {"gzip;q=-1"}, {"gzip;q = 1"}, {"gzip;q="}, {"gzip;level=1"}, {"gzip;q=0.5;q=1"}, {";q=1"},
		{"identity;q=0"}, {"deflate;q=1, *;q=0.000"}}
	for _, want := range []bool{true, false} {
		cases := yes
		if !want {
			cases = no
		}
		for _, lines := range cases {
			req := &httpRequest{headers: []header{{"Host", "x"}}}
			for _, l := range lines {
				req.headers = append(req.headers, header{"accept-encoding", l})
			}
			if got := acceptsGzip(req); got != want {
				t.Errorf("Accept-Encoding %q: acceptsGzip = %v, want %v", lines, got, want)
			}
		}
	}
}

func TestParseQvalue(t *testing.T) {
	cases := []struct {
		v            string
		positive, ok bool
	}{
		{"1", true, true}, {"1.", true, true}, {"1.0", true, true}, {"1.000", true, true},
		{"0", false, true}, {"0.", false, true}, {"0.000", false, true}, {"0.001", true, true}, {"0.5", true, true},
		{"", false, false}, {"1.001", false, false}, {"0.0001", false, false}, {"2", false, false}, {".5", false, false},
		{"0,5", false, false}, {"00", false, false}, {"0.5x", false, false}, {"1.0000", false, false}, {" 1", false, false},
	}
	for _, tc := range cases {
		if positive, ok := parseQvalue(tc.v); positive != tc.positive || ok != tc.ok {
			t.Errorf("parseQvalue(%q) = %v, %v; want %v, %v", tc.v, positive, ok, tc.positive, tc.ok)
		}
	}
}

func TestCompressible(t *testing.T) {
	r := &routeConfig{gzipTypes: []string{"text/x-c"}}
	for _, typ := range []string{"text/plain", "TEXT/HTML", "application/json", "image/svg+xml", "text/x-c", "Text/X-C"} {
		if !r.compressible(typ) {
			t.Errorf("compressible(%q) = false, want true", typ)
		}
	}
	for _, typ := range []string{"image/jpeg", "application/pdf", "application/octet-stream", "text/csv", "text/plain; charset=utf-8", ""} {
		if r.compressible(typ) {
			t.Errorf("compressible(%q) = true, want false", typ)
		}
	}
}

// chunks splits a chunked body strictly: every chunk but the last has data,
// each size is bare hex without extensions, and nothing follows the last
// chunk, which has no trailers. finished reports whether the last chunk
// came; without it, data is what the whole chunks carried.
func chunks(body []byte) (data []byte, finished bool, err error) {
	for len(body) > 0 {
		line, rest, ok := bytes.Cut(body, []byte("\r\n"))
		if !ok {
			return data, false, nil
		}
		n, err := strconv.ParseUint(string(line), 16, 31)
		if err != nil {
			return nil, false, fmt.Errorf("chunk size %q", line)
		}
		if n == 0 {
			if string(rest) != "\r\n" {
				return nil, false, fmt.Errorf("after the last chunk: %q", rest)
			}
			return data, true, nil
		}
		if len(rest) < int(n)+2 {
			return data, false, nil
		}
		if string(rest[n:n+2]) != "\r\n" {
			return nil, false, fmt.Errorf("chunk of %d bytes not followed by CRLF", n)
		}
		data = append(data, rest[:n]...)
		body = rest[n+2:]
	}
	return data, false, nil
}

// gunzip decompresses one whole gzip member.
func gunzip(t *testing.T, z []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	r.Multistream(false)
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// reader is the session's end of a gzip module's output in these tests: a
// sink that keeps what it reads, and reads only while open is set.
type reader struct {
	sink *pipeSink
	got  []byte
	open bool
	done bool // the stream ended (the close callback ran)
}

func newReader() *reader {
	r := &reader{open: true}
	r.sink = newPipeSink(r.take, func() { r.done = true })
	r.sink.ready = true
	return r
}

func (r *reader) take() {
	if !r.open {
		r.sink.setReady(false)
		return
	}
	b, err := r.sink.read(r.sink.pipe.buf.Len())
	if err != nil {
		panic(err)
	}
	r.got = append(r.got, b.Bytes()...)
	r.sink.clear(b.Len())
}

// settle runs pipe passes until no pipe wants service, or fails after many.
func settle(t *testing.T, c *core) {
	t.Helper()
	for range 100000 {
		if !c.loop.handlePipes() {
			return
		}
	}
	t.Fatal("the pipes never settled")
}

// gzipFile serves content from a file through a gzip module at level into
// a reader, as a session would: file → gzip → reader.
func gzipFile(t *testing.T, c *core, content []byte, level int) (*file, *gzipper, *reader) {
	t.Helper()
	root := t.TempDir()
	path := filepath.Join(root, "body.txt")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := newFile(c, path, root)
	if err != nil {
		t.Fatal(err)
	}
	g := newGzipper(c, level, f.size)
	r := newReader()
	if _, err := newPipe(c, pipeThreshold, f.source, g.sink); err != nil {
		t.Fatal(err)
	}
	if _, err := newPipe(c, gzipThreshold, g.source, r.sink); err != nil {
		t.Fatal(err)
	}
	return f, g, r
}

// gzipTestCore is testCore with the file module's folder table closed at
// the end of the test.
func gzipTestCore(t *testing.T) *core {
	c := testCore()
	t.Cleanup(func() {
		for _, fd := range c.dirFDs {
			unix.Close(fd)
		}
	})
	return c
}

func TestGzipFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("pipe sink source gzip chunk file region loop epoll session")
	var text bytes.Buffer
	for text.Len() < 3<<20 {
		text.WriteString(words[rng.IntN(len(words))] + " ")
	}
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name    string
		content []byte
	}{{"empty", nil}, {"one byte", []byte("x")}, {"words", text.Bytes()}, {"incompressible", random}} {
		for _, level := range []int{1, 9} {
			c := gzipTestCore(t)
			f, g, r := gzipFile(t, c, tc.content, level)
			settle(t, c)
			data, finished, err := chunks(r.got)
			if err != nil || !finished {
				t.Fatalf("%s, level %d: finished %v, %v", tc.name, level, finished, err)
			}
			if got := gunzip(t, data); !bytes.Equal(got, tc.content) {
				t.Errorf("%s, level %d: decodes to %d other bytes, want the %d of the file", tc.name, level, len(got), len(tc.content))
			}
			if !r.done || !g.closed || !f.closed || f.regions != 0 || len(c.pipes) != 1 {
				t.Errorf("%s: reader told of the end %v, gzip closed %v, file closed %v with %d regions, %d pipes; want the reader's pipe only",
					tc.name, r.done, g.closed, f.closed, f.regions, len(c.pipes))
			}
		}
	}
}

// TestGzipListingBytes checks a producer that writes bytes rather than file
// regions, as a listing does, and one that leaves before its announced end.
func TestGzipListingBytes(t *testing.T) {
	page := bytes.Repeat([]byte("<tr><td><a href=\"/x\">x</a></td></tr>\n"), 5000)
	for _, short := range []bool{false, true} {
		c := testCore()
		g := newGzipper(c, 6, int64(len(page)))
		r := newReader()
		left := page
		if short {
			left = page[:len(page)/2]
		}
		var src *pipeSource
		src = newPipeSource(func() {
			n := min(len(left), src.pipe.room())
			src.write(left[:n])
			if left = left[n:]; len(left) == 0 {
				src.close()
			}
		}, func() {})
		src.ready = true
		if _, err := newPipe(c, listingThreshold, src, g.sink); err != nil {
			t.Fatal(err)
		}
		if _, err := newPipe(c, gzipThreshold, g.source, r.sink); err != nil {
			t.Fatal(err)
		}
		settle(t, c)
		data, finished, err := chunks(r.got)
		switch {
		case err != nil:
			t.Fatalf("short %v: %v", short, err)
		case short && finished:
			t.Errorf("a page cut short ended with the last chunk")
		case !short && !finished:
			t.Errorf("a whole page ended without the last chunk")
		case !short && !bytes.Equal(gunzip(t, data), page):
			t.Errorf("the page decodes to other bytes")
		}
		if !g.closed || !r.done {
			t.Errorf("short %v: gzip closed %v, reader told of the end %v", short, g.closed, r.done)
		}
	}
}

// TestGzipBackpressure checks that a reader that takes nothing stops the
// gzip module, and the gzip module the file: little of a large file is read
// and compressed, and the compressed bytes held stay bounded.
func TestGzipBackpressure(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	content := make([]byte, 8<<20)
	for i := range content {
		content[i] = "abcdefghijklmnopqrstuvwxyz \n"[rng.IntN(28)]
	}
	c := gzipTestCore(t)
	f, g, r := gzipFile(t, c, content, 6)
	r.open = false
	settle(t, c)
	held := g.transfer.Len() + r.sink.pipe.buf.Len()
	t.Logf("a reader that takes nothing: %d bytes compressed, %d held", g.totalIn, held)
	if g.totalIn > 512<<10 || held > gzipThreshold+2*gzipChunk+64<<10 {
		t.Errorf("with a reader that takes nothing, %d bytes were compressed and %d are held", g.totalIn, held)
	}
	// The reader starts to read: the rest follows, and the stream ends.
	r.open = true
	r.sink.setReady(true)
	for !r.done {
		r.take()
		settle(t, c)
	}
	data, finished, err := chunks(r.got)
	if err != nil || !finished || !bytes.Equal(gunzip(t, data), content) {
		t.Fatalf("after the reader resumed: finished %v, %v", finished, err)
	}
	if !f.closed || f.regions != 0 {
		t.Errorf("file closed %v, %d regions", f.closed, f.regions)
	}
}

// TestGzipFileShrinks checks that a file cut short while it is compressed
// never gets a finished stream or a last chunk, and that everything is
// released.
func TestGzipFileShrinks(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	c := gzipTestCore(t)
	f, g, r := gzipFile(t, c, content, 6)
	if err := os.Truncate(f.path, 100<<10); err != nil {
		t.Fatal(err)
	}
	settle(t, c)
	_, finished, err := chunks(r.got)
	if err != nil || finished {
		t.Fatalf("a file cut short: finished %v, %v; want well-formed chunks without the last", finished, err)
	}
	if !g.closed || !f.closed || f.regions != 0 || !r.done {
		t.Errorf("gzip closed %v, file closed %v with %d regions, reader told %v", g.closed, f.closed, f.regions, r.done)
	}
	if len(c.compressors.spare[6]) != 1 {
		t.Errorf("%d spare compressors at level 6, want the one used", len(c.compressors.spare[6]))
	}
}

// TestGzipReaderLeaves checks that a reader leaving mid-stream releases the
// gzip module, its compressor and the file.
func TestGzipReaderLeaves(t *testing.T) {
	content := bytes.Repeat([]byte("a line of text that repeats\n"), 1<<16)
	c := gzipTestCore(t)
	f, g, r := gzipFile(t, c, content, 6)
	c.loop.handlePipes()
	c.loop.handlePipes()
	r.sink.close()
	settle(t, c)
	if !g.closed || !f.closed || f.regions != 0 || len(c.pipes) != 0 {
		t.Errorf("gzip closed %v, file closed %v with %d regions, %d pipes left", g.closed, f.closed, f.regions, len(c.pipes))
	}
	if len(c.compressors.spare[6]) != 1 {
		t.Errorf("%d spare compressors at level 6, want the one used", len(c.compressors.spare[6]))
	}
}

func TestCompressorsReused(t *testing.T) {
	var cs compressors
	var out gzipOutput
	w := cs.get(9, &out)
	w.Write([]byte("first"))
	cs.put(9, w)
	if cs.get(1, &out) == w {
		t.Fatal("a compressor of level 9 was given for level 1")
	}
	var out2 gzipOutput
	w2 := cs.get(9, &out2)
	if w2 != w {
		t.Fatal("the spare compressor of level 9 was not reused")
	}
	w2.Write([]byte("second"))
	w2.Close()
	b, _ := out2.Read(out2.Len())
	if got := gunzip(t, b.Bytes()); string(got) != "second" {
		t.Errorf("a reused compressor wrote %q, want only the new stream", got)
	}
	for range maxSpareCompressors + 5 {
		cs.put(9, cs.get(9, &out))
	}
	ws := make([]*compressor.Writer, maxSpareCompressors+5)
	for i := range ws {
		ws[i] = cs.get(9, &out)
	}
	for _, w := range ws {
		cs.put(9, w)
	}
	if n := len(cs.spare[9]); n != maxSpareCompressors {
		t.Errorf("%d spare compressors kept, want %d", n, maxSpareCompressors)
	}
}

// gzipConfig serves root on 0.0.0.0:8001 with gzip on and a minimum of
// 20 bytes, and without gzip under /plain.
func gzipConfig(t *testing.T, root string) *config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xps_config.json")
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
		{"req_path": "/", "type": "file_serve", "dir_path": "` + root + `", "gzip_enable": true},
		{"req_path": "/plain", "type": "file_serve", "dir_path": "` + root + `"}]}]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSessionGzipHeads checks the heads of the responses that could be
// compressed: which are, which say Vary, and which keep Content-Length.
func TestSessionGzipHeads(t *testing.T) {
	root := t.TempDir()
	text := strings.Repeat("some text ", 10)
	for name, content := range map[string]string{"a.txt": text, "short.txt": "tiny", "b.jpg": text, "plain/a.txt": text} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := gzipConfig(t, root)
	const (
		gzipped  = "Content-Encoding: gzip | Vary: Accept-Encoding | Transfer-Encoding: chunked"
		identity = "Content-Length: 100"
		varied   = "Content-Length: 100 | Vary: Accept-Encoding"
	)
	cases := []struct {
		name, request, want string
	}{
		{"accepted", "GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", gzipped},
		{"HEAD", "HEAD /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", gzipped},
		{"not accepted", "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n", varied},
		{"refused", "GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0, *\r\n\r\n", varied},
		{"HTTP/1.0", "GET /a.txt HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n", varied},
		{"a listing", "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", gzipped},
		{"a type not compressed", "GET /b.jpg HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", identity},
		{"too short", "GET /short.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", "Content-Length: 4"},
		{"a route without gzip", "GET /plain/a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", identity},
	}
	for _, tc := range cases {
		s := testSession(t, cfg)
		feed(s, tc.request, len(tc.request))
		b, err := s.toClient.Read(s.toClient.Len())
		if err != nil {
			t.Fatal(err)
		}
		r, err := harness.ParseResponse(b.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, h := range r.Headers {
			switch h.Name {
			case "Content-Encoding", "Vary", "Transfer-Encoding", "Content-Length":
				got = append(got, h.Name+": "+h.Value)
			}
		}
		if strings.Join(got, " | ") != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, strings.Join(got, " | "), tc.want)
		}
		if r.Status != 200 || len(r.Body) != 0 {
			t.Errorf("%s: status %d with %d body bytes held, want 200 and the head alone", tc.name, r.Status, len(r.Body))
		}
		gzipping := s.gzip != nil
		if want := tc.want == gzipped && !strings.HasPrefix(tc.request, "HEAD"); gzipping != want {
			t.Errorf("%s: a gzip module %v, want %v", tc.name, gzipping, want)
		}
		s.close()
	}
}

// TestErrorsNotCompressed checks that an error page goes as it is to a
// client that accepts gzip.
func TestErrorsNotCompressed(t *testing.T) {
	cfg := gzipConfig(t, t.TempDir())
	for _, req := range []string{"GET /missing.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
		"POST /missing.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nContent-Length: 0\r\n\r\n"} {
		s := testSession(t, cfg)
		feed(s, req, len(req))
		b, _ := s.toClient.Read(s.toClient.Len())
		r, err := harness.ParseResponse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.Lookup("Content-Encoding"); ok || s.gzip != nil || r.Get("Content-Length") != strconv.Itoa(len(r.Body)) {
			t.Errorf("%q: %d with Content-Encoding %q, a gzip module %v; want the page as it is", req, r.Status, r.Get("Content-Encoding"), s.gzip != nil)
		}
	}
}

// BenchmarkGzipFile measures compressing a 1 MiB text file at level 6
// through the pipes, as a response does, with the compressor reused.
func BenchmarkGzipFile(b *testing.B) {
	root := b.TempDir()
	path := filepath.Join(root, "large.txt")
	if err := os.WriteFile(path, bytes.Repeat([]byte("This is a long line of text for testing "), 1<<20/40), 0o644); err != nil {
		b.Fatal(err)
	}
	c := testCore()
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	for b.Loop() {
		f, err := newFile(c, path, root)
		if err != nil {
			b.Fatal(err)
		}
		g := newGzipper(c, 6, f.size)
		var out buffer.List
		var sink *pipeSink
		sink = newPipeSink(func() { sink.readAll(&out); out.Reset() }, func() {})
		sink.ready = true
		newPipe(c, pipeThreshold, f.source, g.sink)
		newPipe(c, gzipThreshold, g.source, sink)
		for !g.closed {
			c.loop.handlePipes()
		}
		sink.close()
		c.loop.handlePipes()
	}
	if len(c.pipes) != 0 {
		b.Fatalf("%d pipes left", len(c.pipes))
	}
}
