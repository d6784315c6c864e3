package milestone

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"time"

	"expserver-go/tests/harness"
)

// httpMilestones are the checks of the HTTP stages (14–17).
var httpMilestones = []Milestone{
	{ID: "http-valid-jpg", Title: "GET /cat.jpg: 200, Content-Type image/jpeg, Server eXpServer, head in the first chunk",
		From: 14, To: 15, Grader: true, Run: graderRequest("GET /cat.jpg", "image/jpeg", 200, "image/jpeg")},
	{ID: "http-valid-pdf", Title: "GET /sample.pdf: 200, Content-Type application/pdf",
		From: 14, To: 15, Grader: true, Run: graderRequest("GET /sample.pdf", "application/pdf", 200, "application/pdf")},
	{ID: "http-valid-plain", Title: "GET /sample.txt: 200, Content-Type text/plain",
		From: 14, To: 15, Grader: true, Run: graderRequest("GET /sample.txt", "text/plain", 200, "text/plain")},
	{ID: "http-not-found", Title: "GET /test.html: 404 with Server eXpServer",
		From: 14, To: 15, Grader: true, Run: graderRequest("GET /test.html", "text/html", 404, "")},
	{ID: "http-no-version", Title: "a request line without a version: 400 with Server eXpServer",
		From: 14, To: 15, Grader: true, Run: rawGraderRequest("GET /index.html\r\nHost: %s\r\n\r\n", 400)},
	{ID: "http-unknown-method", Title: "method GOT: 400 with Server eXpServer",
		From: 14, To: 15, Grader: true, Run: rawGraderRequest("GOT /index.html HTTP/1.1\r\nHost: %s\r\n\r\n", 400)},
	{ID: "http-no-headers", Title: "HTTP/1.1 without any header (so without Host): 400",
		From: 14, To: 15, Grader: true, Run: rawGraderRequest("GET /index.html HTTP/1.1\r\n\r\n", 400)},
	{ID: "http-bad-version", Title: "version HTTX/2.0: 400 with Server eXpServer",
		From: 14, To: 15, Grader: true, Run: rawGraderRequest("GET /index.html HTTX/2.0\r\nHost: %s\r\n\r\n", 400)},
	{ID: "http-header-without-colon", Title: "a header line without a colon: 400 with Server eXpServer",
		From: 14, To: 15, Grader: true, Run: rawGraderRequest("GET /index.html HTTP/1.1\r\nHost %s\r\n\r\n", 400)},

	{ID: "get-sample-txt", Title: "GET /sample.txt answers 200 with the whole file",
		From: 14, To: 23, Run: checkGetSampleTxt},
	{ID: "one-byte-per-write", Title: "a request sent one byte per write is answered normally",
		From: 14, To: 23, Run: checkOneBytePerWrite},
	{ID: "head-too-large", Title: "a 200 KB header block gets 431, and the server keeps serving",
		From: 14, To: 23, Run: checkHeadTooLarge},
	{ID: "hostile-heads", Title: "hostile heads get nginx's answers (smuggling, bad framing, control bytes, 414, 505)",
		From: 14, To: 23, Run: checkHostileHeads},
	{ID: "method-not-allowed", Title: "POST to a file: 405 with Allow: GET, HEAD",
		From: 14, To: 23, Run: checkMethodNotAllowed},
	{ID: "traversal", Title: "/../, %2e%2e/, %2f and a symlink out of the root: 403 or 404, never the outside file",
		From: 14, To: 23, Run: checkTraversal},
	{ID: "head-method", Title: "HEAD gets the head of GET and no body",
		From: 14, To: 23, Run: checkHeadMethod},
	{ID: "query-string", Title: "a query string is ignored when finding the file",
		From: 14, To: 23, Run: checkQueryString},
	{ID: "encoded-space", Title: "a file name with spaces, requested percent-encoded, is served",
		From: 14, To: 23, Run: checkEncodedSpace},
	{ID: "concurrent-200", Title: "200 concurrent clients each get cat.jpg intact (sha256)",
		From: 14, To: 23, Run: checkConcurrent200},
	{ID: "client-leaves-mid-body", Title: "a client leaving in the middle of a 50 MiB body ends alone; no fd is left",
		From: 14, To: 23, Run: checkClientLeavesMidBody},
	{ID: "file-shrinks-mid-body", Title: "a 50 MiB file cut short while it is being sent: the client gets a close, nothing hangs",
		From: 14, To: 23, Run: checkFileShrinksMidBody},
	{ID: "standard-headers", Title: "responses carry Date (IMF-fixdate, now), Server and Access-Control-Allow-Origin",
		From: 15, To: 23, Run: checkStandardHeaders},
	{ID: "browser-text-and-image", Title: "a real browser renders /sample.txt as text and decodes /cat.jpg",
		From: 15, To: 23, Browser: true, Run: checkBrowserTextAndImage},
}

