package milestone

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"expserver-go/tests/harness"
)

// lbMilestones are the checks of stage 20: several upstreams per proxy
// route, chosen in turn (smooth weighted round robin), by client address
// or by fewest requests in flight, with failover and passive health. The
// upstreams are tools/upstream processes, each serving whoami.txt with its
// own name (A, B, C; see harness.StartWhoAmI), and test upstreams inside
// the checks for what a real one does not do on demand.
var lbMilestones = []Milestone{
	{ID: "lb-round-robin-order", Title: "3 upstreams, 30 requests in a row: A B C A B C …, 10 each",
		From: 20, To: 23, Run: checkLBRoundRobinOrder},
	{ID: "lb-round-robin-concurrent", Title: "300 requests from 30 clients at once: exactly 100 per upstream, all 200",
		From: 20, To: 23, Run: checkLBRoundRobinConcurrent},
	{ID: "lb-weights", Title: "weights 5, 1, 1: the first 7 requests A A B A C A A, and 50/10/10 of 70",
		From: 20, To: 23, Run: checkLBWeights},
	{ID: "lb-single-upstream", Title: "one upstream (the official config): the proxy checks pass, 502 while it is down, 200 at once when it is back",
		From: 20, To: 23, Run: checkLBSingleUpstream},
	{ID: "lb-upstream-dies-midrun", Title: "200 clients in a loop while B is killed: only requests in flight fail, then A and C serve everything",
		From: 20, To: 23, Run: checkLBUpstreamDiesMidrun},
	{ID: "lb-failover-transparent", Title: "with B down, 12 requests all succeed, 6 from A and 6 from C, and B stays down for its fail_timeout",
		From: 20, To: 23, Run: checkLBFailoverTransparent},
	{ID: "lb-recovery", Title: "B back after fail_timeout 1: not before a second, and serving within 3 requests after 1.5 s",
		From: 20, To: 23, Run: checkLBRecovery},
	{ID: "lb-all-down", Title: "all 3 upstreams down: 502 with Server eXpServer within a second, twice",
		From: 20, To: 23, Run: checkLBAllDown},
	{ID: "lb-dies-after-connect", Title: "an upstream that accepts and closes without answering: 502, never retried elsewhere, a POST sent once",
		From: 20, To: 23, Run: checkLBDiesAfterConnect},
	{ID: "lb-post-failover", Title: "the first upstream refuses: a 1 MiB POST body reaches the next one intact",
		From: 20, To: 23, Run: checkLBPostFailover},
	{ID: "lb-ip-hash-sticky", Title: "ip_hash: each of 8 client addresses always gets the same upstream, and not all the same one",
		From: 20, To: 23, Run: checkLBIPHashSticky},
	{ID: "lb-ip-hash-failover", Title: "ip_hash: a client whose upstream died sticks to one substitute, and returns once it is back",
		From: 20, To: 23, Run: checkLBIPHashFailover},
	{ID: "lb-least-conn", Title: "least_conn: while A holds a request, the next 6 all go to B",
		From: 20, To: 23, Run: checkLBLeastConn},
	{ID: "lb-config-errors", Title: "load_balancing random, no upstreams, a bad address, weight 0, max_fails -1, an unknown field: exit 2 naming the JSON path",
		From: 20, To: 23, Run: checkLBConfigErrors},
	{ID: "lb-no-leak", Title: "after failovers, 502s, clients leaving and a dead upstream, the server holds no more fds and no upstream connection",
		From: 20, To: 23, Run: checkLBNoLeak},
}

// lbSetup is three upstreams A, B and C and a server whose first port
// proxies / to them.
type lbSetup struct {
	ups []*harness.Upstream
	srv *ServerProcess
	dir string
}

