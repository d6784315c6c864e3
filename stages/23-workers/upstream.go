package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"expserver-go/common/netaddr"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// newUpstream opens a non-blocking TCP connection to addr and returns it as
// an ordinary connection, with a source and a sink like a client's. The
// address was resolved before the loop started: looking a name up waits for
// the name server, and here, inside the loop, that wait would stall every
// client. The connect completes in the background: epoll reports the socket
// writable once it is established, or an error if it is refused, and
// onConnect learns which (see settleConnect).
// Mirrors xps_upstream_create.
func newUpstream(c *core, addr *unix.SockaddrInet4, onConnect func(error)) (*connection, error) {
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", os.NewSyscallError("socket", err))
	}
	// EINPROGRESS is the normal answer of a non-blocking connect.
	if err := unix.Connect(sock, addr); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(sock)
		return nil, fmt.Errorf("upstream: connect %s: %w", netaddr.String(addr), err)
	}
	up, err := newConnection(c, sock, netaddr.PeerIP(addr))
	if err != nil {
		unix.Close(sock)
		return nil, fmt.Errorf("upstream: %w", err)
	}
	up.onConnect = onConnect
	// The connect has proxy_connect_timeout to complete; from then on,
	// sends to the upstream are under proxy_send_timeout.
	up.writeTimer.update(c.config.timeouts.proxyConnect)
	up.writeIdle = c.config.timeouts.proxySend
	if xlog.DebugEnabled() {
		xlog.Debugf("connecting to upstream %s", netaddr.String(addr))
	}
	return up, nil
}

// Load balancing. A reverse_proxy route lists one or more upstreams, and
// each request picks one of them. The course keeps a load_balancing name
// and a _round_robin_counter on the route and picks inside
// xps_config_lookup; here the route holds a balancer, and the session asks
// it for an upstream, and again for another when a connect fails, so
// picking, failure accounting and requests in flight live together below.
//
// A balancer belongs to its route and lives as long as the process. Its
// state — the round robin's scores, each upstream's failures, the requests
// in flight — changes only in the balancer's own methods (pick, failed,
// succeeded, release), which take the time as an argument: so the state is
// shared by every worker behind one lock, which each of them takes, and the
// methods can be tested with a clock of their own. One state per route for
// the process keeps a route's order whatever worker a request lands on:
// with one per worker, four workers would each start the round robin at A.

// balanceMethod is how a route picks among its upstreams.
type balanceMethod int

// The zero balanceMethod is none of these, like the zero routeType.
const (
	roundRobin balanceMethod = iota + 1 // smooth weighted round robin, as nginx
	ipHash                              // by the client's address
	leastConn                           // fewest requests in flight per weight
)

// String returns the method as a config spells it.
func (m balanceMethod) String() string {
	switch m {
	case roundRobin:
		return "round_robin"
	case ipHash:
		return "ip_hash"
	case leastConn:
		return "least_conn"
	}
	return "balanceMethod(" + strconv.Itoa(int(m)) + ")"
}

// upstreamServer is one entry of a route's upstreams, with what its
// balancer knows of it.
type upstreamServer struct {
	name        string             // "host:port" as the config writes it, for the log
	addr        unix.SockaddrInet4 // resolved when the config was loaded
	weight      int                // 1–1000
	maxFails    int                // failures that make it down; 0: never down
	failTimeout time.Duration      // how long failures count, and how long it stays down

	// Changed only by the balancer's methods.
	current  int       // its score in the smooth weighted round robin
	fails    int       // failed attempts, the last at lastFail
	lastFail time.Time // monotonic
	reported bool      // logged as down, and not picked since
	active   int       // requests in flight to it: connecting, or awaiting the end of its reply
}

// balancer picks the upstream of each request of a route, and keeps the
// upstreams' health.
type balancer struct {
	method    balanceMethod // Mirrors load_balancing
	upstreams []*upstreamServer
	total     int // the sum of the weights
	// mu guards the upstreams' state, which any worker may change (see
	// pick, failed, succeeded and release); the list itself is fixed.
	mu sync.Mutex
}

// down reports whether u sits out: it failed maxFails times, the last less
// than failTimeout ago. A route's only upstream is never down, as in nginx:
// refusing to try it would only turn a 502 into an earlier 502, and it
// would keep a restarted upstream out of service for nothing.
func (b *balancer) down(u *upstreamServer, now time.Time) bool {
	return len(b.upstreams) > 1 && u.maxFails > 0 && u.fails >= u.maxFails && now.Sub(u.lastFail) < u.failTimeout
}

// pick returns the index of the upstream for the next attempt of a request,
// among those it has not tried (tried[i] false) and that are not down, or
// -1 if there is none; the pick counts as a request in flight until release.
// key is the client's address as a number, for ip_hash.
func (b *balancer) pick(key uint32, tried []bool, now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	ok := func(i int) bool { return !tried[i] && !b.down(b.upstreams[i], now) }
	i := -1
	switch b.method {
	case roundRobin:
		i = b.smooth(ok)
	case ipHash:
		i = b.hashed(key, ok)
	case leastConn:
		i = b.least(ok)
	}
	if i < 0 {
		return -1
	}
	u := b.upstreams[i]
	u.active++
	if u.reported {
		u.reported = false
		xlog.Infof("upstream %s tried again", u.name)
	}
	return i
}

// smooth is nginx's smooth weighted round robin over the upstreams ok
// accepts: each adds its weight to its score, the highest score wins (the
// first listed among equals) and gives back the sum of the weights. With
// weights 5, 1, 1 that gives A A B A C A A: every upstream gets its share,
// spread out rather than in runs, and equal weights take turns from the
// first.
func (b *balancer) smooth(ok func(int) bool) int {
	best, total := -1, 0
	for i, u := range b.upstreams {
		if !ok(i) {
			continue
		}
		u.current += u.weight
		total += u.weight
		if best < 0 || u.current > b.upstreams[best].current {
			best = i
		}
	}
	if best >= 0 {
		b.upstreams[best].current -= total
	}
	return best
}

