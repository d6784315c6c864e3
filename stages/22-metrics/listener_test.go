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

// testListener starts a core with a listener on a free loopback port, and
// returns them with the listener's address.
func testListener(t *testing.T) (*core, *listener, string) {
	t.Helper()
	c, err := newCore(&config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	l, err := newListener(c, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(l.sock)
	if err != nil {
		t.Fatal(err)
	}
	return c, l, "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
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
	if !l.starved || len(c.connections) != 1 || c.loop.retryPending() {
		t.Fatalf("after EMFILE: starved %v, %d connections, retry pending %v; want starved, 1, false",
			l.starved, len(c.connections), c.loop.retryPending())
	}
	for conn := range c.connections {
		conn.close(false)
	}
	if !c.loop.retryPending() {
		t.Fatal("a descriptor was closed, but no retry is pending: the queued clients would wait for a new one")
	}
	c.loop.retryStarved()
	if len(c.connections) != 1 || !l.starved || c.loop.retryPending() {
		t.Fatalf("after the retry: %d connections, starved %v, retry pending %v; want 1 taken, starved again, false",
			len(c.connections), l.starved, c.loop.retryPending())
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
	if l.starved || len(c.connections) != 0 {
		t.Fatalf("starved %v with %d connections; want the queue shed", l.starved, len(c.connections))
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
	c.fdsAtStart = int(min(lim.Cur, math.MaxInt32)) - fdReserve - 4
	c.setClientBudget()
	if c.maxClients != 2 {
		t.Fatalf("budget %d, want 2", c.maxClients)
	}
	l.accept()
	if c.clients != 2 || !l.starved || c.loop.retryPending() {
		t.Fatalf("%d clients, starved %v, retry pending %v; want 2, starved, false", c.clients, l.starved, c.loop.retryPending())
	}
	for conn := range c.connections {
		conn.close(false)
		break
	}
	if c.clients != 1 || !c.loop.retryPending() {
		t.Fatalf("a client left: %d clients, retry pending %v; want 1, true", c.clients, c.loop.retryPending())
	}
	c.loop.retryStarved()
	if c.clients != 2 {
		t.Fatalf("after the retry: %d clients, want the third one taken", c.clients)
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
