package milestone

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"expserver-go/tests/harness"
)

// proxyMilestones are the checks of what the HTTP reverse proxy (16–17)
// sends its upstream, and of clients that leave it.
var proxyMilestones = []Milestone{
	{ID: "proxy-client-abandons", Title: "50 clients leave while the upstream is silent: their sockets and the upstream connections close at once",
		From: 16, To: 23, Run: checkProxyClientAbandons},
	{ID: "proxy-framed-body", Title: "the upstream receives exactly the framed request: no bytes past the body, no pipelined request, framing headers kept",
		From: 16, To: 23, Run: checkProxyFramedBody},
}

// withUpstream replaces the upstream with tools/upstream started with
// flags while fn runs, then brings the usual upstream back.
func withUpstream(e *Env, flags []string, fn func() error) error {
	e.Upstream.Stop()
	u := &harness.Upstream{Port: e.Upstream.Port, Dir: e.Upstream.Dir, Flags: flags}
	if err := u.Start(); err != nil {
		return errors.Join(fmt.Errorf("starting the upstream with %q: %w", flags, err), e.Upstream.Start())
	}
	err := fn()
	u.Stop()
	return errors.Join(err, e.Upstream.Start())
}

// checkProxyClientAbandons sends 50 requests to an upstream that accepts
// them and never answers, then the clients leave, half with a close and
// half with a reset. The server must notice each client leaving while it
// waits for the upstream, and end its session: close the client's socket
// (no socket left in CLOSE-WAIT) and the upstream connection.
func checkProxyClientAbandons(e *Env) error {
	return withUpstream(e, []string{"-silent"}, func() error {
		pid := e.Server.PID()
		base, err := stableFDs(e, pid)
		if err != nil {
			return err
		}
		before, err := harness.ProcessTCPStates(pid)
		if err != nil {
			return err
		}
		const n = 50
		var conns []*net.TCPConn
		defer func() { closeAll(conns) }()
		for i := range n {
			c, err := harness.Dial(e.Addr(1))
			if err != nil {
				return fail(fmt.Sprintf("%d connections", n), "connection %d: %v", i+1, err)
			}
			conns = append(conns, c)
			fmt.Fprintf(c, "GET /never-answered/%d HTTP/1.1\r\nHost: %s\r\n\r\n", i, e.Addr(1))
		}
		// Each request waiting on the upstream holds two sockets: the
		// client's and its upstream connection.
		var held int
		err = harness.WaitFor(replyTimeout, func() error {
			if held, err = countFDs(e, pid); err != nil {
				return harness.Permanent(err)
			}
			if held < base+2*n {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil {
			return fail(fmt.Sprintf("the %d requests forwarded to the upstream (%d more sockets)", n, 2*n), "%d more sockets", held-base)
		}
		for i, c := range conns {
			if i%2 == 0 {
				c.Close()
			} else {
				harness.Reset(c)
			}
		}
		conns = nil
		var states map[string]int
		err = harness.WaitFor(replyTimeout, func() error {
			if held, err = countFDs(e, pid); err != nil {
				return harness.Permanent(err)
			}
			if states, err = harness.ProcessTCPStates(pid); err != nil {
				return harness.Permanent(err)
			}
			if held > base || states["CLOSE-WAIT"] > before["CLOSE-WAIT"] {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil {
			return fail(fmt.Sprintf("every socket of the %d clients and of their upstream connections closed within %v of the clients leaving", n, replyTimeout),
				"the server still holds %d more sockets than before, %d of them in CLOSE-WAIT", held-base, states["CLOSE-WAIT"]-before["CLOSE-WAIT"])
		}
		return nil
	})
}

// framingCase is a request sent to the proxy followed by bytes that are
// not part of it, and the body the request frames.
type framingCase struct {
	name    string
	head    string // up to and including the blank line; HOST is replaced
	body    string // the framed body, as sent (still chunked when chunked)
	after   string // what the client sends after the request
	chunked bool
}

func framingCases(e *Env) []framingCase {
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[e.Rand().IntN(len(alphabet))]
		}
		return string(b)
	}
	body := word(64)
	return []framingCase{
		{name: "bytes past Content-Length",
			head:  "POST /echo/" + word(8) + " HTTP/1.1\r\nHost: HOST\r\nContent-Length: 64\r\n\r\n",
			body:  body,
			after: "NOT-PART-OF-THE-BODY " + word(32)},
		{name: "a pipelined second request",
			head:  "GET /sample.txt?" + word(8) + " HTTP/1.1\r\nHost: HOST\r\n\r\n",
			after: "GET /elsewhere/" + word(8) + " HTTP/1.1\r\nHost: other.example\r\n\r\n"},
		{name: "a chunked body followed by junk",
			head:    "POST /chunked/" + word(8) + " HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n",
			body:    "5\r\n" + body[:5] + "\r\n1a\r\n" + body[5:31] + "\r\n0\r\nX-Checksum: " + word(6) + "\r\n\r\n",
			after:   "JUNK " + word(16) + "\r\n\r\n",
			chunked: true},
		{name: "Connection naming Content-Length and Host",
			head: "POST /echo/" + word(8) + " HTTP/1.1\r\nHost: HOST\r\nConnection: Content-Length, Host\r\nContent-Length: 64\r\n\r\n",
			body: body},
	}
}

// checkProxyFramedBody sends requests followed by bytes that are not part
// of them through the proxy, to an upstream that records the bytes each of
// its connections received: each must be exactly the request's head as the
// proxy forwards it, with the headers that frame the body, then exactly
// that body — never what the client sent after it.
func checkProxyFramedBody(e *Env) error {
	dir, err := os.MkdirTemp(e.Layout.Root, "upstream-record-")
	if err != nil {
		return err
	}
	cases := framingCases(e)
	return withUpstream(e, []string{"-record", dir}, func() error {
		var errs []error
		for _, tc := range cases {
			head := strings.ReplaceAll(tc.head, "HOST", e.Addr(1))
			c, err := harness.Dial(e.Addr(1))
			if err != nil {
				return err
			}
			// The client keeps its side open until the response is over: it
			// has not left, it only sent more than one request.
			c.Write([]byte(head + tc.body + tc.after))
			harness.ReadToClose(c, replyTimeout)
			c.Close()
			got, err := recorded(dir, head)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", tc.name, fail("the request at the upstream", "the upstream received no request")))
				continue
			}
			if err := sameFraming(head, tc, got); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", tc.name, err))
			}
		}
		return errors.Join(errs...)
	})
}

// recorded waits for the record of the upstream connection that carried
// the request with head, among those the upstream wrote to dir, and
// returns it. The cases send different request lines, and the upstream's
// records of other connections (the check that it was up, for one) are
// told apart by theirs.
func recorded(dir, head string) ([]byte, error) {
	requestLine, _, _ := strings.Cut(head, "\r\n")
	var got []byte
	err := harness.WaitFor(replyTimeout, func() error {
		paths, err := filepath.Glob(filepath.Join(dir, "*.raw"))
		if err != nil {
			return harness.Permanent(err)
		}
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && bytes.HasPrefix(b, []byte(requestLine+"\r\n")) {
				got = b
				return nil
			}
		}
		return errors.New("no record yet")
	})
	return got, err
}

// sameFraming checks what the upstream received against the request sent:
// the same request line and Host, a head that frames the body as the
// client's did, then the body and nothing more.
func sameFraming(sentHead string, tc framingCase, got []byte) error {
	end := bytes.Index(got, []byte("\r\n\r\n"))
	if end < 0 {
		return fail("a whole request head at the upstream", "%s", harness.Abbrev(got, 80))
	}
	head, rest := string(got[:end+4]), got[end+4:]
	requestLine, _, _ := strings.Cut(sentHead, "\r\n")
	if !strings.HasPrefix(head, requestLine+"\r\n") {
		return fail("the request line "+strconv.Quote(requestLine), "%s", harness.Abbrev([]byte(head), 80))
	}
	fields := headerFields(head)
	sentHost := headerFields(sentHead)["host"][0]
	if !oneValue(fields["host"], sentHost) {
		return fail("Host: "+sentHost+" forwarded", "%s", harness.Abbrev([]byte(head), 160))
	}
	switch {
	case tc.chunked && !(len(fields["transfer-encoding"]) == 1 && strings.EqualFold(fields["transfer-encoding"][0], "chunked")):
		return fail("Transfer-Encoding: chunked forwarded", "%s", harness.Abbrev([]byte(head), 160))
	case !tc.chunked && tc.body != "" && !oneValue(fields["content-length"], strconv.Itoa(len(tc.body))):
		return fail(fmt.Sprintf("Content-Length: %d forwarded", len(tc.body)), "%s", harness.Abbrev([]byte(head), 160))
	case tc.body == "" && (len(fields["content-length"]) > 0 && !oneValue(fields["content-length"], "0") || len(fields["transfer-encoding"]) > 0):
		return fail("no body announced", "%s", harness.Abbrev([]byte(head), 160))
	}
	if string(rest) != tc.body {
		return fail(fmt.Sprintf("the head, then exactly the %d bytes of the body %s, then nothing", len(tc.body), harness.Abbrev([]byte(tc.body), 24)),
			"the head, then %s", harness.Abbrev(rest, 120))
	}
	return nil
}

// headerFields returns the values of each header of a request head, by
// lower-case name.
func headerFields(head string) map[string][]string {
	_, head, _ = strings.Cut(head, "\r\n") // the request line
	fields := map[string][]string{}
	for _, m := range headerLine.FindAllStringSubmatch(head, -1) {
		k := strings.ToLower(m[1])
		fields[k] = append(fields[k], m[2])
	}
	return fields
}

// oneValue reports whether values is the one value want.
func oneValue(values []string, want string) bool {
	return len(values) == 1 && values[0] == want
}