// hashed picks for ip_hash: the upstream whose share of the weights holds
// key mod their sum, so a client keeps its upstream; if ok refuses that one,
// the next that ok accepts in list order, so the client's substitute is
// always the same one too.
func (b *balancer) hashed(key uint32, ok func(int) bool) int {
	n := len(b.upstreams)
	at := int(key % uint32(b.total))
	start := 0
	for at >= b.upstreams[start].weight {
		at -= b.upstreams[start].weight
		start++
	}
	for j := range n {
		if i := (start + j) % n; ok(i) {
			return i
		}
	}
	return -1
}

// least picks for least_conn: among the upstreams ok accepts, those with
// the fewest requests in flight for their weight, and among those the
// smooth round robin's choice, so that upstreams that are equally busy
// still take turns.
func (b *balancer) least(ok func(int) bool) int {
	var fewest *upstreamServer
	for i, u := range b.upstreams {
		// active/weight < fewest.active/fewest.weight, without division.
		if ok(i) && (fewest == nil || u.active*fewest.weight < fewest.active*u.weight) {
			fewest = u
		}
	}
	if fewest == nil {
		return -1
	}
	return b.smooth(func(i int) bool {
		u := b.upstreams[i]
		return ok(i) && u.active*fewest.weight == fewest.active*u.weight
	})
}

// failed counts a failed attempt at u: a connect that failed, or a
// connection that ended before the first byte of a reply. Failures count
// within failTimeout of one another; the one that reaches maxFails makes u
// down for failTimeout.
func (b *balancer) failed(u *upstreamServer, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if u.maxFails == 0 {
		return // failure accounting is off
	}
	wasDown := b.down(u, now)
	if now.Sub(u.lastFail) >= u.failTimeout {
		u.fails = 0 // earlier failures are too old to count
	}
	u.fails++
	u.lastFail = now
	if !wasDown && b.down(u, now) {
		u.reported = true
		xlog.Infof("upstream %s down for %v", u.name, u.failTimeout)
	}
}

// succeeded records that u replied: its failures are forgiven.
func (b *balancer) succeeded(u *upstreamServer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u.fails = 0
}

// release ends a request in flight to u.
func (b *balancer) release(u *upstreamServer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u.active--
}

// upstreamTry is one request's way through its route's balancer: the
// upstreams it has tried, the one of its attempt under way, and whether
// the last failure was a timeout.
type upstreamTry struct {
	b        *balancer
	key      uint32          // the client's address, for ip_hash
	tried    []bool          // by index in b.upstreams; each is tried once at most
	server   *upstreamServer // the upstream of the latest attempt; nil before the first
	inFlight bool            // that attempt is under way and counts against server
	timedOut bool            // the last failed attempt ran out of time
}

// begin starts the way of a request from clientIP through b.
func (b *balancer) begin(clientIP string) *upstreamTry {
	return &upstreamTry{b: b, key: ipKey(clientIP), tried: make([]bool, len(b.upstreams))}
}

// ipKey is ip_hash's key for a client: its whole IPv4 address as a
// big-endian number, so 127.0.1.1 and 127.0.2.1 differ (nginx hashes only
// the first three octets). An IPv4-mapped IPv6 address counts as the IPv4
// address; the listeners are IPv4, so anything else cannot be a peer, and
// gets 0.
func ipKey(ip string) uint32 {
	a, err := netip.ParseAddr(ip)
	if a = a.Unmap(); err != nil || !a.Is4() {
		return 0
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// next picks the upstream of the request's next attempt, among those it has
// not tried, and marks it tried; nil means none is left that is not down.
func (t *upstreamTry) next(now time.Time) *upstreamServer {
	i := t.b.pick(t.key, t.tried, now)
	if i < 0 {
		return nil
	}
	t.tried[i] = true
	t.server, t.inFlight = t.b.upstreams[i], true
	return t.server
}

// connectFailed ends the attempt under way, whose connect failed; timedOut
// says that it ran out of time, which makes a final answer 504 rather than
// 502.
func (t *upstreamTry) connectFailed(now time.Time, timedOut bool) {
	if t.inFlight {
		t.b.failed(t.server, now)
		t.timedOut = timedOut
		t.release()
	}
}

// ended ends the attempt under way, whose upstream has finished with the
// request: it replied (a success, even if the reply was cut short: the
// client got what came), or it closed without a byte (a failure).
func (t *upstreamTry) ended(replied bool, now time.Time) {
	if !t.inFlight {
		return
	}
	if replied {
		t.b.succeeded(t.server)
	} else {
		t.b.failed(t.server, now)
	}
	t.release()
}

// release ends the attempt under way, if any, without judging its
// upstream: the client left, or the request was refused. It may be called
// any number of times.
func (t *upstreamTry) release() {
	if t.inFlight {
		t.inFlight = false
		t.b.release(t.server)
	}
}

// settleConnect runs when the socket of a connection whose connect is
// under way has its first event, and hands the outcome to onConnect, once:
// nil once the connect is established, or why it failed — SO_ERROR says,
// for a non-blocking connect. It reports whether the connection was closed
// meanwhile, in which case the event needs nothing more.
func (c *connection) settleConnect() bool {
	done := c.onConnect
	if done == nil {
		return false
	}
	c.onConnect = nil
	c.writeTimer.stop() // the connect's deadline: it ended in time
	errno, err := unix.GetsockoptInt(c.sock, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && errno != 0 {
		err = unix.Errno(errno)
	}
	done(err)
	return c.closed
}
