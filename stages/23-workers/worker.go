package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// The workers module runs the server on every CPU the nginx way: N
// independent event loops, each a whole core of its own — its epoll
// instance, registrations, connections, sessions, pipes, files, buffers —
// on a thread of its own, sharing only the listening sockets and a few
// counters. A client belongs to the worker that accepted it for its whole
// life, so nothing about it is ever touched by two threads.
//
// What the workers share, and how:
//   - the config: read-only once loaded;
//   - the listening sockets: bound once (server.sockets), then each worker
//     accepts on a duplicate of each (see newListener); whether clients wait
//     in a socket's queue for want of a descriptor is an atomic flag on it;
//   - the client budget (clientBudget): the descriptor limit belongs to the
//     process, so the clients of every worker count against one budget,
//     kept in atomics;
//   - the metrics: one slot of counters per worker, written by its worker
//     alone, read by any with atomic loads, and the CPU samples, under a
//     lock (see metrics);
//   - each reverse_proxy route's balancer — the round robin's turn, the
//     upstreams' health, the requests in flight — under a lock of its own,
//     so a route keeps one order for the whole process (see balancer);
//   - the stop eventfd, which every worker's loop watches;
//   - the log, whose lines are whole and written a batch at a time under
//     the logger's lock, each naming its worker;
//   - the Date header's cache (see httpDate), swapped atomically;
//   - the buffer chunks' free lists (common/buffer), which are sync.Pools.
//
// Everything else a worker's core owns alone — its timers, its gzip
// compressors, its scratch buffers (see scratch). Mirrors cores / n_cores /
// cores_create / threads_create.

// server is the process: the workers and what they share.
type server struct {
	config  *config
	sockets []*listenSocket // every listening socket, bound once
	workers []*worker       // Mirrors cores / n_cores
	budget  clientBudget
	metrics *metrics // one slot per worker
	faults  faults
	// stopFD is an eventfd every worker's loop watches and nobody reads:
	// written once, on SIGINT or SIGTERM, it stays readable, so it stops
	// every worker, and one started again after that too. stopping is set
	// just before.
	stopFD   int
	stopping atomic.Bool
	// cpus are the CPUs the process may use, in order, when the config pins
	// workers to them (worker_cpu_affinity "auto"); nil otherwise.
	cpus []int
	// restarts counts the workers started again after a panic; the
	// metrics report it as worker_restarts (see serveMetrics).
	restarts atomic.Uint64
}

// worker is one event loop and the thread it runs on. A worker that panics
// is replaced by one with the same index and name, on a new thread.
type worker struct {
	srv   *server
	index int
	name  string        // the thread's name, "xps-w<i>"
	core  *core         // the core it starts with (see newServer)
	done  chan struct{} // closed when the worker has returned for good
}

// init keeps the main goroutine on the process's main thread for good, so
// that no worker locks that thread. A worker names its thread, and the
// main thread's name is the process's, as ps and top show it; and a thread
// a locked goroutine leaves behind is ended, but the main thread cannot
// be, so a worker that panicked there would leave a thread with its name.
func init() { runtime.LockOSThread() }