// startLB starts upstreams named names and a server proxying to them, in
// that order, through the route shape makes of their addresses. close
// stops them all.
func startLB(e *Env, names []string, shape func(addrs []string) route) (*lbSetup, error) {
	dir, err := workDir(e, "lb", nil)
	if err != nil {
		return nil, err
	}
	ups, err := harness.StartWhoAmI(dir, names...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l := &lbSetup{ups: ups, dir: dir}
	var addrs []string
	for _, u := range ups {
		addrs = append(addrs, u.Addr())
	}
	if l.srv, err = e.startWith(config{Routes: [4][]route{{shape(addrs)}}}); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func (l *lbSetup) close() {
	if l.srv != nil {
		l.srv.Close()
	}
	for _, u := range l.ups {
		u.Stop()
	}
	os.RemoveAll(l.dir)
}

// roundRobin proxies to addrs, as strings, with the default strategy.
func roundRobin(addrs []string) route { return proxyRoute("/", strings2any(addrs)...) }

func strings2any(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// objects proxies to addrs with the strategy given, each upstream an
// object with fail_timeout seconds.
func objects(strategy string, failTimeout float64) func(addrs []string) route {
	return func(addrs []string) route {
		var ups []any
		for _, a := range addrs {
			ups = append(ups, upstream{Address: a, FailTimeout: failTimeout})
		}
		r := proxyRoute("/", ups...)
		r.LoadBalancing = strategy
		return r
	}
}

// answer is the outcome of one request through the proxy.
type answer struct {
	status     int    // 0 when no whole response came
	who        string // the body of a 200: the name of the upstream
	sent, done time.Time
	err        error
}

// whoAmI GETs /whoami.txt from src through addr. A 200 whose body is not a
// whole name is reported in err.
func whoAmI(src, addr string) answer {
	a := answer{sent: time.Now()}
	r, err := getFrom(src, addr, "/whoami.txt")
	a.done = time.Now()
	switch {
	case err != nil:
		a.err = err
	case r.Status == 200 && r.Get("Content-Length") == fmt.Sprint(len(r.Body)) && len(r.Body) > 0:
		a.status, a.who = 200, string(r.Body)
	default:
		a.status = r.Status
		a.err = fail("200 with the name of an upstream", "%d with %s", r.Status, harness.Abbrev(r.Body, 40))
	}
	return a
}

// whoSequence sends n requests one after the other from src and returns
// the names that answered, in order, failing on any answer that is not a
// name.
func whoSequence(src, addr string, n int) ([]string, error) {
	var who []string
	for i := range n {
		a := whoAmI(src, addr)
		if a.err != nil {
			return who, fmt.Errorf("request %d: %w", i+1, a.err)
		}
		who = append(who, a.who)
	}
	return who, nil
}

// tally counts the names.
func tally(who []string) map[string]int {
	m := map[string]int{}
	for _, w := range who {
		m[w]++
	}
	return m
}

func checkLBRoundRobinOrder(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, roundRobin)
	if err != nil {
		return err
	}
	defer l.close()
	who, err := whoSequence("", at(l.srv, 0), 30)
	if err != nil {
		return err
	}
	if got, want := strings.Join(who, ""), strings.Repeat("ABC", 10); got != want {
		return fail("the upstreams in turn from the first: "+want, "%s", got)
	}
	return nil
}

func checkLBRoundRobinConcurrent(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, roundRobin)
	if err != nil {
		return err
	}
	defer l.close()
	const clients, each = 30, 10
	who := make([][]string, clients)
	errs := inParallel(clients, func(i int) (err error) {
		who[i], err = whoSequence("", at(l.srv, 0), each)
		return err
	})
	if err := firstErrors(errs, 3); err != nil {
		return err
	}
	count := tally(slices.Concat(who...))
	if count["A"] != 100 || count["B"] != 100 || count["C"] != 100 {
		return fail("exactly 100 requests to each upstream", "%v", count)
	}
	return nil
}

func checkLBWeights(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, func(addrs []string) route {
		// Both forms of an entry: objects with weights, and a string (weight 1).
		return proxyRoute("/", upstream{Address: addrs[0], Weight: 5}, upstream{Address: addrs[1], Weight: 1}, addrs[2])
	})
	if err != nil {
		return err
	}
	defer l.close()
	who, err := whoSequence("", at(l.srv, 0), 70)
	if err != nil {
		return err
	}
	if got := strings.Join(who[:7], ""); got != "AABACAA" {
		return fail("the first 7 requests A A B A C A A (smooth weighted round robin)", "%s", got)
	}
	if count := tally(who); count["A"] != 50 || count["B"] != 10 || count["C"] != 10 {
		return fail("50, 10 and 10 of 70 requests", "%v", count)
	}
	return nil
}

