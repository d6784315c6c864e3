package milestone

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"expserver-go/tests/harness"
)

// aclMilestones are the checks of stage 18: access lists per route, by the
// client's TCP address. The clients take source addresses in 127.0.0.0/8
// (see harness.DialFrom).
var aclMilestones = []Milestone{
	{ID: "acl-blacklist", Title: "a route blacklisting 127.0.0.2: 403 with Server eXpServer from .2, the whole file from .1",
		From: 18, To: 23, Run: checkACLBlacklist},
	{ID: "acl-whitelist-blocks", Title: "a whitelist of 1.1.1.1 answers 403 to 127.0.0.1",
		From: 18, To: 23, Run: checkACLWhitelistBlocks},
	{ID: "acl-whitelist-allows", Title: "a whitelist of 127.0.0.1 serves .1 and answers 403 to .3",
		From: 18, To: 23, Run: checkACLWhitelistAllows},
	{ID: "acl-both-lists", Title: "whitelist .1 and .2, blacklist .2: only .1 is served",
		From: 18, To: 23, Run: checkACLBothLists},
	{ID: "acl-whitelist-emptied", Title: "a whitelist whose every entry is blacklisted lets nobody in (the course's code lets everyone in)",
		From: 18, To: 23, Run: checkACLWhitelistEmptied},
	{ID: "acl-cidr-edges", Title: "CIDR prefixes match exactly their addresses: /24 edges, /8, /32 and 0.0.0.0/0",
		From: 18, To: 23, Run: checkACLCIDREdges},
	{ID: "acl-host-bits", Title: "127.0.1.7/24 is taken as 127.0.1.0/24, with one WARNING in the log",
		From: 18, To: 23, Run: checkACLHostBits},
	{ID: "acl-mapped-entry", Title: "IPv4-mapped entries (::ffff:127.0.0.2, ::ffff:127.0.1.0/120) match the IPv4 clients they map",
		From: 18, To: 23, Run: checkACLMappedEntry},
	{ID: "acl-zero-is-not-any", Title: "a whitelist of 0.0.0.0 is that one address, not everyone: 127.0.0.1 gets 403",
		From: 18, To: 23, Run: checkACLZeroIsNotAny},
	{ID: "acl-spoofed-headers", Title: "X-Forwarded-For, X-Real-IP, Forwarded and Client-IP change nothing: only the TCP peer counts",
		From: 18, To: 23, Run: checkACLSpoofedHeaders},
	{ID: "acl-route-scoped", Title: "a list on /private guards every spelling of /private/x and nothing else",
		From: 18, To: 23, Run: checkACLRouteScoped},
	{ID: "acl-proxy-untouched", Title: "a denied proxied request gets 403 and no upstream connection; a 10 MiB body is left unread and the connection closed",
		From: 18, To: 23, Run: checkACLProxyUntouched},
	{ID: "acl-redirect-route", Title: "a denied client of a redirect route gets 403 without Location",
		From: 18, To: 23, Run: checkACLRedirectRoute},
	{ID: "acl-before-method", Title: "a denied client gets 403 for POST (not 405), a missing file (not 404) and HEAD (without a body)",
		From: 18, To: 23, Run: checkACLBeforeMethod},
	{ID: "acl-bad-entries", Title: "127.1, 127.0.0.01, 300.1.1.1, 1.2.3.4/33, a host name or a number in a list: exit 2 naming the element",
		From: 18, To: 23, Run: checkACLBadEntries},
	{ID: "acl-concurrent", Title: "100 allowed and 100 denied clients at once: exactly 100 answers 200 and 100 answers 403",
		From: 18, To: 23, Run: checkACLConcurrent},
	{ID: "acl-browser", Title: "a real browser from a blacklisted address is shown the 403 page, not the file",
		From: 18, To: 23, Browser: true, Run: checkACLBrowser},
}

// Client addresses, named after their last octets as the spec does.
const (
	ip1 = "127.0.0.1"
	ip2 = "127.0.0.2"
	ip3 = "127.0.0.3"
)

// ask is a request a check sends and the answer it must get.
type ask struct {
	from   string // the client's source address
	method string // GET when empty
	target string
	status int
	lines  []string // more header lines
	body   []byte   // when not nil, the body the answer must carry
}

