package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"expserver-go/tests/harness"
)

// runningServer is a server of the test's own, running.
type runningServer struct {
	*server
	addr    string
	stopped chan struct{}
	ended   chan []string // what run returned: the workers late to stop
}

// startServer starts a server of n workers that serves a folder holding
// hello.txt on a free loopback port, with the fault hooks f. It is stopped
// when the test ends, if the test did not stop it.
func startServer(t *testing.T, n int, f faults) *runningServer {
	t.Helper()
	return startServerWith(t, n, f, "")
}

// startServerWith is startServer with more top-level config keys (JSON
// members, each followed by a comma).
func startServerWith(t *testing.T, n int, f faults, more string) *runningServer {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := harness.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`{%s "workers": %d, "servers": [{"listeners": [{"host": "127.0.0.1", "port": %d}],
		"routes": [{"req_path": "/", "type": "file_serve", "dir_path": %q}]}]}`, more, n, ports[0], root)
	cfg, err := loadConfig(writeFile(t, t.TempDir(), "c.json", doc))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.faults = f
	rs := &runningServer{server: srv, addr: "127.0.0.1:" + strconv.Itoa(ports[0]), stopped: make(chan struct{}), ended: make(chan []string, 1)}
	go func() { rs.ended <- srv.run(rs.stopped) }()
	t.Cleanup(func() {
		rs.stop(t)
		srv.close()
	})
	return rs
}

// stop stops the server, once, and returns the workers late to stop.
func (rs *runningServer) stop(t *testing.T) []string {
	t.Helper()
	select {
	case <-rs.stopped:
		return nil
	default:
	}
	rs.server.stop()
	close(rs.stopped)
	select {
	case late := <-rs.ended:
		return late
	case <-time.After(stopGrace + 2*time.Second):
		t.Fatal("run did not return after the stop")
		return nil
	}
}

// get sends GET path and returns everything the server sent until it closed.
func get(t *testing.T, addr, path string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("GET %s: %v", path, err)
	}
	return b
}

// workerThreads returns the ids of this process's threads named xps-w*.
func workerThreads(t *testing.T) map[string]string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, task := range tasks {
		comm, err := os.ReadFile("/proc/self/task/" + task.Name() + "/comm")
		if name := strings.TrimSpace(string(comm)); err == nil && strings.HasPrefix(name, "xps-w") {
			names[task.Name()] = name
		}
	}
	return names
}