func checkLBSingleUpstream(e *Env) error {
	if err := errors.Join(checkProxyEqualsUpstream(e), checkProxyForwardsBody(e)); err != nil {
		return err
	}
	e.Upstream.Stop()
	for i := range 2 {
		r, err := getFrom("", e.Addr(1), "/cat.jpg")
		if err == nil {
			err = expectStatus(r, 502, "")
		}
		if err != nil {
			e.Upstream.Start()
			return fmt.Errorf("request %d with the upstream down: %w", i+1, err)
		}
	}
	if err := e.Upstream.Start(); err != nil {
		return err
	}
	// A single upstream is never marked down: the very next request
	// reaches it.
	return checkProxyEqualsUpstream(e)
}

func checkLBUpstreamDiesMidrun(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, roundRobin)
	if err != nil {
		return err
	}
	defer l.close()
	const clients = 200
	const run, killAt, settle, within = 6 * time.Second, 2 * time.Second, 500 * time.Millisecond, 5 * time.Second
	release, err := harness.ReserveFDs(clients)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	var killStart, killEnd time.Time
	killed := make(chan struct{})
	go func() {
		time.Sleep(killAt) // the moment of the kill in the scenario
		killStart = time.Now()
		l.ups[1].Stop() // returns once the process and its sockets are gone
		killEnd = time.Now()
		close(killed)
	}()
	// Each client sends a request every 100 ms at most: about 2,000 a
	// second in all, enough to have many in flight at the kill without
	// starving the other suites on the machine. On a loaded machine the
	// kill can come late; the clients go on for a second past it, so that
	// requests sent after B died are always there to be judged.
	pastKill := func() bool {
		select {
		case <-killed:
			return time.Since(killEnd) > time.Second
		default:
			return false
		}
	}
	results := make([][]answer, clients)
	inParallel(clients, func(i int) error {
		for time.Since(start) < run || !pastKill() {
			a := whoAmI("", at(l.srv, 0))
			results[i] = append(results[i], a)
			time.Sleep(time.Until(a.sent.Add(100 * time.Millisecond))) // the client's pace
		}
		return nil
	})
	<-killed
	var errs []error
	total, byB := 0, 0
	for _, rs := range results {
		for _, a := range rs {
			total++
			inFlight := a.sent.Before(killEnd) && a.done.After(killStart)
			switch {
			case a.done.Sub(a.sent) > within:
				errs = append(errs, fail(fmt.Sprintf("every request answered within %v", within), "one took %v", a.done.Sub(a.sent).Round(time.Millisecond)))
			case a.err != nil && !inFlight:
				errs = append(errs, fmt.Errorf("a request sent %v after the start, not in flight when B died: %w", a.sent.Sub(start).Round(time.Millisecond), a.err))
			case a.err == nil && a.sent.After(killEnd.Add(settle)) && a.who != "A" && a.who != "C":
				errs = append(errs, fail("A or C for every request sent after B died", "%s, sent %v after the start", a.who, a.sent.Sub(start).Round(time.Millisecond)))
			case a.err == nil && a.who != "A" && a.who != "B" && a.who != "C":
				errs = append(errs, fail("A, B or C", "%q", a.who))
			}
			if a.who == "B" {
				byB++
			}
		}
	}
	e.logf("%d requests, %d served by B", total, byB)
	if byB == 0 {
		errs = append(errs, fail("B serving before it was killed", "no request served by B"))
	}
	return firstErrors(errs, 3)
}