// newServer binds the config's listening sockets, the metrics listener's
// first, makes the metrics, with a slot for each worker, and creates a core
// for each worker, each core with a duplicate of every socket. It returns a
// listening socket's error as such (*listenError), for the caller to report
// it as a failed bind. Mirrors cores_create.
func newServer(cfg *config) (*server, error) {
	srv := &server{config: cfg, stopFD: -1}
	var err error
	if srv.faults, err = faultsFromEnv(); err != nil {
		return nil, err
	}
	n := cfg.workers
	if cpus := runtime.NumCPU(); n > cpus {
		xlog.Warnf("workers: %d is more than the %d CPUs this process may use; some will wait for one", n, cpus)
	}
	// A worker waiting in epoll_wait holds none of the runtime's
	// processors (Ps), but one running Go code needs one: with fewer Ps
	// than workers, busy workers would take turns on them.
	if procs := runtime.GOMAXPROCS(0); procs < n {
		runtime.GOMAXPROCS(n)
		xlog.Infof("GOMAXPROCS set to %d (was %d), one for each worker", n, procs)
	}
	if cfg.cpuAffinity {
		if srv.cpus, err = allowedCPUs(); err != nil {
			return nil, err
		}
	}
	if err := srv.openMetrics(); err != nil {
		return nil, err
	}
	for _, l := range cfg.listeners {
		ls, err := openListenSocket(l.host, l.port)
		if err != nil {
			srv.close()
			return nil, &listenError{fmt.Errorf("listener %s:%d: %w", l.host, l.port, err)}
		}
		srv.sockets = append(srv.sockets, ls)
		xlog.Infof("Server listening on %s:%d", l.host, l.port)
	}
	if srv.stopFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		srv.close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	srv.metrics = newMetrics(cfg, n)
	// The first CPU sample: the first window runs from here.
	srv.metrics.takeSample(&srv.metrics.last, srv.metrics.clock())
	// Every worker exists before the first core is made: how a core
	// attaches its listeners depends on how many there are.
	for i := range n {
		srv.workers = append(srv.workers, &worker{srv: srv, index: i, name: "xps-w" + strconv.Itoa(i), done: make(chan struct{})})
	}
	for i, w := range srv.workers {
		if w.core, err = newCore(w); err != nil {
			for _, w := range srv.workers[:i] {
				w.core.close()
			}
			srv.close()
			return nil, fmt.Errorf("%s: %w", w.name, err)
		}
	}
	srv.budget.fdsAtStart = openDescriptors()
	srv.workers[0].core.setClientBudget()
	return srv, nil
}

// listenError is the failure of a listening socket at start.
type listenError struct{ error }

func (e *listenError) Unwrap() error { return e.error }

// run starts every worker on its own thread and returns once they have all
// returned, after a stop, or once a stopped server has waited stopGrace
// for those that have not; it logs a WARNING naming them, and returns
// their names. Mirrors threads_create, which creates a thread per core and
// joins them.
func (srv *server) run(stopped <-chan struct{}) (late []string) {
	for _, w := range srv.workers {
		go w.run(w.core)
	}
	<-stopped
	timeout := time.NewTimer(stopGrace)
	defer timeout.Stop()
	expired := false
	for _, w := range srv.workers {
		if !expired {
			select {
			case <-w.done:
				continue
			case <-timeout.C:
				expired = true
			}
		}
		select {
		case <-w.done:
		default:
			late = append(late, w.name)
		}
	}
	if len(late) > 0 {
		xlog.Warnf("%s did not stop within %v; exiting without them", strings.Join(late, ", "), stopGrace)
	}
	return late
}

// stopGrace is how long a stopped server waits for its workers. A worker
// notices the stop between two events, so only one stuck inside a
// callback takes longer.
const stopGrace = 2 * time.Second