// requestFor builds the grader's request for a file: the same header lines
// the course's tester sends, with CRLF line endings.
func requestFor(e *Env, line, accept string) string {
	return line + " HTTP/1.1\r\nHost: " + e.Addr(0) + "\r\nUser-Agent: TestClient/1.0\r\nAccept: " + accept +
		"\r\nConnection: close\r\n\r\n"
}

// firstChunkResponse sends request and parses the first chunk that comes
// back as an HTTP response, as the grader does: the status line and every
// header must be in that first chunk.
func firstChunkResponse(e *Env, request string) (*harness.Response, error) {
	c, err := harness.Dial(e.Addr(0))
	if err != nil {
		return nil, fail("a connection", "%v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(request)); err != nil {
		return nil, fail("the request to be sent", "%v", err)
	}
	chunk, err := harness.ReadChunk(c, replyTimeout)
	if err != nil {
		return nil, fail("a response", "%s", describeReadErr(err))
	}
	r, err := harness.ParseResponse(chunk)
	if err != nil {
		return nil, fail("a whole response head in the first chunk", "%v", err)
	}
	return r, nil
}

// expectStatus checks the status and that Server is eXpServer, plus the
// Content-Type when contentType is not empty.
func expectStatus(r *harness.Response, status int, contentType string) error {
	if r.Status != status {
		return fail(fmt.Sprintf("status %d", status), "%d %s", r.Status, r.Reason)
	}
	if got := r.Get("Server"); got != "eXpServer" {
		return fail("Server: eXpServer", "Server: %q", got)
	}
	if contentType != "" && r.Get("Content-Type") != contentType {
		return fail("Content-Type: "+contentType, "Content-Type: %q", r.Get("Content-Type"))
	}
	return nil
}

func graderRequest(line, accept string, status int, contentType string) func(*Env) error {
	return func(e *Env) error {
		r, err := firstChunkResponse(e, requestFor(e, line, accept))
		if err != nil {
			return err
		}
		return expectStatus(r, status, contentType)
	}
}

func rawGraderRequest(format string, status int) func(*Env) error {
	return func(e *Env) error {
		req := format
		if strings.Contains(format, "%s") {
			req = fmt.Sprintf(format, e.Addr(0))
		}
		r, err := firstChunkResponse(e, req)
		if err != nil {
			return err
		}
		return expectStatus(r, status, "")
	}
}

// get sends a GET for target on the first port and reads the whole response.
func get(e *Env, target string) (*harness.Response, error) {
	r, err := harness.Get(e.Addr(0), target, bulkTimeout)
	if err != nil {
		return nil, fail("a response to GET "+target, "%v", err)
	}
	return r, nil
}

// getTyped fetches target on the first port as the official grader does
// (see fetch) and requires a 200 with exactly the given Content-Type.
func getTyped(e *Env, target, contentType string) (*harness.Response, error) {
	r, err := fetch(e, target)
	if err != nil {
		return nil, err
	}
	if r.Status != 200 || r.Get("Content-Type") != contentType {
		return nil, fail(fmt.Sprintf("200 %s for %s", contentType, target), "%d %q", r.Status, r.Get("Content-Type"))
	}
	return r, nil
}

func checkGetSampleTxt(e *Env) error {
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	r, err := get(e, "/sample.txt")
	if err != nil {
		return err
	}
	if err := expectStatus(r, 200, "text/plain"); err != nil {
		return err
	}
	if !bytes.Equal(r.Body, want) {
		return fail(fmt.Sprintf("the %d bytes of sample.txt", len(want)), "%s", harness.Abbrev(r.Body, 60))
	}
	if cl := r.Get("Content-Length"); cl != fmt.Sprint(len(want)) {
		return fail(fmt.Sprintf("Content-Length: %d", len(want)), "Content-Length: %q", cl)
	}
	return nil
}

func checkOneBytePerWrite(e *Env) error {
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	c, err := harness.Dial(e.Addr(0))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetNoDelay(true) // one segment per byte
	req := requestFor(e, "GET /sample.txt", "text/plain")
	for i := range len(req) {
		if _, err := c.Write([]byte{req[i]}); err != nil {
			return fail("the request to be sent byte by byte", "write %d: %v", i, err)
		}
	}
	raw, err := harness.ReadToClose(c, replyTimeout)
	if err != nil {
		return fail("a response, then a close", "%v", describeReadErr(err))
	}
	r, err := harness.ParseResponse(raw)
	if err != nil {
		return fail("a response", "%v", err)
	}
	if r.Status != 200 || !bytes.Equal(r.Body, want) {
		return fail("200 with sample.txt", "%d, %d body bytes", r.Status, len(r.Body))
	}
	return nil
}

func checkHeadTooLarge(e *Env) error {
	c, err := harness.Dial(e.Addr(0))
	if err != nil {
		return err
	}
	defer c.Close()
	head := "GET /sample.txt HTTP/1.1\r\nHost: " + e.Addr(0) + "\r\n"
	for len(head) < 200_000 {
		head += fmt.Sprintf("X-Filler-%d: %s\r\n", len(head), strings.Repeat("f", 90))
	}
	head += "\r\n"
	// Send from another goroutine: a server may answer and close before it
	// has read everything, and then this write fails, which is fine.
	go c.Write([]byte(head))
	raw, err := harness.ReadToClose(c, bulkTimeout)
	if len(raw) == 0 {
		return fail("431 Request Header Fields Too Large", "no response (%v)", describeReadErr(err))
	}
	r, perr := harness.ParseResponse(raw)
	if perr != nil {
		return fail("431 Request Header Fields Too Large", "%v", perr)
	}
	if err := expectStatus(r, 431, ""); err != nil {
		return err
	}
	return checkGetSampleTxt(e)
}

// hostileHeads are requests a server must refuse, with the status nginx
// gives each: the smuggling vectors (ambiguous message framing), control
// bytes, and malformed or oversized request lines.
var hostileHeads = []struct {
	name, head string
	status     int
}{
	{"Content-Length with Transfer-Encoding", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	{"two different Content-Lengths", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
	{"Content-Length +5", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400},
	{"Content-Length 0x10", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400},
	{"Content-Length overflow", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
	{"Transfer-Encoding gzip", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	{"NUL in a header value", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", 400},
	{"bare CR in a header value", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400},
	{"control byte in a header name", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nX\x01A: b\r\n\r\n", 400},
	{"space before the colon", "GET /sample.txt HTTP/1.1\r\nHost : h\r\n\r\n", 400},
	{"obs-fold continuation line", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400},
	{"two Host headers", "GET /sample.txt HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", 400},
	{"lower-case method", "get /sample.txt HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	{"HTTP/9.9", "GET /sample.txt HTTP/9.9\r\nHost: h\r\n\r\n", 505},
	{"request-target over 8 KiB", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},
}

func checkHostileHeads(e *Env) error {
	var errs []error
	for _, h := range hostileHeads {
		r, err := firstChunkResponse(e, h.head)
		if err == nil {
			err = expectStatus(r, h.status, "")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.name, err))
		}
	}
	return errors.Join(errs...)
}

func checkMethodNotAllowed(e *Env) error {
	r, err := firstChunkResponse(e, "POST /sample.txt HTTP/1.1\r\nHost: "+e.Addr(0)+"\r\nContent-Length: 5\r\n\r\nhello")
	if err != nil {
		return err
	}
	if err := expectStatus(r, 405, ""); err != nil {
		return err
	}
	if allow := r.Get("Allow"); allow != "GET, HEAD" {
		return fail("Allow: GET, HEAD", "Allow: %q", allow)
	}
	return nil
}

func checkTraversal(e *Env) error {
	secret := []byte("outside the public folder\n")
	if err := os.MkdirAll(e.Layout.Temp, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.Layout.Temp, "secret.txt"), secret, 0o644); err != nil {
		return err
	}
	link := filepath.Join(e.Layout.Public, "escape.txt")
	if err := os.Symlink(filepath.Join(e.Layout.Temp, "secret.txt"), link); err != nil {
		return err
	}
	defer os.Remove(link)
	var errs []error
	for _, target := range []string{
		"/../temp/secret.txt",
		"/%2e%2e/temp/secret.txt",
		"/%2E%2E/%2e%2e/temp/secret.txt",
		"/..%2ftemp%2fsecret.txt",
		"/test/../../temp/secret.txt",
		"/escape.txt",
	} {
		r, raw, err := harness.RoundTrip(e.Addr(0), "GET "+target+" HTTP/1.1\r\nHost: "+e.Addr(0)+"\r\n\r\n", replyTimeout)
		switch {
		case err != nil:
			errs = append(errs, fail("403 or 404 for "+target, "%v", err))
		case bytes.Contains(raw, secret):
			errs = append(errs, fail("never the outside file for "+target, "its content, with status %d", r.Status))
		case r.Status != 403 && r.Status != 404:
			errs = append(errs, fail("403 or 404 for "+target, "%d", r.Status))
		}
	}
	return errors.Join(errs...)
}

func checkHeadMethod(e *Env) error {
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	r, _, err := harness.RoundTrip(e.Addr(0), "HEAD /sample.txt HTTP/1.1\r\nHost: "+e.Addr(0)+"\r\n\r\n", replyTimeout)
	if err != nil {
		return fail("a response to HEAD", "%v", err)
	}
	if err := expectStatus(r, 200, "text/plain"); err != nil {
		return err
	}
	if cl := r.Get("Content-Length"); cl != fmt.Sprint(len(want)) {
		return fail(fmt.Sprintf("Content-Length: %d (the GET length)", len(want)), "Content-Length: %q", cl)
	}
	if len(r.Body) != 0 {
		return fail("no body", "%d bytes after the head", len(r.Body))
	}
	return nil
}

func checkQueryString(e *Env) error {
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	r, err := get(e, "/sample.txt?download=1&lang=en")
	if err != nil {
		return err
	}
	if r.Status != 200 || !bytes.Equal(r.Body, want) {
		return fail("200 with sample.txt", "%d, %d body bytes", r.Status, len(r.Body))
	}
	return nil
}

func checkEncodedSpace(e *Env) error {
	content := []byte("a file whose name has spaces\n")
	path := filepath.Join(e.Layout.Public, "notes and ideas.txt")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		return err
	}
	defer os.Remove(path)
	r, err := get(e, "/notes%20and%20ideas.txt")
	if err != nil {
		return err
	}
	if r.Status != 200 || !bytes.Equal(r.Body, content) {
		return fail("200 with the file's content", "%d, %s", r.Status, harness.Abbrev(r.Body, 40))
	}
	return nil
}

func checkConcurrent200(e *Env) error {
	want, err := os.ReadFile(filepath.Join(e.Layout.Public, "cat.jpg"))
	if err != nil {
		return err
	}
	return concurrentRequests(e, 0, 200, requestFor(e, "GET /cat.jpg", "image/jpeg"), sha256.Sum256(want), "cat.jpg")
}

// withBigBin serves a 50 MiB public/big.bin of random bytes while fn runs
// with the request for it and its path, then removes it; once fn succeeds,
// the server must still answer an ordinary request.
func withBigBin(e *Env, fn func(request, path string) error) error {
	path := filepath.Join(e.Layout.Public, "big.bin")
	if err := os.WriteFile(path, randomBytes(e.Rand(), 50<<20), 0o644); err != nil {
		return err
	}
	defer os.Remove(path)
	if err := fn("GET /big.bin HTTP/1.1\r\nHost: "+e.Addr(0)+"\r\n\r\n", path); err != nil {
		return err
	}
	return checkGetSampleTxt(e)
}

func checkClientLeavesMidBody(e *Env) error {
	return withBigBin(e, func(request, _ string) error {
		return leaveMidStream(e, 0, request, "big.bin")
	})
}

func checkFileShrinksMidBody(e *Env) error {
	return withBigBin(e, func(request, path string) error {
		return fileShrinksMidStream(e, 0, request, path)
	})
}

func checkStandardHeaders(e *Env) error {
	r, err := get(e, "/sample.txt")
	if err != nil {
		return err
	}
	if err := expectStatus(r, 200, "text/plain"); err != nil {
		return err
	}
	date, err := time.Parse("Mon, 02 Jan 2006 15:04:05 GMT", r.Get("Date"))
	if err != nil {
		return fail("Date in IMF-fixdate (Sun, 06 Nov 1994 08:49:37 GMT)", "Date: %q", r.Get("Date"))
	}
	if d := time.Since(date); d < -time.Minute || d > time.Minute {
		return fail("Date within a minute of now", "Date: %q", r.Get("Date"))
	}
	if got := r.Get("Access-Control-Allow-Origin"); got != "*" {
		return fail("Access-Control-Allow-Origin: *", "%q", got)
	}
	return nil
}

// withBrowser runs fn with a headless Chromium.
func withBrowser(fn func(b *harness.Browser) error) error {
	b, err := harness.StartBrowser()
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(b)
}

func checkBrowserTextAndImage(e *Env) error {
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(e.Layout.Public, "cat.jpg"))
	if err != nil {
		return err
	}
	cfg, err := jpeg.DecodeConfig(f)
	f.Close()
	if err != nil {
		return err
	}
	base := "http://" + e.Addr(0)
	return withBrowser(func(b *harness.Browser) error {
		if err := b.Navigate(base + "/sample.txt"); err != nil {
			return fail("the browser to load /sample.txt", "%v", err)
		}
		var text string
		if err := b.Eval("document.body.innerText", &text); err != nil {
			return err
		}
		if text != string(want) {
			return fail("the page text to be sample.txt", "%s", harness.Abbrev([]byte(text), 60))
		}
		if err := b.Navigate(base + "/cat.jpg"); err != nil {
			return fail("the browser to load /cat.jpg", "%v", err)
		}
		var img struct {
			Complete bool
			W, H     int
		}
		if err := b.Eval("(() => { const i = document.images[0]; return i ? {Complete: i.complete, W: i.naturalWidth, H: i.naturalHeight} : {}; })()", &img); err != nil {
			return err
		}
		if !img.Complete || img.W != cfg.Width || img.H != cfg.Height {
			return fail(fmt.Sprintf("a decoded %dx%d image", cfg.Width, cfg.Height), "complete=%v %dx%d", img.Complete, img.W, img.H)
		}
		return nil
	})
}