func checkLBFailoverTransparent(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, objects("", 30))
	if err != nil {
		return err
	}
	defer l.close()
	l.ups[1].Stop()
	who, err := whoSequence("", at(l.srv, 0), 12)
	if err != nil {
		return err
	}
	if count := tally(who); count["A"] != 6 || count["C"] != 6 {
		return fail("12 answers with B down, 6 from A and 6 from C (A C C A C A C A …)", "%s", strings.Join(who, " "))
	}
	// B's one refused connect marked it down for its fail_timeout of 30 s:
	// back up, it gets nothing yet.
	if err := l.ups[1].Start(); err != nil {
		return err
	}
	more, err := whoSequence("", at(l.srv, 0), 3)
	if err != nil {
		return err
	}
	if slices.Contains(more, "B") {
		return fail("B left alone for its fail_timeout of 30 s once a connect to it was refused",
			"B served again as soon as it was back: %s (the server tries a down upstream on every round)", strings.Join(more, " "))
	}
	return nil
}

// backAfterFailTimeout checks that the upstream named back, whose connect
// failed for a request sent at sent and answered at answered, serves none
// of src's requests answered within failTimeout of sent, and serves again
// within three requests sent after answered+failTimeout+half a second:
// the server cannot have picked it sooner, nor later.
func backAfterFailTimeout(src, addr, back string, sent, answered time.Time, failTimeout time.Duration) error {
	ready := answered.Add(failTimeout + timerLate)
	after := 0
	for {
		a := whoAmI(src, addr)
		switch {
		case a.err != nil:
			return a.err
		case a.who == back && a.done.Before(sent.Add(failTimeout)):
			return fail(fmt.Sprintf("%s left alone for its fail_timeout of %v", back, failTimeout),
				"%s served %v after its connect failed", back, a.done.Sub(sent).Round(time.Millisecond))
		case a.who == back:
			return nil
		case a.sent.After(ready):
			if after++; after == 3 {
				return fail(fmt.Sprintf("%s serving again within 3 requests once its fail_timeout of %v has passed", back, failTimeout),
					"3 requests sent %v after its failure went elsewhere", a.sent.Sub(sent).Round(time.Millisecond))
			}
		}
		time.Sleep(100 * time.Millisecond) // the pace of the polling client, not a synchronisation
	}
}

func checkLBRecovery(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, objects("", 1))
	if err != nil {
		return err
	}
	defer l.close()
	l.ups[1].Stop()
	// In turn from the first: the second request picks B, whose connect is
	// refused, and is served by another.
	if a := whoAmI("", at(l.srv, 0)); a.err != nil || a.who != "A" {
		return fail("A for the first request", "%s %v", a.who, a.err)
	}
	failed := whoAmI("", at(l.srv, 0))
	if failed.err != nil || failed.who == "B" {
		return fail("a failover to A or C for the request that picks B, which is down", "%s %v", failed.who, failed.err)
	}
	if err := l.ups[1].Start(); err != nil {
		return err
	}
	return backAfterFailTimeout("", at(l.srv, 0), "B", failed.sent, failed.done, time.Second)
}

func checkLBAllDown(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, roundRobin)
	if err != nil {
		return err
	}
	defer l.close()
	who, err := whoSequence("", at(l.srv, 0), 3)
	if err != nil {
		return err
	}
	if slices.Sort(who); strings.Join(who, "") != "ABC" {
		return fail("each of the three upstreams serving once in three requests", "%v", who)
	}
	for _, u := range l.ups {
		u.Stop()
	}
	// A server that tries each upstream once answers in milliseconds; a
	// second is room for a loaded machine, and far below any retry timer.
	for i := range 2 {
		start := time.Now()
		r, err := getFrom("", at(l.srv, 0), "/whoami.txt")
		if err == nil {
			err = expectStatus(r, 502, "")
		}
		if err == nil && time.Since(start) > time.Second {
			err = fail("502 within a second", "after %v", time.Since(start).Round(time.Millisecond))
		}
		if err != nil {
			return fmt.Errorf("request %d with every upstream down: %w", i+1, err)
		}
	}
	return nil
}