// stop stops every worker: the listening sockets stop taking clients —
// shutdown on a socket does it for all its duplicates at once: new connects
// are refused, queued ones reset, and an accept fails — then the eventfd
// every loop watches is written, and each worker closes what it holds and
// returns (see run). It runs on the signal's goroutine.
func (srv *server) stop() {
	srv.stopping.Store(true)
	for _, ls := range srv.sockets {
		if err := unix.Shutdown(ls.fd, unix.SHUT_RD); err != nil {
			xlog.Errorf("shutdown of the listening socket on port %d: %v", ls.port, err)
		}
	}
	if _, err := unix.Write(srv.stopFD, []byte{1, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		xlog.Errorf("eventfd write: %v", err)
	}
}

// close closes the listening sockets and the eventfd, once no worker uses
// them.
func (srv *server) close() {
	for _, ls := range srv.sockets {
		unix.Close(ls.fd)
	}
	srv.sockets = nil
	if srv.stopFD >= 0 {
		unix.Close(srv.stopFD)
		srv.stopFD = -1
	}
}

// run runs the worker's loop on core c, on a thread it keeps for life: it
// locks its goroutine to the thread and never unlocks it, so the thread
// ends with the goroutine. A worker started again after a panic has no
// core yet (c is nil): it makes one first. A panic in the loop is
// recovered here (see crashed); otherwise, once the loop stops, the worker
// closes the core and returns.
func (w *worker) run(c *core) {
	runtime.LockOSThread()
	w.setUpThread()
	if c == nil {
		if c = w.newCoreAgain(); c == nil {
			xlog.ForgetThread()
			close(w.done)
			return
		}
	}
	defer func() {
		if r := recover(); r != nil {
			w.crashed(c, r)
		}
	}()
	c.start()
	c.close()
	xlog.Flush()
	xlog.ForgetThread()
	close(w.done)
}

// setUpThread names the calling thread after the worker, where top -H and
// /proc/PID/task/TID/comm show it, tags its log lines when there are
// several workers, pins it to its CPU when the config asks, and tells the
// metrics which thread's CPU time is the worker's.
func (w *worker) setUpThread() {
	name := append([]byte(w.name), 0)
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0); err != nil {
		xlog.Warnf("%s: naming its thread: %v", w.name, err)
	}
	if len(w.srv.workers) > 1 {
		xlog.NameThread("w" + strconv.Itoa(w.index))
	}
	if cpus := w.srv.cpus; len(cpus) > 0 {
		var set unix.CPUSet
		set.Set(cpus[w.index%len(cpus)])
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			xlog.Warnf("%s: pinning to CPU %d: %v", w.name, cpus[w.index%len(cpus)], err)
		}
	}
	w.srv.metrics.startWorker(w.index)
}

// crashed handles a panic r in the worker's loop. Threads share one address
// space, so a panic can only have corrupted what the loop was doing, which
// belongs to this core alone: the worker logs the panic with its stack,
// closes every descriptor its core holds — its clients see the connection
// end, perhaps mid-response, and count as failed — and a worker with the
// same index, name and metrics slot starts on a new thread, with a new
// core. The listening sockets and the other workers never notice. (A fatal
// runtime error — out of memory, a concurrent map write — is not a panic
// and still ends the process.)
func (w *worker) crashed(c *core, r any) {
	xlog.Errorf("%s panicked: %v; its connections are closed and it starts again", w.name, r)
	for _, line := range strings.Split(strings.TrimSpace(string(debug.Stack())), "\n") {
		xlog.Errorf("    %s", strings.TrimSpace(line))
	}
	c.crashed = true
	w.abandon(c)
	w.srv.metrics.stopWorker(w.index)
	xlog.Flush()
	xlog.ForgetThread()
	if w.srv.stopping.Load() {
		close(w.done)
		return
	}
	w.srv.restarts.Add(1)
	go w.run(nil)
}

// abandon closes every descriptor core c holds, as its close does. If that
// panics too, what the core was doing was left too broken to take apart in
// order: then the descriptors its loop still watches, its folders, its
// spare and its epoll instance are closed as they are, each once, and the
// clients it held leave the client budget. (A file whose descriptor the
// loop does not watch may then stay open: a leak, rather than a close of a
// number another worker may hold by then.)
func (w *worker) abandon(c *core) {
	defer func() {
		if r := recover(); r != nil {
			xlog.Errorf("%s: closing its core failed too (%v); closing its descriptors as they are", w.name, r)
			for fd, reg := range c.loop.regs {
				if reg.gen != 0 && fd != w.srv.stopFD {
					unix.Close(fd)
				}
			}
			for conn := range c.connections {
				if !conn.closed && conn.listener != nil {
					w.srv.budget.release()
					conn.countClose()
				}
			}
			for _, fd := range c.dirFDs {
				unix.Close(fd)
			}
			c.dirFDs = nil
			if c.spareFD >= 0 {
				unix.Close(c.spareFD)
				c.spareFD = -1
			}
			c.loop.close()
		}
	}()
	c.close()
}

