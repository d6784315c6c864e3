package milestone

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"

	"expserver-go/tests/harness"
)

// routeMilestones are the checks of the configured stages (16–17), against
// the course's config: port 1 serves ../public with /redirect → 302
// http://localhost:8002/, port 2 proxies to the upstream, port 3 redirects
// everything to https://expserver.github.io, port 4 has no routes.
var routeMilestones = []Milestone{
	{ID: "file-type-jpg", Title: "GET /cat.jpg on the file port: 200, Content-Type image/jpeg",
		From: 16, To: 23, Grader: true, Run: fileType("/cat.jpg", "image/jpeg")},
	{ID: "file-type-pdf", Title: "GET /sample.pdf: 200, Content-Type application/pdf",
		From: 16, To: 23, Grader: true, Run: fileType("/sample.pdf", "application/pdf")},
	{ID: "file-type-txt", Title: "GET /sample.txt: 200, Content-Type text/plain",
		From: 16, To: 23, Grader: true, Run: fileType("/sample.txt", "text/plain")},
	{ID: "redirect", Title: "GET /redirect: 302 with Location exactly http://localhost:8002/",
		From: 16, To: 23, Grader: true, Run: checkRedirect},
	{ID: "proxy-equals-upstream", Title: "GET /cat.jpg through the proxy port equals the upstream's own response, header by header and byte for byte",
		From: 16, To: 23, Grader: true, Run: checkProxyEqualsUpstream},
	{ID: "redirect-everything", Title: "the third port redirects every path to https://expserver.github.io",
		From: 16, To: 23, Run: checkRedirectEverything},
	{ID: "no-routes", Title: "the fourth port, a server without routes, answers 404",
		From: 16, To: 23, Run: checkNoRoutes},
	{ID: "proxy-upstream-down", Title: "with the upstream down, the proxy answers 502 with Server eXpServer",
		From: 16, To: 23, Run: checkProxyUpstreamDown},
	{ID: "proxy-upstream-dies", Title: "an upstream dying mid-response: the client gets what was sent, then a close",
		From: 16, To: 23, Run: upstreamDiesMidResponse(1, "GET /big HTTP/1.1\r\nHost: HOST\r\n\r\n")},
	{ID: "proxy-forwards-body", Title: "a POST body reaches the upstream intact, after a head with Host kept and Connection: close",
		From: 16, To: 23, Run: checkProxyForwardsBody},
	{ID: "proxy-200-concurrent", Title: "200 concurrent requests through the proxy all get the upstream's cat.jpg (sha256)",
		From: 16, To: 23, Run: checkProxy200},
}

func fileType(path, contentType string) func(*Env) error {
	return func(e *Env) error {
		_, err := getTyped(e, path, contentType)
		return err
	}
}

func checkRedirect(e *Env) error {
	r, err := fetch(e, "/redirect")
	if err != nil {
		return err
	}
	if r.Status != 302 || r.Get("Location") != "http://localhost:8002/" {
		return fail("302 with Location http://localhost:8002/", "%d with Location %q", r.Status, r.Get("Location"))
	}
	return nil
}

func checkRedirectEverything(e *Env) error {
	for _, path := range []string{"/", "/some/page?x=1", "//"} {
		r, err := harness.Get(e.Addr(2), path, replyTimeout)
		if err != nil {
			return fail("a response to "+path, "%v", err)
		}
		if r.Status != 302 || r.Get("Location") != "https://expserver.github.io" {
			return fail("302 to https://expserver.github.io for "+path, "%d with Location %q", r.Status, r.Get("Location"))
		}
	}
	return nil
}

func checkNoRoutes(e *Env) error {
	r, err := harness.Get(e.Addr(3), "/sample.txt", replyTimeout)
	if err != nil {
		return fail("a response", "%v", err)
	}
	return expectStatus(r, 404, "")
}

func checkProxyEqualsUpstream(e *Env) error {
	return relayedMatchesDirect(e, 1, func(addr string) string {
		return fetchHeaders(e, "GET /cat.jpg HTTP/1.1\r\nHost: "+addr+"\r\nAccept: */*\r\n") + "\r\n"
	}, bulkTimeout)
}

func checkProxyUpstreamDown(e *Env) error {
	e.Upstream.Stop()
	defer e.Upstream.Start()
	r, err := harness.Get(e.Addr(1), "/cat.jpg", replyTimeout)
	if err != nil {
		return fail("502 Bad Gateway", "%v", err)
	}
	return expectStatus(r, 502, "")
}

// readRequest reads one request — head and Content-Length body — the way an
// upstream does, and returns both.
func readRequest(c net.Conn) (head string, body []byte, err error) {
	r := bufio.NewReader(c)
	var h strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return h.String(), nil, err
		}
		h.WriteString(line)
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	body = make([]byte, length)
	_, err = io.ReadFull(r, body)
	return h.String(), body, err
}

var headerLine = regexp.MustCompile(`(?m)^([^:\r\n]+): ?(.*?)\r?$`)

func checkProxyForwardsBody(e *Env) error {
	body := randomBytes(e.Rand(), 3<<20)
	want := sha256.Sum256(body)
	type seen struct {
		head string
		sum  [32]byte
		err  error
	}
	got := make(chan seen, 1)
	restore, err := fakeUpstream(e, func(c net.Conn) {
		head, b, err := readRequest(c)
		sum := sha256.Sum256(b)
		got <- seen{head, sum, err}
		reply := hex.EncodeToString(sum[:])
		fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(reply), reply)
	})
	if err != nil {
		return err
	}
	defer restore()
	c, err := harness.Dial(e.Addr(1))
	if err != nil {
		return err
	}
	defer c.Close()
	go func() {
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: files.example\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n", len(body))
		c.Write(body)
	}()
	raw, err := harness.ReadToClose(c, bulkTimeout)
	if err != nil {
		return fail("the upstream's reply, then a close", "%d bytes, then %v", len(raw), describeReadErr(err))
	}
	s := <-got
	if s.err != nil {
		return fail("the whole body at the upstream", "%v", s.err)
	}
	if s.sum != want {
		return fail("the body intact at the upstream (sha256)", "different bytes")
	}
	headers := map[string]string{}
	for _, m := range headerLine.FindAllStringSubmatch(s.head, -1) {
		headers[strings.ToLower(m[1])] = m[2]
	}
	if headers["host"] != "files.example" || headers["connection"] != "close" {
		return fail("Host: files.example and Connection: close in the forwarded head", "%q", s.head)
	}
	if r, err := harness.ParseResponse(raw); err != nil || string(r.Body) != hex.EncodeToString(want[:]) {
		return fail("the upstream's reply relayed unchanged", "%s", harness.Abbrev(raw, 120))
	}
	return nil
}

func checkProxy200(e *Env) error {
	_, direct, err := harness.RoundTrip(e.upstreamAddr(), "GET /cat.jpg HTTP/1.0\r\n\r\n", bulkTimeout)
	if err != nil {
		return fmt.Errorf("direct request to the upstream: %w", err)
	}
	want, err := harness.ParseResponse(direct)
	if err != nil {
		return err
	}
	return concurrentRequests(e, 1, 200, "GET /cat.jpg HTTP/1.1\r\nHost: "+e.Addr(1)+"\r\n\r\n", sha256.Sum256(want.Body), "the upstream's cat.jpg")
}