func checkLBDiesAfterConnect(e *Env) error {
	closer, err := harness.StartScripted(harness.CloseUnanswered)
	if err != nil {
		return err
	}
	defer closer.Close()
	good, err := harness.StartScripted(harness.Answer("A"))
	if err != nil {
		return err
	}
	defer good.Close()
	// max_fails 0: the closer is never marked down, so the turn comes back
	// to it, as the third request needs.
	zero := 0
	s, err := e.startWith(config{Routes: [4][]route{{proxyRoute("/", upstream{Address: closer.Addr(), MaxFails: &zero}, good.Addr())}}})
	if err != nil {
		return err
	}
	defer s.Close()
	host := "localhost"
	for i, step := range []struct {
		method, body string
		status       int
	}{{"GET", "", 502}, {"GET", "", 200}, {"POST", "sent once", 502}} {
		r, _, err := harness.RoundTrip(at(s, 0), request(step.method, "/whoami.txt", host, nil, step.body), replyTimeout)
		if err != nil {
			return fail(fmt.Sprintf("%d for request %d", step.status, i+1), "%v", err)
		}
		if r.Status != step.status {
			return fail(fmt.Sprintf("%d for request %d (%s), the upstreams taken in turn", step.status, i+1, step.method),
				"%d %s", r.Status, harness.Abbrev(r.Body, 40))
		}
	}
	posts := 0
	for _, h := range closer.Heads() {
		if strings.HasPrefix(h, "POST ") {
			posts++
		}
	}
	if closer.Accepted() != 2 || posts != 1 || good.Accepted() != 1 {
		return fail("2 connections to the upstream that closes (the POST once) and 1 to the other: nothing retried once sent",
			"%d connections (%d POSTs) and %d", closer.Accepted(), posts, good.Accepted())
	}
	return nil
}

func checkLBPostFailover(e *Env) error {
	l, err := startLB(e, []string{"dead", "echo"}, roundRobin)
	if err != nil {
		return err
	}
	defer l.close()
	l.ups[0].Stop()
	body := randomBytes(e.Rand(), 1<<20)
	c, err := harness.Dial(at(l.srv, 0))
	if err != nil {
		return err
	}
	defer c.Close()
	go c.Write([]byte(request("POST", "/upload", "localhost", []string{"Content-Type: application/octet-stream"}, string(body))))
	raw, err := harness.ReadToClose(c, bulkTimeout)
	if err != nil {
		return fail("the echo of the body, then a close", "%d bytes, then %v", len(raw), describeReadErr(err))
	}
	r, err := harness.ParseResponse(raw)
	if err != nil || r.Status != 200 || string(r.Body) != string(body) {
		return fail("200 with the 1 MiB body echoed by the second upstream", "%s", harness.Abbrev(raw, 80))
	}
	return nil
}

// hashClients are the client addresses of the ip_hash checks: 127.0.K.1.
func hashClient(k int) string { return fmt.Sprintf("127.0.%d.1", k) }

func checkLBIPHashSticky(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, objects("ip_hash", 0))
	if err != nil {
		return err
	}
	defer l.close()
	seen := map[string]bool{}
	for k := 1; k <= 8; k++ {
		who, err := whoSequence(hashClient(k), at(l.srv, 0), 10)
		if err != nil {
			return fmt.Errorf("from %s: %w", hashClient(k), err)
		}
		if count := tally(who); len(count) != 1 {
			return fail("one upstream for every request from "+hashClient(k), "%s", strings.Join(who, " "))
		}
		seen[who[0]] = true
	}
	if len(seen) < 2 {
		return fail("at least 2 upstreams across 8 client addresses", "only %v", seen)
	}
	return nil
}

