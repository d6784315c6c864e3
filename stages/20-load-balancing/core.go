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
	sessions    map[*session]struct{}
	config      *config

	// work is the pipe pass's work list: the pipes that may have work.
	// spareWork keeps the previous list's storage for reuse.
	work, spareWork []*pipe

	// compressors keeps the gzip compressors of finished responses for
	// the next ones (stage 19).
	compressors compressors

	// dirFDs holds an open descriptor of each folder files are served from,
	// so the kernel can resolve paths inside it (see openBeneath).
	dirFDs map[string]int

	// spareFD is a descriptor held in reserve, for a server that has run
	// out of them to still close the clients it cannot serve (see
	// listener.shed); -1 without one.
	spareFD int
	// The client budget (see setClientBudget): clients counts the clients
	// connected, maxClients is how many the descriptor limit lets the
	// server hold, fdsAtStart the descriptors it had open before the first.
	clients, maxClients, fdsAtStart int
}

// newCore creates the loop and the empty lists for a server configured by
// cfg. Mirrors xps_core_create.
func newCore(cfg *config) (*core, error) {
	c := &core{config: cfg, connections: make(map[*connection]struct{}), sessions: make(map[*session]struct{}), pipes: make(map[*pipe]struct{})}
	lp, err := newLoop(c)
	if err != nil {
		return nil, err
	}
	c.loop = lp
	c.spareFD = openSpare()
	for _, s := range cfg.servers {
		for _, r := range s.routes {
			if r.typ == routeFileServe {
				if _, err := c.dirFD(r.dirPath); err != nil {
					c.close()
					return nil, err
				}
			}
		}
	}
	return c, nil
}

// dirFD returns an open descriptor of the folder root, opening it on first
// use; the core closes it.
func (c *core) dirFD(root string) (int, error) {
	if fd, ok := c.dirFDs[root]; ok {
		return fd, nil
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("folder %s: %w", root, os.NewSyscallError("open", err))
	}
	if c.dirFDs == nil {
		c.dirFDs = make(map[string]int)
	}
	c.dirFDs[root] = fd
	return fd, nil
}

// start creates one listener for each of the config's listeners, then runs
// the loop until it is stopped. A listener that cannot be created — its port
// taken, its address not local — stops the start, naming the address.
// Mirrors xps_core_start.
func (c *core) start() error {
	for _, l := range c.config.listeners {
		if _, err := newListener(c, l.host, l.port); err != nil {
			return fmt.Errorf("listener %s:%d: %w", l.host, l.port, err)
		}
		xlog.Infof("Server listening on %s:%d", l.host, l.port)
	}
	c.fdsAtStart = openDescriptors()
	c.setClientBudget()
	c.loop.run()
	return nil
}

// close destroys every connection and every session (which detaches their
// pipe ends), then every listener, then the pipes, then the loop.
// Mirrors xps_core_destroy.
func (c *core) close() {
	for conn := range c.connections {
		conn.close(false)
	}
	for s := range c.sessions {
		s.close()
	}
	for len(c.listeners) > 0 {
		c.listeners[0].close()
	}
	for p := range c.pipes {
		p.close()
	}
	for _, fd := range c.dirFDs {
		unix.Close(fd)
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
// client can need a second descriptor besides its socket (a file or an
// upstream connection), so the budget is half of what the descriptor limit
// leaves beyond the descriptors open at start and a small reserve. Clients
// beyond it wait in the accept queue for their turn rather than be accepted
// only to fail. It runs at start, and again whenever the server runs out of
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
