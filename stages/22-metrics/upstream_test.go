package main

import (
	"strings"
	"testing"
	"time"
)

// testBalancer returns a balancer with one upstream per weight, named A, B,
// C… in order, each with max_fails 1 and fail_timeout 10 s.
func testBalancer(method balanceMethod, weights ...int) *balancer {
	b := &balancer{method: method}
	for i, w := range weights {
		b.upstreams = append(b.upstreams, &upstreamServer{name: string(rune('A' + i)), weight: w, maxFails: 1, failTimeout: 10 * time.Second})
		b.total += w
	}
	return b
}

// picks runs n requests from the client with address key through b, each
// answered at once, and returns the names of the upstreams that served
// them; fails makes the upstreams it names refuse every connect, so the
// request goes on to the next pick.
func picks(b *balancer, key uint32, n int, now time.Time, fails string) string {
	var sb strings.Builder
	for range n {
		t := &upstreamTry{b: b, key: key, tried: make([]bool, len(b.upstreams))}
		for {
			u := t.next(now)
			if u == nil {
				sb.WriteByte('-')
				break
			}
			if strings.Contains(fails, u.name) {
				t.connectFailed(now, false)
				continue
			}
			t.ended(true, now)
			sb.WriteString(u.name)
			break
		}
	}
	return sb.String()
}

func TestRoundRobinOrder(t *testing.T) {
	now := time.Now()
	if got := picks(testBalancer(roundRobin, 1, 1, 1), 0, 9, now, ""); got != "ABCABCABC" {
		t.Errorf("equal weights: %s, want ABCABCABC", got)
	}
	b := testBalancer(roundRobin, 5, 1, 1)
	got := picks(b, 0, 70, now, "")
	if got[:7] != "AABACAA" {
		t.Errorf("weights 5, 1, 1: %s, want AABACAA first", got[:7])
	}
	if a, bb, c := strings.Count(got, "A"), strings.Count(got, "B"), strings.Count(got, "C"); a != 50 || bb != 10 || c != 10 {
		t.Errorf("weights 5, 1, 1 over 70: %d %d %d, want 50 10 10", a, bb, c)
	}
}

// TestRoundRobinFailover checks the milestone's sequence: B refuses its
// first connect, the request goes to C, and B then sits out its
// fail_timeout while A and C take turns; after it, B is back.
func TestRoundRobinFailover(t *testing.T) {
	b := testBalancer(roundRobin, 1, 1, 1)
	now := time.Now()
	if got := picks(b, 0, 12, now, "B"); got != "ACCACACACACA" {
		t.Errorf("B refusing: %s, want ACCACACACACA", got)
	}
	if got := picks(b, 0, 6, now.Add(9*time.Second), ""); strings.Contains(got, "B") {
		t.Errorf("B picked within its fail_timeout: %s", got)
	}
	if got := picks(b, 0, 3, now.Add(10*time.Second), ""); !strings.Contains(got, "B") {
		t.Errorf("B not picked in 3 requests after its fail_timeout: %s", got)
	}
}

func TestPassiveHealth(t *testing.T) {
	t0 := time.Now()
	b := testBalancer(roundRobin, 1, 1)
	a := b.upstreams[0]
	a.maxFails = 2
	b.failed(a, t0)
	if b.down(a, t0) {
		t.Fatal("down after 1 failure of max_fails 2")
	}
	b.failed(a, t0.Add(time.Second))
	for _, after := range []time.Duration{time.Second, 10*time.Second + time.Second - time.Nanosecond} {
		if !b.down(a, t0.Add(after)) {
			t.Errorf("not down %v after the first of 2 failures within fail_timeout", after)
		}
	}
	if b.down(a, t0.Add(11*time.Second)) {
		t.Error("still down fail_timeout after the last failure")
	}
	// Failures further apart than fail_timeout do not add up.
	a.fails = 0
	b.failed(a, t0)
	b.failed(a, t0.Add(10*time.Second))
	if b.down(a, t0.Add(10*time.Second)) {
		t.Error("down after 2 failures 10 s apart, with fail_timeout 10 s")
	}
	// One success forgives.
	b.failed(a, t0.Add(11*time.Second))
	b.succeeded(a)
	if b.down(a, t0.Add(11*time.Second)) || a.fails != 0 {
		t.Errorf("down after a success (fails %d)", a.fails)
	}
	// max_fails 0: never down.
	c := b.upstreams[1]
	c.maxFails = 0
	for range 5 {
		b.failed(c, t0)
	}
	if b.down(c, t0) {
		t.Error("down with max_fails 0")
	}
	// A single upstream is never down.
	one := testBalancer(roundRobin, 1)
	one.failed(one.upstreams[0], t0)
	if one.down(one.upstreams[0], t0) {
		t.Error("a route's only upstream is down")
	}
	if got := picks(one, 0, 2, t0, "A"); got != "--" {
		t.Errorf("only upstream refusing: %q, want no upstream twice", got)
	}
	if got := picks(one, 0, 1, t0, ""); got != "A" {
		t.Errorf("only upstream back: %q, want A at once", got)
	}
}