func checkLBIPHashFailover(e *Env) error {
	l, err := startLB(e, []string{"A", "B", "C"}, objects("ip_hash", 1))
	if err != nil {
		return err
	}
	defer l.close()
	src := hashClient(1)
	who, err := whoSequence(src, at(l.srv, 0), 3)
	if err != nil {
		return err
	}
	if len(tally(who)) != 1 {
		return fail("one upstream for every request from "+src, "%s", strings.Join(who, " "))
	}
	own := who[0]
	ownUp := l.ups[strings.Index("ABC", own)]
	ownUp.Stop()
	failed := whoAmI(src, at(l.srv, 0))
	if failed.err != nil || failed.who == own {
		return fail(fmt.Sprintf("a substitute for %s, which is down", own), "%s %v", failed.who, failed.err)
	}
	more, err := whoSequence(src, at(l.srv, 0), 4)
	if err != nil {
		return err
	}
	if len(tally(more)) != 1 || more[0] != failed.who {
		return fail(fmt.Sprintf("every request from %s to %s, its substitute while %s is down", src, failed.who, own), "%s then %s", failed.who, strings.Join(more, " "))
	}
	if err := ownUp.Start(); err != nil {
		return err
	}
	if err := backAfterFailTimeout(src, at(l.srv, 0), own, failed.sent, failed.done, time.Second); err != nil {
		return err
	}
	back, err := whoSequence(src, at(l.srv, 0), 3)
	if err != nil {
		return err
	}
	if len(tally(back)) != 1 || back[0] != own {
		return fail(fmt.Sprintf("every request from %s back to %s", src, own), "%s", strings.Join(back, " "))
	}
	return nil
}

func checkLBLeastConn(e *Env) error {
	const hold = 3 * time.Second
	a, err := harness.StartScripted(func(x *harness.Exchange) {
		if x.Wait(hold) {
			harness.Answer("A")(x)
		}
	})
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := harness.StartScripted(harness.Answer("B"))
	if err != nil {
		return err
	}
	defer b.Close()
	r := proxyRoute("/", a.Addr(), b.Addr())
	r.LoadBalancing = "least_conn"
	s, err := e.startWith(config{Routes: [4][]route{{r}}})
	if err != nil {
		return err
	}
	defer s.Close()
	held := make(chan answer, 1)
	go func() { held <- whoAmI("", at(s, 0)) }()
	err = harness.WaitFor(replyTimeout, func() error {
		if a.Accepted()+b.Accepted() == 0 {
			return errors.New("no upstream has the first request yet")
		}
		return nil
	})
	if err != nil || a.Accepted() != 1 {
		return fail("the first request at A (no request in flight anywhere: the first listed)", "%d at A, %d at B", a.Accepted(), b.Accepted())
	}
	// Each request to B takes milliseconds, one to A three seconds: two
	// seconds for all six leaves a loaded machine room and still tells.
	start := time.Now()
	who, err := whoSequence("", at(s, 0), 6)
	if err != nil {
		return err
	}
	if took := time.Since(start); strings.Join(who, "") != "BBBBBB" || took > 2*time.Second {
		return fail("all 6 requests to B, which has none in flight, within 2 s", "%s in %v", strings.Join(who, " "), took.Round(time.Millisecond))
	}
	if first := <-held; first.err != nil || first.who != "A" {
		return fail("A's answer to the held request", "%s %v", first.who, first.err)
	}
	return nil
}

