package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"time"

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

	// timers is the heap of armed timers (see timer.go). now is the core's
	// clock: the monotonic time since started, read once per loop
	// iteration, right after the wait (see updateTime), and again for each
	// client accepted (see listener.accept) — so a clock step cannot fire
	// or delay a timer, and keeping time costs no system call per event.
	// Mirrors timers / curr_time_msec / init_time_msec.
	timers  timerHeap
	now     time.Duration
	started time.Time

	// spareFD is a descriptor held in reserve, for a server that has run
	// out of them to still close the clients it cannot serve (see
	// listener.shed); -1 without one.
	spareFD int
	// The client budget (see setClientBudget): clients counts the clients
	// connected, maxClients is how many the descriptor limit lets the
	// server hold, fdsAtStart the descriptors it had open before the first.
	clients, maxClients, fdsAtStart int

	// metrics are the server's counters and their snapshots; slot is the
	// part of them this core's loop writes (see metrics.go).
	metrics *metrics
	slot    *metricsSlot
}

// newCore creates the loop and the empty lists for a server configured by
// cfg. Mirrors xps_core_create.
func newCore(cfg *config) (*core, error) {
	c := &core{config: cfg, connections: make(map[*connection]struct{}), sessions: make(map[*session]struct{}), pipes: make(map[*pipe]struct{})}
	c.started = time.Now()
	c.metrics = newMetrics(cfg, 1)
	c.slot = c.metrics.slot(0)
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

// updateTime reads the clock. Go's time.Now carries a reading of the
// monotonic clock, which time.Since uses: the wall clock can be set back or
// jump, and deadlines on it would then fire at once or never.
// Mirrors xps_core_update_time.
func (c *core) updateTime() { c.now = time.Since(c.started) }

// start creates one listener for each of the config's listeners, then runs
// the loop until it is stopped. A listener that cannot be created — its port
// taken, its address not local — stops the start, naming the address.
// Mirrors xps_core_start.
func (c *core) start() error {
	// The metrics listener comes first, as in the course, so that a server
	// that fails to start has already said whether metrics would be there.
	if err := c.startMetrics(); err != nil {
		return err
	}
	for _, l := range c.config.listeners {
		if _, err := newListener(c, l.host, l.port); err != nil {
			return fmt.Errorf("listener %s:%d: %w", l.host, l.port, err)
		}
		xlog.Infof("Server listening on %s:%d", l.host, l.port)
	}
	c.fdsAtStart = openDescriptors()
	c.setClientBudget()
	// The loop keeps one thread, so that the metrics can tell its CPU
	// time from the rest of the process's (see metrics.startWorker).
	runtime.LockOSThread()
	c.metrics.startWorker(0)
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

// full reports whether the server holds as many clients as its budget
// allows; it always takes one.
func (c *core) full() bool { return c.clients >= c.maxClients && c.clients > 0 }

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