// expectAnswers sends each ask to the port of s with the given role and
// checks the status, Server: eXpServer, and the body when the ask gives
// one. It reports every mismatch, not only the first.
func expectAnswers(s *ServerProcess, role int, asks ...ask) error {
	var errs []error
	for _, a := range asks {
		method := a.method
		if method == "" {
			method = "GET"
		}
		what := fmt.Sprintf("%s %s from %s", method, a.target, a.from)
		r, _, err := harness.RoundTripFrom(a.from, at(s, role), request(method, a.target, "localhost", a.lines, ""), replyTimeout)
		if err == nil {
			err = expectStatus(r, a.status, "")
		}
		if err == nil && a.body != nil && !bytes.Equal(r.Body, a.body) {
			err = fail(fmt.Sprintf("the %d bytes of the file", len(a.body)), "%s", harness.Abbrev(r.Body, 60))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	return errors.Join(errs...)
}

// withACLServer starts a server whose ports serve the public folder, each
// under the access lists of one of lists (a whitelist, then a blacklist),
// and runs fn with it.
func withACLServer(e *Env, lists [][2][]string, fn func(s *ServerProcess) error) error {
	var c config
	for i, l := range lists {
		r := fileRoute("/", e.Layout.Public)
		r.Whitelist, r.Blacklist = l[0], l[1]
		c.Routes[i] = []route{r}
	}
	s, err := e.startWith(c)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// aclAnswers runs a server with one route under the lists white and black
// and sends it asks.
func aclAnswers(e *Env, white, black []string, asks ...ask) error {
	return withACLServer(e, [][2][]string{{white, black}}, func(s *ServerProcess) error {
		return expectAnswers(s, 0, asks...)
	})
}

func list(entries ...string) []string { return entries }

func checkACLBlacklist(e *Env) error {
	sample, err := sampleTxt(e)
	if err != nil {
		return err
	}
	return aclAnswers(e, nil, list(ip2),
		ask{from: ip2, target: "/sample.txt", status: 403},
		ask{from: ip1, target: "/sample.txt", status: 200, body: sample})
}

func checkACLWhitelistBlocks(e *Env) error {
	return aclAnswers(e, list("1.1.1.1"), nil, ask{from: ip1, target: "/sample.txt", status: 403})
}

func checkACLWhitelistAllows(e *Env) error {
	return aclAnswers(e, list(ip1), nil,
		ask{from: ip1, target: "/sample.txt", status: 200},
		ask{from: ip3, target: "/sample.txt", status: 403})
}

func checkACLBothLists(e *Env) error {
	return aclAnswers(e, list(ip1, ip2), list(ip2),
		ask{from: ip1, target: "/sample.txt", status: 200},
		ask{from: ip2, target: "/sample.txt", status: 403},
		ask{from: ip3, target: "/sample.txt", status: 403})
}

func checkACLWhitelistEmptied(e *Env) error {
	return aclAnswers(e, list(ip1), list(ip1),
		ask{from: ip1, target: "/sample.txt", status: 403},
		ask{from: ip2, target: "/sample.txt", status: 403})
}

func checkACLCIDREdges(e *Env) error {
	return withACLServer(e, [][2][]string{
		{nil, list("127.0.1.0/24")},
		{list("127.0.0.0/8"), nil},
		{list("127.0.0.2/32"), nil},
		{nil, list("0.0.0.0/0")},
	}, func(s *ServerProcess) error {
		return errors.Join(
			expectAnswers(s, 0,
				ask{from: "127.0.1.0", target: "/sample.txt", status: 403},
				ask{from: "127.0.1.255", target: "/sample.txt", status: 403},
				ask{from: "127.0.0.255", target: "/sample.txt", status: 200},
				ask{from: "127.0.2.0", target: "/sample.txt", status: 200}),
			expectAnswers(s, 1, ask{from: "127.255.255.254", target: "/sample.txt", status: 200}),
			expectAnswers(s, 2,
				ask{from: ip2, target: "/sample.txt", status: 200},
				ask{from: ip3, target: "/sample.txt", status: 403}),
			expectAnswers(s, 3,
				ask{from: ip1, target: "/sample.txt", status: 403},
				ask{from: "127.0.1.9", target: "/sample.txt", status: 403}))
	})
}

func checkACLHostBits(e *Env) error {
	const entry = "127.0.1.7/24"
	return withACLServer(e, [][2][]string{{nil, list(entry)}}, func(s *ServerProcess) error {
		if err := expectAnswers(s, 0,
			ask{from: "127.0.1.200", target: "/sample.txt", status: 403},
			ask{from: ip1, target: "/sample.txt", status: 200}); err != nil {
			return err
		}
		var warnings []string
		for _, line := range strings.Split(s.Log(), "\n") {
			if strings.Contains(line, entry) && strings.Contains(strings.ToUpper(line), "WARN") {
				warnings = append(warnings, line)
			}
		}
		if len(warnings) != 1 {
			return fail("one WARNING in the log naming "+entry+" (its low bits are meaningless)",
				"%d such lines in %s", len(warnings), harness.Abbrev([]byte(s.Log()), 300))
		}
		return nil
	})
}

func checkACLMappedEntry(e *Env) error {
	return withACLServer(e, [][2][]string{
		{nil, list("::ffff:127.0.0.2")},
		{nil, list("::ffff:127.0.1.0/120")},
	}, func(s *ServerProcess) error {
		return errors.Join(
			expectAnswers(s, 0,
				ask{from: ip2, target: "/sample.txt", status: 403},
				ask{from: ip1, target: "/sample.txt", status: 200}),
			expectAnswers(s, 1,
				ask{from: "127.0.1.9", target: "/sample.txt", status: 403},
				ask{from: "127.0.2.9", target: "/sample.txt", status: 200}))
	})
}

func checkACLZeroIsNotAny(e *Env) error {
	return withACLServer(e, [][2][]string{{list("0.0.0.0"), nil}}, func(s *ServerProcess) error {
		// The client connects to 0.0.0.0, which Linux takes for a local
		// address: the server sees 127.0.0.1, not 0.0.0.0.
		addr := "0.0.0.0:" + strconv.Itoa(s.Ports[0])
		r, _, err := harness.RoundTripFrom(ip1, addr, request("GET", "/sample.txt", "localhost", nil, ""), replyTimeout)
		if err != nil {
			return fail("403 for a client of "+addr, "%v", err)
		}
		return expectStatus(r, 403, "")
	})
}

// spoofing are request headers that claim another client address.
var spoofing = []string{"X-Forwarded-For: 127.0.0.1", "X-Real-IP: 127.0.0.1", "Forwarded: for=127.0.0.1", "Client-IP: 127.0.0.1"}

func checkACLSpoofedHeaders(e *Env) error {
	spoofed := func(from string) []ask {
		var asks []ask
		for _, h := range spoofing {
			asks = append(asks, ask{from: from, target: "/sample.txt", status: 403, lines: []string{h}})
		}
		return append(asks, ask{from: from, target: "/sample.txt", status: 403, lines: spoofing})
	}
	return withACLServer(e, [][2][]string{{nil, list(ip2)}, {list(ip1), nil}}, func(s *ServerProcess) error {
		return errors.Join(
			expectAnswers(s, 0, spoofed(ip2)...),
			expectAnswers(s, 1, append(spoofed(ip3), ask{from: ip1, target: "/sample.txt", status: 200})...))
	})
}

func checkACLRouteScoped(e *Env) error {
	const secret = "behind the list\n"
	dir, err := workDir(e, "acl", map[string]string{"sample.txt": "open to all\n", "private/x": secret})
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	private := fileRoute("/private", dir)
	private.Blacklist = list(ip2)
	s, err := e.startWith(config{Routes: [4][]route{{fileRoute("/", dir), private}}})
	if err != nil {
		return err
	}
	defer s.Close()
	asks := []ask{
		{from: ip2, target: "/sample.txt", status: 200, body: []byte("open to all\n")},
		{from: ip1, target: "/private/x", status: 200, body: []byte(secret)},
	}
	for _, t := range []string{"/private/x", "/%70rivate/x", "/a/../private/x", "//private/x", "/private/./x"} {
		asks = append(asks, ask{from: ip2, target: t, status: 403})
	}
	return expectAnswers(s, 0, asks...)
}

func checkACLProxyUntouched(e *Env) error {
	up, err := harness.StartScripted(harness.Answer("proxied"))
	if err != nil {
		return err
	}
	defer up.Close()
	r := proxyRoute("/", up.Addr())
	r.Blacklist = list(ip2)
	s, err := e.startWith(config{Routes: [4][]route{{r}}})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := expectAnswers(s, 0, ask{from: ip2, target: "/x", status: 403}); err != nil {
		return err
	}
	if err := deniedUpload(e, at(s, 0), 10<<20); err != nil {
		return err
	}
	// An allowed request afterwards reaches the upstream: by the time it
	// is answered, the upstream has accepted every connection made before
	// it, so the count says whether a denied one was among them.
	ok, _, err := harness.RoundTripFrom(ip1, at(s, 0), request("GET", "/x", "localhost", nil, ""), replyTimeout)
	if err != nil || ok.Status != 200 || string(ok.Body) != "proxied" {
		return fail("an allowed client's request relayed to the upstream", "%v", describeResponse(ok, err))
	}
	if n := up.Accepted(); n != 1 {
		return fail("one upstream connection, the allowed client's", "%d: the server connected for a denied client", n)
	}
	return nil
}

// deniedUpload POSTs a body of size bytes from 127.0.0.2 to addr, where it
// is denied: the 403 must come within a second, without waiting for the
// body, and the server must then close the connection without reading the
// body (spec §2: "not read beyond what already arrived"). Unread, a body
// larger than the kernel's buffers cannot be written whole, so the client's
// write ends in an error once the server closes; a server that reads the
// body to drop it lets the write complete.
func deniedUpload(e *Env, addr string, size int) error {
	c, err := harness.DialFrom(ip2, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	head := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: identity\r\nContent-Length: %d\r\n\r\n", size)
	start := time.Now()
	if _, err := c.Write([]byte(head)); err != nil {
		return err
	}
	body := randomBytes(e.Rand(), size)
	written := make(chan error, 1)
	go func() {
		_, err := c.Write(body)
		written <- err
	}()
	r, _, err := harness.ReadHead(c, time.Second)
	if err != nil {
		return fail("403 within 1s of a denied POST's head, its body still coming", "%v after %v", err, time.Since(start).Round(time.Millisecond))
	}
	if err := expectStatus(r, 403, ""); err != nil {
		return err
	}
	select {
	case err := <-written:
		if err == nil {
			return fail("the connection closed with the body unread", "the server read all %d bytes of the denied body", size)
		}
		return nil
	case <-time.After(replyTimeout):
		return fail("the connection closed after the 403", "still open %v later, the body's write blocked", replyTimeout)
	}
}

func checkACLRedirectRoute(e *Env) error {
	r := route{Path: "/", Type: "redirect", Status: 302, RedirectURL: "http://localhost:8002/", Blacklist: list(ip2)}
	s, err := e.startWith(config{Routes: [4][]route{{r}}})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := expectAnswers(s, 0, ask{from: ip1, target: "/", status: 302}); err != nil {
		return err
	}
	res, _, err := harness.RoundTripFrom(ip2, at(s, 0), request("GET", "/", "localhost", nil, ""), replyTimeout)
	if err != nil {
		return fail("403 for a denied client", "%v", err)
	}
	if err := expectStatus(res, 403, ""); err != nil {
		return err
	}
	if loc, ok := res.Lookup("Location"); ok {
		return fail("no Location in the 403", "Location: %s", loc)
	}
	return nil
}

func checkACLBeforeMethod(e *Env) error {
	return withACLServer(e, [][2][]string{{nil, list(ip2)}}, func(s *ServerProcess) error {
		if err := expectAnswers(s, 0,
			ask{from: ip1, method: "POST", target: "/sample.txt", status: 405},
			ask{from: ip1, target: "/missing", status: 404},
			ask{from: ip2, method: "POST", target: "/sample.txt", status: 403},
			ask{from: ip2, target: "/missing", status: 403}); err != nil {
			return err
		}
		r, _, err := harness.RoundTripFrom(ip2, at(s, 0), request("HEAD", "/sample.txt", "localhost", nil, ""), replyTimeout)
		if err != nil {
			return fail("403 for HEAD from a denied client", "%v", err)
		}
		if err := expectStatus(r, 403, ""); err != nil {
			return fmt.Errorf("HEAD /sample.txt from %s: %w", ip2, err)
		}
		if len(r.Body) > 0 {
			return fail("no body after the head of a 403 to HEAD", "%s", harness.Abbrev(r.Body, 60))
		}
		return nil
	})
}

func checkACLBadEntries(e *Env) error {
	// A valid entry first, so the message must name the element, not the
	// list.
	good := list("127.0.0.1", "10.0.0.0/8", "192.168.1.7/24", "::ffff:127.0.0.2", "::ffff:127.0.1.0/120", "::1", "2001:db8::/32", "0.0.0.0/0", "0.0.0.0")
	valid := fileRoute("/", e.Layout.Public)
	valid.Whitelist, valid.Blacklist = good, good
	s, err := e.startWith(config{Routes: [4][]route{{valid}}})
	if err != nil {
		return fmt.Errorf("with valid lists %q: %w", good, err)
	}
	s.Close()
	var errs []error
	for i, bad := range []any{"127.1", "127.0.0.01", "0x7f.0.0.1", "300.1.1.1", "1.2.3.4/33", "", "localhost", "all", 5} {
		key := []string{"ip_whitelist", "ip_blacklist"}[i%2]
		r := fileRoute("/", e.Layout.Public)
		r.More = map[string]any{key: []any{"127.0.0.1", bad}}
		if err := e.refusesConfig(config{Routes: [4][]route{{r}}}, "servers[0].routes[0]."+key+"[1]"); err != nil {
			errs = append(errs, fmt.Errorf("%s [\"127.0.0.1\", %#v]: %w", key, bad, err))
		}
	}
	return errors.Join(errs...)
}

func checkACLConcurrent(e *Env) error {
	return withACLServer(e, [][2][]string{{nil, list(ip2)}}, func(s *ServerProcess) error {
		const n = 200
		from := func(i int) string { return []string{ip1, ip2}[i%2] }
		conns, _, done, err := reservedClients(e, s.PID(), n, 0, func(i int) (string, string) { return from(i), at(s, 0) })
		defer done()
		if err != nil {
			return err
		}
		statuses := make([]int, n)
		errs := inParallel(n, func(i int) error {
			conns[i].Write([]byte(request("GET", "/sample.txt", "localhost", nil, "")))
			raw, err := harness.ReadToClose(conns[i], bulkTimeout)
			r, perr := harness.ParseResponse(raw)
			if err != nil || perr != nil {
				return fail("a response", "client %d (%s): %s, %v", i+1, from(i), harness.Abbrev(raw, 60), errors.Join(err, perr))
			}
			statuses[i] = r.Status
			return nil
		})
		if err := firstErrors(errs, 3); err != nil {
			return err
		}
		count := map[string]int{}
		for i, st := range statuses {
			count[fmt.Sprintf("%d from %s", st, from(i))]++
		}
		if count["200 from "+ip1] != n/2 || count["403 from "+ip2] != n/2 {
			return fail(fmt.Sprintf("%d× 200 from %s and %d× 403 from %s", n/2, ip1, n/2, ip2), "%v", count)
		}
		return nil
	})
}

func checkACLBrowser(e *Env) error {
	sample, err := sampleTxt(e)
	if err != nil {
		return err
	}
	// The browser connects from 127.0.0.1, so that is the address denied.
	return withACLServer(e, [][2][]string{{nil, list(ip1)}}, func(s *ServerProcess) error {
		return withBrowser(func(b *harness.Browser) error {
			url := "http://" + at(s, 0) + "/sample.txt"
			if err := b.Navigate(url); err != nil {
				return fail("the browser to load "+url, "%v", err)
			}
			var page struct{ Title, Text string }
			if err := b.Eval(`({Title: document.title, Text: document.body ? document.body.innerText : ""})`, &page); err != nil {
				return err
			}
			if !strings.Contains(page.Title+page.Text, "403") || strings.Contains(page.Text, strings.TrimSpace(string(sample[:40]))) {
				return fail("the 403 page in the browser", "title %q, text %s", page.Title, harness.Abbrev([]byte(page.Text), 80))
			}
			return nil
		})
	})
}
