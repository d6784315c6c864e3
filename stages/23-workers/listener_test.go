package main

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testServer returns a server of n workers with one listening socket on a
// free loopback port, without starting them, and the socket's address.
func testServer(t *testing.T, n int) (*server, string) {
	t.Helper()
	ls, err := openListenSocket("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server{config: &config{}, sockets: []*listenSocket{ls}, stopFD: -1}
	srv.metrics = newMetrics(srv.config, n)
	t.Cleanup(srv.close)
	for i := range n {
		srv.workers = append(srv.workers, &worker{srv: srv, index: i, name: "xps-w" + strconv.Itoa(i), done: make(chan struct{})})
	}
	sa, err := unix.Getsockname(ls.fd)
	if err != nil {
		t.Fatal(err)
	}
	return srv, "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
}

// testListener starts a core of a one-worker server with a listener on a
// free loopback port, and returns them with the listener's address.
func testListener(t *testing.T) (*core, *listener, string) {
	t.Helper()
	srv, addr := testServer(t, 1)
	c, err := newCore(srv.workers[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c, c.listeners[0], addr
}

// queue connects n clients to addr. The kernel completes their handshakes,
// so they wait in the listener's accept queue until it takes them.
func queue(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	return conns
}

// exhaustDescriptors lowers the process's descriptor limit to the lowest
// free descriptor number, so that the next descriptor anything asks for
// fails with EMFILE; one that is closed makes room for exactly one. The
// limit is restored when the test ends.
func exhaustDescriptors(t *testing.T) {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	low := lim
	low.Cur = uint64(fd)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) })
}

// TestStarvedListenerRetried checks that a listener out of descriptors
// takes the clients still queued as soon as the server closes a
// descriptor, with no new client arriving, and that until then the loop is
// never asked to poll: it would spin.
func TestStarvedListenerRetried(t *testing.T) {
	c, l, addr := testListener(t)
	queue(t, addr, 1)
	l.accept()
	queue(t, addr, 2)
	exhaustDescriptors(t)

	l.accept()
	if !l.shared.starved.Load() || len(c.connections) != 1 || c.loop.retryPending() {
		t.Fatalf("after EMFILE: starved %v, %d connections, retry pending %v; want starved, 1, false",
			l.shared.starved.Load(), len(c.connections), c.loop.retryPending())
	}
	for conn := range c.connections {
		conn.close(false)
	}
	if !c.loop.retryPending() {
		t.Fatal("a descriptor was closed, but no retry is pending: the queued clients would wait for a new one")
	}
	c.loop.retryStarved()
	if len(c.connections) != 1 || !l.shared.starved.Load() || c.loop.retryPending() {
		t.Fatalf("after the retry: %d connections, starved %v, retry pending %v; want 1 taken, starved again, false",
			len(c.connections), l.shared.starved.Load(), c.loop.retryPending())
	}
}

// TestStarvedListenerSheds checks that a server out of descriptors that
// holds no connection — so none will ever be closed — closes the clients
// it cannot serve instead of leaving them waiting.
func TestStarvedListenerSheds(t *testing.T) {
	c, l, addr := testListener(t)
	clients := queue(t, addr, 3)
	exhaustDescriptors(t)

	l.accept()
	if l.shared.starved.Load() || len(c.connections) != 0 {
		t.Fatalf("starved %v with %d connections; want the queue shed", l.shared.starved.Load(), len(c.connections))
	}
	if c.spareFD < 0 {
		t.Fatal("the spare descriptor was not taken back")
	}
	for i, client := range clients {
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		var ne net.Error
		if n, err := client.Read(make([]byte, 1)); n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("client %d: read %d bytes, %v; want the connection closed", i, n, err)
		}
	}
}

// TestListenerBudget checks that a listener takes no more clients than the
// descriptor limit leaves room for, two descriptors each, and takes the
// next one as soon as a client leaves.
func TestListenerBudget(t *testing.T) {
	c, l, addr := testListener(t)
	queue(t, addr, 3)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// As if the server had started with all but fdReserve+4 descriptors
	// open: room for two clients.
	b := &c.srv.budget
	b.fdsAtStart = int(min(lim.Cur, math.MaxInt32)) - fdReserve - 4
	c.setClientBudget()
	if b.max.Load() != 2 {
		t.Fatalf("budget %d, want 2", b.max.Load())
	}
	l.accept()
	if b.clients.Load() != 2 || !l.shared.starved.Load() || c.loop.retryPending() {
		t.Fatalf("%d clients, starved %v, retry pending %v; want 2, starved, false", b.clients.Load(), l.shared.starved.Load(), c.loop.retryPending())
	}
	for conn := range c.connections {
		conn.close(false)
		break
	}
	if b.clients.Load() != 1 || !c.loop.retryPending() {
		t.Fatalf("a client left: %d clients, retry pending %v; want 1, true", b.clients.Load(), c.loop.retryPending())
	}
	c.loop.retryStarved()
	if b.clients.Load() != 2 {
		t.Fatalf("after the retry: %d clients, want the third one taken", b.clients.Load())
	}
}

// TestAcceptRecordsPeerAddress checks that each connection keeps its peer's
// address, as an address, from the accept; and that an IPv4-mapped peer,
// which a dual-stack listener would see, is recorded as its IPv4 address.
func TestAcceptRecordsPeerAddress(t *testing.T) {
	c, l, addr := testListener(t)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	client, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	l.accept()
	for conn := range c.connections {
		if conn.remoteAddr != netip.MustParseAddr("127.0.0.2") || conn.remoteIP != "127.0.0.2" {
			t.Errorf("accepted connection from %s (%v), want 127.0.0.2", conn.remoteIP, conn.remoteAddr)
		}
	}
	if len(c.connections) != 1 {
		t.Fatalf("%d connections, want 1", len(c.connections))
	}

	for remoteIP, want := range map[string]string{"::ffff:192.0.2.1": "192.0.2.1", "2001:db8::1": "2001:db8::1", "": ""} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[1])
		conn, err := newConnection(c, fds[0], remoteIP)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if conn.remoteAddr.IsValid() {
			got = conn.remoteAddr.String()
		}
		if got != want || conn.remoteIP != want {
			t.Errorf("newConnection(%q): address %q, remoteIP %q; want %q", remoteIP, got, conn.remoteIP, want)
		}
		conn.close(false)
	}
}
