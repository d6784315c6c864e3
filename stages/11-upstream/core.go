package main

import (
	"fmt"
	"math"
	"os"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// core is one instance of the server: it owns the loop and every listener,
// connection and pipe, so destroying the core releases everything.
// Mirrors xps_core_t.
type core struct {
	loop        *loop
	listeners   []*listener
	connections map[*connection]struct{}
	pipes       map[*pipe]struct{}

	// work is the pipe pass's work list: the pipes that may have work.
	// spareWork keeps the previous list's storage for reuse.
	work, spareWork []*pipe

	// upstreamAddr is where the first port's clients are relayed to,
	// resolved once at start.
	upstreamAddr *unix.SockaddrInet4

	// spareFD is a descriptor held in reserve, for a server that has run
	// out of them to still close the clients it cannot serve (see
	// listener.shed); -1 without one.
	spareFD int
	// The client budget (see setClientBudget): clients counts the clients
	// connected, maxClients is how many the descriptor limit lets the
	// server hold, fdsAtStart the descriptors it had open before the first.
	clients, maxClients, fdsAtStart int
}

// newCore creates the loop and the empty lists. Mirrors xps_core_create.
func newCore() (*core, error) {
	c := &core{connections: make(map[*connection]struct{}), pipes: make(map[*pipe]struct{})}
	lp, err := newLoop(c)
	if err != nil {
		return nil, err
	}
	c.loop = lp
	c.spareFD = openSpare()
	return c, nil
}

// start creates one listener per port and runs the loop until it is stopped.
// A listener's role is its position in ports. Mirrors xps_core_start.
func (c *core) start(host string, ports []int) error {
	for role, port := range ports {
		if _, err := newListener(c, host, port, role); err != nil {
			return fmt.Errorf("listener %s:%d: %w", host, port, err)
		}
		xlog.Infof("Server listening on port %d", port)
	}
	c.fdsAtStart = openDescriptors()
	c.setClientBudget()
	c.loop.run()
	return nil
}

// close destroys every connection (which detaches their pipe ends), then
// every listener, then the pipes, then the loop. Mirrors xps_core_destroy.
func (c *core) close() {
	for conn := range c.connections {
		conn.close(false)
	}
	for len(c.listeners) > 0 {
		c.listeners[0].close()
	}
	for p := range c.pipes {
		p.close()
	}
	c.loop.close()
	if c.spareFD >= 0 {
		unix.Close(c.spareFD)
	}
	xlog.Debugf("destroyed core")
}

// fdReserve is how many descriptors the client budget keeps back for what
// the server opens besides its clients' sockets and their second
// descriptors, and for the runtime's own needs.
const fdReserve = 8

// setClientBudget sets how many clients the listeners may hold at once. Each
// client can need a second descriptor besides its socket (its upstream
// connection), so the budget is half of what the descriptor limit leaves
// beyond the descriptors open at start and a small reserve. Clients beyond
// it wait in the accept queue for their turn rather than be accepted only to
// fail. It runs at start, and again whenever the server runs out of
// descriptors all the same: an operator may lower the limit of a running
// server (prlimit).
func (c *core) setClientBudget() {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		c.maxClients = math.MaxInt
		return
	}
	if budget := max(int(min(lim.Cur, math.MaxInt32))-c.fdsAtStart-fdReserve, 0) / 2; budget != c.maxClients {
		c.maxClients = budget
		xlog.Debugf("client budget: %d (descriptor limit %d, %d open at start)", budget, lim.Cur, c.fdsAtStart)
	}
}

// openDescriptors counts the descriptors the process has open, or returns
// 0 when /proc cannot tell.
func openDescriptors() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0
	}
	return len(names) - 1 // the folder's own descriptor is listed too
}