func checkLBConfigErrors(e *Env) error {
	addr := e.upstreamAddr()
	zero := 0
	valid := proxyRoute("/", upstream{Address: addr, Weight: 1000, MaxFails: &zero, FailTimeout: 0.5}, addr)
	valid.LoadBalancing = "least_conn"
	hash := proxyRoute("/", addr, upstream{Address: addr})
	hash.LoadBalancing = "ip_hash"
	robin := proxyRoute("/", upstream{Address: addr, Weight: 2})
	robin.LoadBalancing = "round_robin"
	s, err := e.startWith(config{Routes: [4][]route{{valid}, {hash}, {robin}}})
	if err != nil {
		return fmt.Errorf("with valid load_balancing and upstream objects: %w", err)
	}
	s.Close()
	const at = "servers[0].routes[0]"
	bad := []struct {
		name string
		r    route
		path string
	}{
		{`"load_balancing": "random"`, route{Path: "/", Type: "reverse_proxy", Upstreams: []any{addr}, LoadBalancing: "random"}, at + ".load_balancing"},
		{`"upstreams": []`, route{Path: "/", Type: "reverse_proxy", More: map[string]any{"upstreams": []any{}}}, at + ".upstreams"},
		{`{"address": "x"}`, proxyRoute("/", upstream{Address: "x"}), at + ".upstreams[0]"},
		{`"weight": 0`, proxyRoute("/", map[string]any{"address": addr, "weight": 0}), at + ".upstreams[0].weight"},
		{`"weight": 1001`, proxyRoute("/", upstream{Address: addr, Weight: 1001}), at + ".upstreams[0].weight"},
		{`"max_fails": -1`, proxyRoute("/", map[string]any{"address": addr, "max_fails": -1}), at + ".upstreams[0].max_fails"},
		{`"fail_timeout": 0`, proxyRoute("/", map[string]any{"address": addr, "fail_timeout": 0}), at + ".upstreams[0].fail_timeout"},
		{`an unknown field`, proxyRoute("/", map[string]any{"address": addr, "colour": "red"}), at + ".upstreams[0].colour"},
	}
	var errs []error
	for _, b := range bad {
		if err := e.refusesConfig(config{Routes: [4][]route{{b.r}}}, b.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.name, err))
		}
	}
	return errors.Join(errs...)
}

func checkLBNoLeak(e *Env) error {
	closer, err := harness.StartScripted(harness.CloseUnanswered)
	if err != nil {
		return err
	}
	defer closer.Close()
	hang, err := harness.StartScripted(func(x *harness.Exchange) { x.Hang() })
	if err != nil {
		return err
	}
	defer hang.Close()
	l, err := startLB(e, []string{"A", "B"}, func(addrs []string) route {
		return proxyRoute("/", addrs[0], addrs[1], closer.Addr(), upstream{Address: hang.Addr(), MaxFails: new(int)})
	})
	if err != nil {
		return err
	}
	defer l.close()
	pid := l.srv.PID()
	base, err := stableFDs(e, pid)
	if err != nil {
		return err
	}
	// Twelve rounds over the four upstreams, B killed halfway: answers,
	// failovers, 502s from the one that closes, and clients that leave
	// the one that hangs after a moment.
	var wg sync.WaitGroup
	for i := range 48 {
		if i == 24 {
			l.ups[1].Stop()
		}
		c, err := harness.Dial(at(l.srv, 0))
		if err != nil {
			return err
		}
		c.Write([]byte(request("GET", "/whoami.txt", "localhost", nil, "")))
		wg.Go(func() {
			defer c.Close()
			harness.ReadToClose(c, 200*time.Millisecond)
		})
	}
	wg.Wait()
	if closer.Accepted() == 0 || hang.Accepted() == 0 {
		return fail("requests at every upstream in turn", "%d at the one that closes, %d at the one that hangs", closer.Accepted(), hang.Accepted())
	}
	if err := fdsBackTo(e, pid, base); err != nil {
		return err
	}
	if err := harness.WaitFor(replyTimeout, func() error {
		if n := hang.Open(); n > 0 {
			return fmt.Errorf("%d", n)
		}
		return nil
	}); err != nil {
		return fail("every upstream connection closed once its client left", "%s still open at the upstream that hangs", err)
	}
	return nil
}