// restartDelay is how long a worker waits before it tries again to start,
// when it could not (no descriptor for its epoll instance, say).
const restartDelay = 100 * time.Millisecond

// newCoreAgain makes a new core for a worker started again after a panic,
// trying every restartDelay until it can, or returns nil once the server
// is stopping.
func (w *worker) newCoreAgain() *core {
	for !w.srv.stopping.Load() {
		c, err := newCore(w)
		if err == nil {
			xlog.Warnf("%s started again (%d restarts so far)", w.name, w.srv.restarts.Load())
			return c
		}
		xlog.Errorf("%s: cannot start again: %v; retrying in %v", w.name, err, restartDelay)
		xlog.Flush()
		time.Sleep(restartDelay)
	}
	return nil
}

// allowedCPUs returns the CPUs the process may run on, in order.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("worker_cpu_affinity: %w", os.NewSyscallError("sched_getaffinity", err))
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// clientBudget is how many clients the process may hold at once, and how
// many it holds, over every worker: the descriptor limit belongs to the
// process, not to a worker, so each worker taking its own share of it
// would overcommit it N times. Room is reserved before an accept (take), so
// two workers accepting at once cannot both take the last place.
type clientBudget struct {
	clients atomic.Int64 // clients connected, on every worker
	max     atomic.Int64 // how many the descriptor limit allows (see core.setClientBudget)
	// fdsAtStart is how many descriptors the process had open before the
	// first client; written once, before the workers start.
	fdsAtStart int
}

// take reserves room for one more client, and reports whether there was
// any. The server always takes one client, whatever the budget says.
func (b *clientBudget) take() bool {
	if n := b.clients.Add(1); n > 1 && n > b.max.Load() {
		b.clients.Add(-1)
		return false
	}
	return true
}

// release gives back a client's room.
func (b *clientBudget) release() { b.clients.Add(-1) }

// faults are fault hooks for tests, set in the environment, which make a
// worker fail on purpose; unset, they cost a comparison per request.
//
//	XPS_FAULT_PANIC_PATH=/p   the worker serving a request for /p panics
//	XPS_FAULT_STALL_PATH=/s   the worker serving a request for /s sleeps in its
//	XPS_FAULT_STALL_MS=3000   loop for that long (3000 ms by default), then
//	                          answers 200
//
// The path is the request's path without its query, as received.
type faults struct {
	panicPath, stallPath string
	stall                time.Duration
}

// faultsFromEnv reads the fault hooks from the environment.
func faultsFromEnv() (faults, error) {
	f := faults{panicPath: os.Getenv("XPS_FAULT_PANIC_PATH"), stallPath: os.Getenv("XPS_FAULT_STALL_PATH"), stall: 3 * time.Second}
	if ms, ok := os.LookupEnv("XPS_FAULT_STALL_MS"); ok {
		n, err := strconv.Atoi(ms)
		if err != nil || n < 0 {
			return f, errors.New("XPS_FAULT_STALL_MS: want a number of milliseconds, got " + strconv.Quote(ms))
		}
		f.stall = time.Duration(n) * time.Millisecond
	}
	return f, nil
}

// inject runs the fault hook the session's request asks for, if any, and
// reports whether it answered the request.
func (f *faults) inject(s *session) bool {
	switch {
	case f.panicPath == "" && f.stallPath == "":
		return false
	case s.req.pathname == f.panicPath:
		panic("fault hook: a request for " + f.panicPath)
	case s.req.pathname == f.stallPath:
		xlog.Warnf("fault hook: stalling for %v", f.stall)
		time.Sleep(f.stall) // the whole loop waits: that is the fault
		s.respond(200, []header{{"Content-Type", "text/plain"}}, []byte("stalled "+f.stall.String()+"\n")...)
		return true
	}
	return false
}