func TestAllDown(t *testing.T) {
	b := testBalancer(roundRobin, 1, 1, 1)
	now := time.Now()
	if got := picks(b, 0, 2, now, "ABC"); got != "--" {
		t.Errorf("every upstream refusing: %s, want no upstream twice", got)
	}
	for _, u := range b.upstreams {
		if u.active != 0 || !b.down(u, now) {
			t.Errorf("%s: %d in flight, down %v; want 0 and down", u.name, u.active, b.down(u, now))
		}
	}
	// The second request found every upstream down without trying one.
	if got := b.upstreams[0].fails; got != 1 {
		t.Errorf("A failed %d times, want once: the second request must not try it", got)
	}
}

func TestIPHash(t *testing.T) {
	now := time.Now()
	b := testBalancer(ipHash, 1, 2, 1)
	for key, want := range []string{"A", "B", "B", "C", "A", "B"} {
		if got := picks(b, uint32(key), 3, now, ""); got != strings.Repeat(want, 3) {
			t.Errorf("key %d: %s, want %s three times", key, got, want)
		}
	}
	// C refuses: its clients go to the next in list order, wrapping to A,
	// and stay there while C is down.
	if got := picks(b, 3, 3, now, "C"); got != "AAA" {
		t.Errorf("key 3 with C refusing: %s, want AAA", got)
	}
	if got := picks(b, 3, 2, now.Add(10*time.Second), ""); got != "CC" {
		t.Errorf("key 3 after C's fail_timeout: %s, want CC", got)
	}
	// A down and B refusing: key 0 goes to B's successor, C.
	if got := picks(b, 0, 1, now, "AB"); got != "C" {
		t.Errorf("key 0 with A and B refusing: %s, want C", got)
	}
	// The whole address counts: 127.0.1.1 and 127.0.2.1 differ.
	three := testBalancer(ipHash, 1, 1, 1)
	k1, k2 := ipKey("127.0.1.1"), ipKey("127.0.2.1")
	if picks(three, k1, 1, now, "") == picks(three, k2, 1, now, "") {
		t.Errorf("127.0.1.1 and 127.0.2.1 share an upstream of three")
	}
}

func TestIPKey(t *testing.T) {
	for ip, want := range map[string]uint32{
		"127.0.1.1":        0x7f000101,
		"255.255.255.254":  0xfffffffe,
		"::ffff:127.0.0.2": 0x7f000002,
		"::1":              0,
		"nonsense":         0,
	} {
		if got := ipKey(ip); got != want {
			t.Errorf("ipKey(%q) = %#x, want %#x", ip, got, want)
		}
	}
}

func TestLeastConn(t *testing.T) {
	now := time.Now()
	b := testBalancer(leastConn, 1, 1)
	// Nothing in flight: a tie, broken by the round robin from the first.
	held := &upstreamTry{b: b, tried: make([]bool, 2)}
	if u := held.next(now); u.name != "A" {
		t.Fatalf("first pick %s, want A", u.name)
	}
	// While A holds its request, B has fewer.
	if got := picks(b, 0, 6, now, ""); got != "BBBBBB" {
		t.Errorf("with A busy: %s, want BBBBBB", got)
	}
	held.ended(true, now)
	if got := picks(b, 0, 4, now, ""); got != "ABAB" && got != "BABA" {
		t.Errorf("with nothing in flight: %s, want turns", got)
	}
	// Per weight: A (weight 2) with one in flight is less busy than B
	// (weight 1) with one.
	w := testBalancer(leastConn, 2, 1)
	ta := &upstreamTry{b: w, tried: make([]bool, 2)}
	tb := &upstreamTry{b: w, tried: make([]bool, 2)}
	ta.tried[1], tb.tried[0] = true, true
	ta.next(now)
	tb.next(now)
	if got := picks(w, 0, 1, now, ""); got != "A" {
		t.Errorf("A 1/2 against B 1/1: %s, want A", got)
	}
	ta.release()
	tb.release()
	if w.upstreams[0].active != 0 || w.upstreams[1].active != 0 {
		t.Errorf("in flight after every release: %d %d", w.upstreams[0].active, w.upstreams[1].active)
	}
}

func TestUpstreamTry(t *testing.T) {
	now := time.Now()
	b := testBalancer(roundRobin, 1, 1)
	tr := b.begin("127.0.0.1")
	u := tr.next(now)
	if u.active != 1 {
		t.Fatalf("in flight after a pick: %d", u.active)
	}
	tr.connectFailed(now, true)
	if !tr.timedOut || u.active != 0 || u.fails != 1 {
		t.Errorf("after a timed-out connect: timedOut %v, %d in flight, %d fails", tr.timedOut, u.active, u.fails)
	}
	v := tr.next(now)
	if v == u {
		t.Fatal("an upstream tried twice for one request")
	}
	tr.release()
	tr.release()
	tr.ended(false, now) // after a release: nothing to judge
	if v.active != 0 || v.fails != 0 {
		t.Errorf("after release: %d in flight, %d fails", v.active, v.fails)
	}
	if tr.next(now) != nil {
		t.Error("a third pick among two upstreams")
	}
	// A close without a reply counts as a failure, a reply as a success.
	c := testBalancer(roundRobin, 1, 1)
	tr = c.begin("127.0.0.1")
	u = tr.next(now)
	tr.ended(false, now)
	if u.fails != 1 || u.active != 0 {
		t.Errorf("closed without a reply: %d fails, %d in flight", u.fails, u.active)
	}
	u.lastFail = now.Add(-time.Hour)
	tr = c.begin("127.0.0.1")
	u = tr.next(now)
	tr.ended(true, now)
	if u.fails != 0 {
		t.Errorf("after a reply: %d fails, want 0", u.fails)
	}
}