// TestWorkersServeAndStop checks that every worker runs on a thread named
// after it, that together they serve, and that a stop ends them all at
// once: their clients see the end of the stream, the port refuses new
// connections, and no descriptor of theirs is left open.
func TestWorkersServeAndStop(t *testing.T) {
	before, err := harness.FDCount(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	rs := startServer(t, 4, faults{})
	if err := harness.WaitFor(5*time.Second, func() error {
		if names := workerThreads(t); len(names) != 4 {
			return fmt.Errorf("worker threads %v, want xps-w0 to xps-w3", names)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if b := get(t, rs.addr, "/hello.txt"); !bytes.HasPrefix(b, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(b, []byte("\r\n\r\nhello\n")) {
			t.Fatalf("GET %d: %q", i, b)
		}
	}
	idle := make([]net.Conn, 10)
	for i := range idle {
		if idle[i], err = net.Dial("tcp4", rs.addr); err != nil {
			t.Fatal(err)
		}
	}
	if late := rs.stop(t); len(late) != 0 {
		t.Fatalf("workers late to stop: %v", late)
	}
	for i, c := range idle {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, unix.ECONNRESET) {
			t.Errorf("idle client %d after the stop: %d bytes, %v; want the end of the stream", i, n, err)
		}
		c.Close()
	}
	if c, err := net.Dial("tcp4", rs.addr); err == nil {
		c.Close()
		t.Error("a stopped server still accepts connections")
	}
	rs.server.close()
	if err := harness.WaitFor(5*time.Second, func() error {
		if n, err := harness.FDCount(os.Getpid()); err != nil || n > before {
			return fmt.Errorf("%d descriptors open, %d before the server started (%v)", n, before, err)
		}
		if names := workerThreads(t); len(names) != 0 {
			return fmt.Errorf("worker threads left: %v", names)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPanickingWorkerStartsAgain checks that a worker that panics in a
// request closes that client without an answer and is replaced, on a new
// thread with the same name, while the server goes on serving.
func TestPanickingWorkerStartsAgain(t *testing.T) {
	rs := startServer(t, 2, faults{panicPath: "/boom"})
	var threads map[string]string
	if err := harness.WaitFor(5*time.Second, func() error {
		if threads = workerThreads(t); len(threads) != 2 {
			return fmt.Errorf("worker threads %v", threads)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if b := get(t, rs.addr, "/boom"); len(b) != 0 {
		t.Fatalf("the client of a panicking worker got %q; want nothing", b)
	}
	if err := harness.WaitFor(5*time.Second, func() error {
		now := workerThreads(t)
		fresh := 0
		for tid := range now {
			if _, ok := threads[tid]; !ok {
				fresh++
			}
		}
		if len(now) != 2 || fresh != 1 || rs.restarts.Load() != 1 {
			return fmt.Errorf("worker threads %v (before the panic %v), %d restarts; want 2 threads, one of them new, and 1 restart", now, threads, rs.restarts.Load())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if b := get(t, rs.addr, "/hello.txt"); !bytes.HasSuffix(b, []byte("\r\n\r\nhello\n")) {
			t.Fatalf("GET %d after the panic: %q", i, b)
		}
	}
	// A client sees its connection end as the server closes it, a moment
	// before the server gives its room back.
	if err := harness.WaitFor(5*time.Second, func() error {
		if n := rs.budget.clients.Load(); n != 0 {
			return fmt.Errorf("%d clients in the budget with none connected", n)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestStalledWorkerIsLate checks that a stop waits stopGrace for a worker
// stuck in a callback, no longer, and names it; the other workers serve
// while it is stuck.
func TestStalledWorkerIsLate(t *testing.T) {
	rs := startServer(t, 2, faults{stallPath: "/stall", stall: stopGrace + time.Second})
	stalled := make(chan []byte, 1)
	go func() {
		c, err := net.Dial("tcp4", rs.addr)
		if err != nil {
			stalled <- nil
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
		b, _ := io.ReadAll(c)
		stalled <- b
	}()
	// The other worker serves meanwhile.
	time.Sleep(100 * time.Millisecond) // let the stall begin; a GET served by the stalled worker would fail below
	for i := range 5 {
		start := time.Now()
		if b := get(t, rs.addr, "/hello.txt"); !bytes.HasSuffix(b, []byte("hello\n")) || time.Since(start) > time.Second {
			t.Fatalf("GET %d during the stall: %q after %v", i, b, time.Since(start))
		}
	}
	start := time.Now()
	late := rs.stop(t)
	if took := time.Since(start); len(late) != 1 || took < stopGrace || took > stopGrace+time.Second {
		t.Fatalf("the stop returned after %v with late workers %v; want one, after %v", took, late, stopGrace)
	}
	if b := <-stalled; !bytes.HasPrefix(b, []byte("HTTP/1.1 200 ")) {
		t.Errorf("the stalled request got %q; want 200 once the stall ended", b)
	}
	// The late worker ends once its stall does; the next test must not
	// find its thread.
	for _, w := range rs.workers {
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not end after its stall", w.name)
		}
	}
}

// TestListenerExclusiveReorder checks that with several workers a
// listener is attached with EPOLLEXCLUSIVE, and attached again after every
// reorderEvery clients it takes, which puts its worker at the back of the
// socket's wait queue.
func TestListenerExclusiveReorder(t *testing.T) {
	srv, addr := testServer(t, 2)
	c, err := newCore(srv.workers[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	l := c.listeners[0]
	if l.events&unix.EPOLLEXCLUSIVE == 0 {
		t.Fatal("a listener of one of two workers is not exclusive")
	}
	gen := c.loop.regs[l.sock].gen
	queue(t, addr, reorderEvery+1)
	if err := harness.WaitFor(5*time.Second, func() error {
		l.accept()
		if n := len(c.connections); n != reorderEvery+1 {
			return fmt.Errorf("%d clients accepted", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := c.loop.regs[l.sock]; r.gen == 0 || r.gen == gen || l.accepted != 1 {
		t.Fatalf("after %d clients: registration %v (generation %d before), %d accepted since; want it attached again, 1 since",
			reorderEvery+1, r, gen, l.accepted)
	}

	one, _ := testServer(t, 1)
	c1, err := newCore(one.workers[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c1.close)
	if c1.listeners[0].events&unix.EPOLLEXCLUSIVE != 0 {
		t.Error("the listener of a lone worker is exclusive: it needs no reordering")
	}
}

// TestCPUAffinity checks that worker_cpu_affinity "auto" pins each worker
// to one CPU of those the process may use, in turn.
func TestCPUAffinity(t *testing.T) {
	cpus, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	rs := startServerWith(t, 2, faults{}, `"worker_cpu_affinity": "auto",`)
	if err := harness.WaitFor(5*time.Second, func() error {
		threads := workerThreads(t)
		if len(threads) != 2 {
			return fmt.Errorf("worker threads %v", threads)
		}
		for tid, name := range threads {
			i, _ := strconv.Atoi(strings.TrimPrefix(name, "xps-w"))
			var set unix.CPUSet
			id, _ := strconv.Atoi(tid)
			if err := unix.SchedGetaffinity(id, &set); err != nil {
				return err
			}
			if set.Count() != 1 || !set.IsSet(cpus[i%len(cpus)]) {
				return fmt.Errorf("%s may run on %d CPUs; want CPU %d alone", name, set.Count(), cpus[i%len(cpus)])
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rs.stop(t)
}

// TestStarvedSocketSharedByWorkers checks that clients one worker could not
// take for want of room in the budget are taken by another worker as soon
// as that one closes a descriptor: the accept queue and the budget are the
// process's, not a worker's.
func TestStarvedSocketSharedByWorkers(t *testing.T) {
	srv, addr := testServer(t, 2)
	a, err := newCore(srv.workers[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	b, err := newCore(srv.workers[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.close)
	queue(t, addr, 3)
	// As if the server had started with all but fdReserve+4 descriptors
	// open: room for two clients (see TestListenerBudget).
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	srv.budget.fdsAtStart = int(min(lim.Cur, math.MaxInt32)) - fdReserve - 4
	if err := harness.WaitFor(5*time.Second, func() error {
		a.listeners[0].accept()
		if len(a.connections) != 2 || !srv.sockets[0].starved.Load() {
			return fmt.Errorf("worker a holds %d clients, socket starved %v; want 2, starved", len(a.connections), srv.sockets[0].starved.Load())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for conn := range a.connections {
		conn.close(false)
		break
	}
	// Worker b closes a descriptor of its own, and so retries the socket.
	b.loop.released()
	if !b.loop.retryPending() {
		t.Fatal("worker b closed a descriptor while the socket is starved, but has no retry pending")
	}
	b.loop.retryStarved()
	if len(b.connections) != 1 || srv.budget.clients.Load() != 2 {
		t.Fatalf("after worker b's retry: it holds %d clients, %d in the budget; want the third client taken by b, 2",
			len(b.connections), srv.budget.clients.Load())
	}
}

// TestBudgetIsShared checks that workers taking and releasing room at the
// same time never hold more clients than the budget.
func TestBudgetIsShared(t *testing.T) {
	var b clientBudget
	b.max.Store(3)
	var holding, most atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				if !b.take() {
					continue
				}
				n := holding.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				holding.Add(-1)
				b.release()
			}
		})
	}
	wg.Wait()
	if most.Load() > 3 || b.clients.Load() != 0 {
		t.Fatalf("at most %d clients held at once, %d left; want at most 3, none left", most.Load(), b.clients.Load())
	}
}

// TestHTTPDateShared checks that workers formatting dates at once all get a
// whole one.
func TestHTTPDateShared(t *testing.T) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if _, err := time.Parse(imfFixdate, httpDate()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestFaultsFromEnv checks the fault hooks' environment variables.
func TestFaultsFromEnv(t *testing.T) {
	t.Setenv("XPS_FAULT_PANIC_PATH", "/p")
	t.Setenv("XPS_FAULT_STALL_PATH", "/s")
	t.Setenv("XPS_FAULT_STALL_MS", "250")
	f, err := faultsFromEnv()
	if err != nil || f != (faults{panicPath: "/p", stallPath: "/s", stall: 250 * time.Millisecond}) {
		t.Fatalf("faultsFromEnv() = %+v, %v", f, err)
	}
	t.Setenv("XPS_FAULT_STALL_MS", "soon")
	if _, err := faultsFromEnv(); err == nil {
		t.Fatal("XPS_FAULT_STALL_MS=soon accepted")
	}
}
