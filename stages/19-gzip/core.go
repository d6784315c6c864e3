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
	pipes       liveSet[*pipe]
	sessions    liveSet[*session]
	config      *config

	// freeConnections, freePipes, freeFiles, freeSessions and freeResponses keep what was
	// destroyed, for new objects of the kind to reuse (see freeList).
	freeConnections freeList[connection]
	freePipes       freeList[pipe]
	freeFiles       freeList[file]
	freeSessions    freeList[session]
	freeResponses   freeList[httpResponse]

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
	c := &core{config: cfg, connections: make(map[*connection]struct{})}
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
	for len(c.sessions) > 0 {
		c.sessions[len(c.sessions)-1].close()
	}
	for len(c.listeners) > 0 {
		c.listeners[0].close()
	}
	for len(c.pipes) > 0 {
		c.pipes[len(c.pipes)-1].close()
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

// recycle makes what was destroyed during the loop's last iteration
// reusable. The loop calls it at the top of every iteration, when no
// callback is running.
func (c *core) recycle() {
	c.freeConnections.recycle()
	c.freePipes.recycle()
	c.freeFiles.recycle()
	c.freeSessions.recycle()
	c.freeResponses.recycle()
}

// maxFree is how many destroyed objects of one kind a free list keeps:
// enough for a busy server to serve its clients without allocating (nginx
// keeps 512 connections per worker by default), few enough that a burst of
// thousands of clients long gone does not hold its memory for ever. Beyond
// it, destroyed objects are left to the garbage collector.
const maxFree = 256

// freeList keeps destroyed objects of one kind for reuse. A server that
// allocates an object for every client and leaves the garbage collector to
// take it back spends a good part of its time on memory: nginx keeps its unused connections on a free list and carves each
// request out of a pool that is freed in one go. The core does the same
// with what it creates over and over: destroying an object puts it on the
// free list of its kind, and creating one takes it from there before it
// allocates. Once the server has made as many objects as it serves clients
// at a time, it serves the next ones without allocating. The course's
// create and destroy functions keep their shape; only where the memory
// comes from changes. Two rules make the reuse safe:
//
//   - An object becomes reusable only at the loop's next iteration (see
//     recycle): a callback still running with a pointer to something it has
//     just destroyed never sees it turn into someone else's.
//   - A create assigns the whole struct at once, naming what it keeps (the
//     callbacks bound to the object when it was made, storage to reuse):
//     every field it does not name is zero, so nothing of the previous
//     client — its state, its bytes — reaches the next one.
//
// The core runs on one thread, so two slices serve, without the locks and
// per-thread caches of sync.Pool.
type freeList[T any] struct {
	free  []*T // ready to be taken
	freed []*T // destroyed during the loop's current iteration
}

// get returns a destroyed object to reuse, or nil when there is none and
// the caller must allocate one.
func (l *freeList[T]) get() *T {
	n := len(l.free)
	if n == 0 {
		return nil
	}
	x := l.free[n-1]
	l.free[n-1] = nil
	l.free = l.free[:n-1]
	return x
}

// put keeps x, which its owner has just destroyed, for reuse from the
// loop's next iteration on.
func (l *freeList[T]) put(x *T) {
	if len(l.free)+len(l.freed) < maxFree {
		l.freed = append(l.freed, x)
	}
}

// recycle makes the objects put since the last call reusable.
func (l *freeList[T]) recycle() {
	l.free = append(l.free, l.freed...)
	clear(l.freed)
	l.freed = l.freed[:0]
}

// liveSet holds the objects of one kind in use, so that destroying the core
// can destroy them. Adding and removing cost O(1): each object keeps its
// index in the slice (slot), and the last one fills the gap a removed one
// leaves. The course keeps a vec_void_t, searches it for the object to
// remove (O(n)) and leaves a NULL in its place; a Go map would cost a hash
// per add and remove.
type liveSet[T interface {
	comparable
	slot() *int
}] []T

// add puts x in the set.
func (s *liveSet[T]) add(x T) {
	*x.slot() = len(*s)
	*s = append(*s, x)
}

// remove takes x out of the set and reports whether it was in it, so that
// destroying an object twice cannot put it on a free list twice.
func (s *liveSet[T]) remove(x T) bool {
	i := *x.slot()
	if i < 0 || i >= len(*s) || (*s)[i] != x {
		return false
	}
	last := len(*s) - 1
	(*s)[i] = (*s)[last]
	*(*s)[i].slot() = i
	var none T
	(*s)[last] = none
	*s = (*s)[:last]
	*x.slot() = -1
	return true
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
