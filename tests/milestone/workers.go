package milestone

import (
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"expserver-go/tests/harness"
)

// workersMilestones are the checks of stage 23: several event loops, each
// on a thread named after it (xps-w0, xps-w1, …), sharing the listening
// sockets. What a worker does is seen from outside through its thread —
// its name, CPU time and context switches in /proc/PID/task — and through
// the metrics' per-worker arrays; the checks of the metrics' figures need
// stage 22's /api.
var workersMilestones = []Milestone{
	{ID: "workers-threads", Title: "workers: 4 runs exactly four threads named xps-w0 to xps-w3, with GOMAXPROCS ≥ 4; /api says 4 workers, with arrays of four",
		From: 23, To: 23, Run: checkWorkersThreads},
	{ID: "workers-config", Title: `no workers key is one worker, "auto" one per CPU; 0, -1, 1025, 2.5 and "4" are exit 2 naming workers; more workers than CPUs is one WARNING`,
		From: 23, To: 23, Run: checkWorkersConfig},
	{ID: "workers-spread", Title: "64 concurrent clients are accepted by every one of 4 workers (≥ 5 % each), 1,600 sequential ones in turns (≥ 10 % each)",
		From: 23, To: 23, Run: checkWorkersSpread},
	{ID: "workers-exact-counts", Title: "with 4 workers, 500 requests from 20 clients move every counter by exactly what was sent: no update is lost",
		From: 23, To: 23, Run: checkWorkersExactCounts},
	{ID: "workers-monotonic", Title: "4 pollers at 20 Hz under full-speed load on 4 workers: no counter goes back for any of them, every snapshot is consistent",
		From: 23, To: 23, Run: checkWorkersMonotonic},
	{ID: "workers-cpu-parallel", Title: "CPU-bound load on 2 workers uses ≥ 1.5 CPUs (or, on a machine that cannot give that much, both run at once ≥ 25 % of the time), each worker ≥ 30 % of it; on 1 worker ≤ 1.2 CPUs",
		From: 23, To: 23, Alone: true, Run: checkWorkersCPUParallel},
	{ID: "workers-throughput-scales", Title: "on 2N+2 CPUs, 4 workers pinned to 4 CPUs serve ≥ 3× the gzip and ≥ 2× the small-file requests of 1 worker on 1 CPU",
		From: 23, To: 23, Limit: 2 * time.Minute, Run: checkWorkersThroughputScales},
	{ID: "workers-no-herd", Title: "1,000 sequential connections to 8 workers wake one worker each: under 5 voluntary context switches per connection over all worker threads",
		From: 23, To: 23, Run: checkWorkersNoHerd},
	{ID: "workers-idle-cpu", Title: "8 idle workers, then 8 workers holding 2,000 idle connections, use under 1 % CPU",
		From: 23, To: 23, Run: checkWorkersIdleCPU},
	{ID: "workers-slow-clients", Title: "with 500 slowloris clients and 20 slow readers spread over 4 workers, each of a fresh client's 200 GETs takes under 100 ms",
		From: 23, To: 23, Limit: 2 * time.Minute, Run: checkWorkersSlowClients},
	{ID: "workers-stalled-worker", Title: "one of 4 workers stalled for 3 s: 200 GETs meanwhile each take under 200 ms and all succeed; afterwards it accepts again",
		From: 23, To: 23, Run: checkWorkersStalledWorker},
	{ID: "workers-panic", Title: "a worker that panics drops its client, starts again on a new thread within 200 ms, and loses no count, descriptor or worker",
		From: 23, To: 23, Run: checkWorkersPanic},
	{ID: "workers-sigint", Title: "SIGINT with 4 workers, 1,000 idle clients and 20 downloads: exit 0 within 2 s, every client sees its connection end, the port refuses",
		From: 23, To: 23, Run: checkWorkersSIGINT},
	{ID: "workers-sigint-stalled", Title: "SIGINT with a worker stalled for 30 s: exit 0 within 3 s, with a WARNING naming the worker",
		From: 23, To: 23, Run: checkWorkersSIGINTStalled},
	{ID: "workers-lb-shared", Title: "every load-balancing check of stage 20 with 4 workers: one balancer per route for the whole process keeps the exact orders",
		From: 23, To: 23, Limit: 10 * time.Minute, Run: checkWorkersLBShared},
	{ID: "workers-timers", Title: "every timeout check of stage 21 with 4 workers: a connection's timers live on the worker that accepted it",
		From: 23, To: 23, Limit: 15 * time.Minute, Run: checkWorkersTimers},
	{ID: "workers-regression", Title: "every access-list and gzip check of stages 18–19 with 4 workers",
		From: 23, To: 23, Limit: 15 * time.Minute, Run: checkWorkersRegression},
	{ID: "workers-reuseport", Title: `where "reuseport" is implemented: one listening socket per worker, each taking 15–35 % of 1,000 connections`,
		From: 23, To: 23, Run: checkWorkersReuseport},
}

// workerThreadName is how a worker's thread is named: xps-w and its index.
var workerThreadName = regexp.MustCompile(`^xps-w([0-9]+)$`)

// workerThreads returns the threads of pid named after a worker.
func workerThreads(pid int) ([]harness.Thread, error) {
	all, err := harness.Threads(pid)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(t harness.Thread) bool { return !workerThreadName.MatchString(t.Name) }), nil
}

// workerIndex is the index in a worker thread's name.
func workerIndex(t harness.Thread) int {
	i, _ := strconv.Atoi(workerThreadName.FindStringSubmatch(t.Name)[1])
	return i
}

// waitWorkers waits until pid has exactly n worker threads, named xps-w0
// to xps-w<n-1>, and returns them in index order.
func waitWorkers(pid, n int) ([]harness.Thread, error) {
	var ts []harness.Thread
	err := harness.WaitFor(replyTimeout, func() error {
		var err error
		if ts, err = workerThreads(pid); err != nil {
			return harness.Permanent(err)
		}
		slices.SortFunc(ts, func(a, b harness.Thread) int { return workerIndex(a) - workerIndex(b) })
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.Name
		}
		want := make([]string, n)
		for i := range want {
			want[i] = "xps-w" + strconv.Itoa(i)
		}
		if !slices.Equal(names, want) {
			return fail(fmt.Sprintf("%d threads named %s", n, strings.Join(want, ", ")), "threads named %v", names)
		}
		return nil
	})
	return ts, err
}

// withWorkers runs checks with every server they start given workers: n
// (unless its config sets it), and reports the ones that failed. Skipped
// checks are logged and count as passed.
func (e *Env) withWorkers(n int, checks []Milestone) error {
	saved := e.workers
	e.workers = n
	defer func() { e.workers = saved }()
	var failed []string
	for _, m := range checks {
		err := m.Run(e)
		if reason, ok := IsSkipped(err); ok {
			e.logf("%s: skipped: %s", m.ID, reason)
			continue
		}
		if err == nil {
			err = e.alive()
		}
		if err != nil {
			e.logf("%s with %d workers: %v", m.ID, n, err)
			failed = append(failed, fmt.Sprintf("%s (%v)", m.ID, err))
			if e.alive() != nil {
				if rerr := e.Server.Restart(); rerr != nil {
					return errors.Join(fail("every check to pass with "+strconv.Itoa(n)+" workers", "%s", strings.Join(failed, "; ")), rerr)
				}
			}
		}
	}
	if len(failed) > 0 {
		return fail(fmt.Sprintf("every check to pass with %d workers", n), "%d of %d failed: %s", len(failed), len(checks), strings.Join(failed, "; "))
	}
	return nil
}

// filesConfig is a configuration whose first port serves the public folder.
func filesConfig(e *Env, workers any) config {
	var c config
	c.Routes[0] = []route{fileRoute("/", e.Layout.Public)}
	c.More = map[string]any{"workers": workers}
	return c
}

// sequentialGETs sends n GETs of /sample.txt to addr one after another and
// returns the longest one took; each must be answered 200 with the file.
func sequentialGETs(addr string, n int) (time.Duration, error) {
	var longest time.Duration
	for i := range n {
		start := time.Now()
		r, err := getFrom("", addr, "/sample.txt")
		if err != nil {
			return longest, fmt.Errorf("GET %d of %d: %w", i+1, n, err)
		}
		if r.Status != 200 {
			return longest, fail(fmt.Sprintf("200 for GET %d of %d", i+1, n), "%d", r.Status)
		}
		longest = max(longest, time.Since(start))
	}
	return longest, nil
}

// goBinary reports whether the server under test is a Go program, for
// which GOMAXPROCS means something.
func goBinary(e *Env) bool {
	srv, ok := e.Server.(*ServerProcess)
	if !ok {
		return false
	}
	bin := srv.Bin
	if !filepath.IsAbs(bin) && strings.Contains(bin, "/") {
		bin = filepath.Join(srv.Dir, bin)
	}
	_, err := buildinfo.ReadFile(bin)
	return err == nil
}

// gomaxprocsLine finds the number a log line gives GOMAXPROCS.
var gomaxprocsLine = regexp.MustCompile(`GOMAXPROCS\D{0,20}?([0-9]+)`)

func checkWorkersThreads(e *Env) error {
	s, err := e.startWithMetrics(filesConfig(e, 4))
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := waitWorkers(s.PID(), 4); err != nil {
		return err
	}
	// A worker waiting for events holds none of the Go runtime's Ps; one
	// running needs one, so four busy workers need four. The runtime
	// starts with one per CPU: on fewer than four the server must have
	// raised it, and says so.
	if cpus := runtime.NumCPU(); cpus < 4 && goBinary(e) {
		n := 0
		if m := gomaxprocsLine.FindStringSubmatch(s.Log()); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if n < 4 {
			return fail(fmt.Sprintf("a log line raising GOMAXPROCS to 4 or more (this machine has %d CPUs)", cpus), "%s",
				harness.Abbrev([]byte(s.Tail(10)), 400))
		}
	}
	if err := s.waitAPI(); err != nil {
		return err
	}
	snap, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	cpu, _ := snap.v["workers_cpu_usage_percent"].([]any)
	accepted, _ := snap.v["workers_conn_accepted"].([]any)
	if snap.n("workers") != 4 || len(cpu) != 4 || len(accepted) != 4 {
		return fail("workers 4, and workers_cpu_usage_percent and workers_conn_accepted of 4 entries each", "%s",
			harness.Abbrev(snap.resp.Body, 300))
	}
	return nil
}

func checkWorkersConfig(e *Env) error {
	one, err := e.startWith(config{Routes: filesConfig(e, 1).Routes})
	if err != nil {
		return err
	}
	_, err = waitWorkers(one.PID(), 1)
	one.Close()
	if err != nil {
		return fmt.Errorf("without a workers key: %w", err)
	}
	auto := runtime.GOMAXPROCS(0) // the server's default is the same as this process's
	s, err := e.startWith(filesConfig(e, "auto"))
	if err != nil {
		return err
	}
	_, err = waitWorkers(s.PID(), auto)
	s.Close()
	if err != nil {
		return fmt.Errorf(`"workers": "auto" on %d CPUs: %w`, auto, err)
	}
	for _, bad := range []any{0, -1, 1025, 2.5, "4", true} {
		if err := e.refusesConfig(config{More: map[string]any{"workers": bad}}, "workers"); err != nil {
			return fmt.Errorf("workers %v: %w", bad, err)
		}
	}
	n := runtime.NumCPU() + 1
	many, err := e.startWith(filesConfig(e, n))
	if err != nil {
		return fmt.Errorf("%d workers on %d CPUs: %w", n, n-1, err)
	}
	defer many.Close()
	if _, err := waitWorkers(many.PID(), n); err != nil {
		return fmt.Errorf("%d workers on %d CPUs: %w", n, n-1, err)
	}
	warnings := 0
	for _, line := range strings.Split(many.Log(), "\n") {
		if strings.Contains(line, "WARNING") && strings.Contains(line, "workers") {
			warnings++
		}
	}
	if warnings != 1 {
		return fail(fmt.Sprintf("one WARNING about %d workers on %d CPUs", n, n-1), "%d in %s", warnings, harness.Abbrev([]byte(many.Tail(10)), 400))
	}
	return nil
}

// acceptedBy returns workers_conn_accepted and its sum.
func acceptedBy(s *snapshot) ([]int64, int64) {
	a, _ := s.v["workers_conn_accepted"].([]any)
	out := make([]int64, len(a))
	var sum int64
	for i, v := range a {
		n, _ := v.(json.Number)
		out[i], _ = n.Int64()
		sum += out[i]
	}
	return out, sum
}

// spreadAtLeast checks that each worker took at least share of the
// connections counted between s0 and s1.
func spreadAtLeast(s0, s1 *snapshot, share float64, what string) error {
	a0, _ := acceptedBy(s0)
	a1, sum1 := acceptedBy(s1)
	if len(a1) != 4 || len(a0) != 4 {
		return fail("workers_conn_accepted of 4 entries", "%v", s1.v["workers_conn_accepted"])
	}
	if sum1 != s1.n("conn_accepted") {
		return fail("workers_conn_accepted adding up to conn_accepted", "%v, sum %d, conn_accepted %d", a1, sum1, s1.n("conn_accepted"))
	}
	var total int64
	d := make([]int64, 4)
	for i := range d {
		d[i] = a1[i] - a0[i]
		total += d[i]
	}
	for _, n := range d {
		if float64(n) < share*float64(total) {
			return fail(fmt.Sprintf("%s: each worker at least %.0f %% of the %d accepts", what, 100*share, total), "%v", d)
		}
	}
	return nil
}

func checkWorkersSpread(e *Env) error {
	s, err := e.startWithMetrics(filesConfig(e, 4))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.waitAPI(); err != nil {
		return err
	}
	s0, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	stop := time.Now().Add(3 * time.Second)
	errs := inParallel(64, func(int) error {
		for time.Now().Before(stop) {
			if _, err := getFrom("", at(s.ServerProcess, 0), "/sample.txt"); err != nil {
				return err
			}
		}
		return nil
	})
	if err := firstErrors(errs, 3); err != nil {
		return err
	}
	s1, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	if err := spreadAtLeast(s0, s1, 0.05, "64 concurrent clients for 3 s"); err != nil {
		return err
	}
	if _, err := sequentialGETs(at(s.ServerProcess, 0), 1600); err != nil {
		return err
	}
	s2, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	return spreadAtLeast(s1, s2, 0.10, "1,600 sequential connections")
}

func checkWorkersExactCounts(e *Env) error {
	return e.withWorkers(4, []Milestone{{ID: "metrics-exact-counts", Run: checkMetricsExactCounts}})
}

func checkWorkersMonotonic(e *Env) error {
	up, err := proxiedUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	e.workers = 4
	s, err := e.metricsFiles(up.Addr())
	e.workers = 0
	if err != nil {
		return err
	}
	defer s.Close()
	const load = 5 * time.Second
	jobs := mixedJobs(e, 10, true)
	stop := time.Now().Add(load)
	loadErr := make(chan error, 1)
	go func() {
		loadErr <- firstErrors(inParallel(8, func(int) error {
			for time.Now().Before(stop) {
				if _, _, err := traffic(s, 1, jobs); err != nil {
					return err
				}
			}
			return nil
		}), 3)
	}()
	polls := make([]int, 4)
	errs := inParallel(4, func(p int) error {
		var prev *snapshot
		for time.Now().Before(stop) {
			cur, err := fetchAPI(s.api)
			if err != nil {
				return err
			}
			if err := invariants(cur); err != nil {
				return fmt.Errorf("poller %d, poll %d: %w", p+1, polls[p]+1, err)
			}
			if prev != nil {
				for _, k := range counterKeys {
					if cur.n(k) < prev.n(k) {
						return fail(k+" never to decrease", "poller %d, poll %d: %d after %d", p+1, polls[p]+1, cur.n(k), prev.n(k))
					}
				}
			}
			prev = cur
			polls[p]++
			time.Sleep(50 * time.Millisecond) // the poller's pace
		}
		return nil
	})
	if err := firstErrors(errs, 2); err != nil {
		return err
	}
	if err := <-loadErr; err != nil {
		return fmt.Errorf("the load: %w", err)
	}
	e.logf("polls under load: %v", polls)
	for p, n := range polls {
		if n < 10 {
			return fail("at least 10 polls in 5 s from each poller", "poller %d: %d", p+1, n)
		}
	}
	return nil
}

// cpuLoad runs 8 clients of CPU-bound requests against a server of n
// workers for 3 s and returns the process's CPU seconds per second, the
// CPU time each worker thread used, and the share of the window in which
// the worker threads were seen running at the same time (see overlap).
func cpuLoad(e *Env, dir string, n int) (cpus float64, used []time.Duration, parallel float64, err error) {
	var c config
	r := gzipRoute("/", dir)
	r.GzipLevel = 9
	c.Routes[0] = []route{r}
	c.More = map[string]any{"workers": n}
	s, err := e.startWith(c)
	if err != nil {
		return 0, nil, 0, err
	}
	defer s.Close()
	before, err := waitWorkers(s.PID(), n)
	if err != nil {
		return 0, nil, 0, err
	}
	meter, err := harness.StartCPUMeter(s.PID())
	if err != nil {
		return 0, nil, 0, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { busy(at(s, 0), "/big.txt", "gzip", 8, stop) })
	const window = 3 * time.Second
	parallel, oerr := overlap(s.PID(), before, window)
	pct, _, err := meter.Percent()
	after, terr := waitWorkers(s.PID(), n)
	close(stop)
	wg.Wait()
	if err := errors.Join(err, oerr, terr); err != nil {
		return 0, nil, 0, err
	}
	used = make([]time.Duration, n)
	for i := range used {
		used[i] = after[i].CPU - before[i].CPU
	}
	return pct / 100, used, parallel, nil
}

// overlap watches the threads for the window and returns the share of it
// in which they ran at the same time, as CPU-seconds per second. Every
// 10 ms it reads how long each thread has run (harness.ThreadRuntime):
// threads that never run at once can together have run at most as long as
// the interval, so what exceeds it was run in parallel. Unlike the
// process's CPU share, this does not depend on how much of the machine
// the rest of it — the load generator, other tests — leaves the server.
func overlap(pid int, threads []harness.Thread, window time.Duration) (float64, error) {
	read := func() ([]time.Duration, error) {
		out := make([]time.Duration, len(threads))
		for i, t := range threads {
			d, err := harness.ThreadRuntime(pid, t.TID)
			if err != nil {
				return nil, err
			}
			out[i] = d
		}
		return out, nil
	}
	start := time.Now()
	prev, err := read()
	if err != nil {
		return 0, err
	}
	prevAt := start
	var both time.Duration
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < window {
		<-tick.C
		now := time.Now()
		cur, err := read()
		if err != nil {
			return 0, err
		}
		var ran time.Duration
		for i := range cur {
			ran += cur[i] - prev[i]
		}
		if excess := ran - now.Sub(prevAt); excess > 0 {
			both += excess
		}
		prev, prevAt = cur, now
	}
	return both.Seconds() / time.Since(start).Seconds(), nil
}

func checkWorkersCPUParallel(e *Env) error {
	if runtime.NumCPU() < 2 {
		return skip("two workers cannot run in parallel on %d CPU", runtime.NumCPU())
	}
	dir, err := workDir(e, "workers-cpu", map[string]string{"big.txt": string(randomText(e.Rand(), 4<<20))})
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The spec's figure, 1.5 CPUs, assumes the load generator and the
	// rest of the machine leave the server that much of two CPUs; where
	// they did not, the two workers must still be seen running at once.
	// A server whose workers take turns (one lock around the loop) shows
	// neither, however often it is measured; a process elsewhere on the
	// machine that took a CPU for a while is outlasted by measuring again.
	var cpus, parallel float64
	var used []time.Duration
	for try := 1; try <= 3; try++ {
		if cpus, used, parallel, err = cpuLoad(e, dir, 2); err != nil {
			return err
		}
		e.logf("2 workers, measurement %d: %.2f CPUs, per worker %v, both running %.2f of the time", try, cpus, used, parallel)
		if cpus >= 1.5 || parallel >= 0.25 {
			break
		}
	}
	if cpus < 1.5 && parallel < 0.25 {
		return fail("≥ 1.5 CPU-seconds per second with 2 workers under CPU-bound load, or the two worker threads running at the same time ≥ 25 % of it",
			"%.2f CPUs, both running %.2f of the time", cpus, parallel)
	}
	total := used[0] + used[1]
	for i, u := range used {
		if float64(u) < 0.3*float64(total) {
			return fail("each of 2 workers ≥ 30 % of the workers' CPU time", "xps-w%d %v of %v", i, u, total)
		}
	}
	if cpus, _, _, err = cpuLoad(e, dir, 1); err != nil {
		return err
	}
	e.logf("1 worker: %.2f CPUs", cpus)
	if cpus > 1.2 {
		return fail("≤ 1.2 CPU-seconds per second with 1 worker", "%.2f", cpus)
	}
	return nil
}

// pinThreads sets the CPU affinity of every thread of this process to
// cpus, and returns a function that restores what each had. Threads
// started later inherit the affinity of the thread that starts them.
func pinThreads(cpus []int) (restore func(), err error) {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	saved := map[int]unix.CPUSet{}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var old unix.CPUSet
		if unix.SchedGetaffinity(tid, &old) != nil || unix.SchedSetaffinity(tid, &set) != nil {
			continue // the thread ended meanwhile
		}
		saved[tid] = old
	}
	return func() {
		for tid, old := range saved {
			unix.SchedSetaffinity(tid, &old)
		}
	}, nil
}

// rate runs clients that fetch target from addr one after another each for
// window and returns the requests completed per second.
func rate(addr, target, acceptEncoding string, clients int, window time.Duration) (float64, error) {
	var done atomic.Int64
	stop := time.Now().Add(window)
	errs := inParallel(clients, func(int) error {
		for time.Now().Before(stop) {
			c, err := harness.Dial(addr)
			if err != nil {
				return err
			}
			c.Write([]byte(gzipRequest(target, acceptEncoding)))
			raw, err := harness.ReadToClose(c, bulkTimeout)
			c.Close()
			if err != nil || !strings.HasPrefix(string(raw), "HTTP/1.1 200 ") {
				return fail("200 for GET "+target, "%s (%v)", harness.Abbrev(raw, 60), err)
			}
			done.Add(1)
		}
		return nil
	})
	return float64(done.Load()) / window.Seconds(), firstErrors(errs, 2)
}

func checkWorkersThroughputScales(e *Env) error {
	const n = 4
	cpus := runtime.NumCPU()
	if cpus < 2*n+2 {
		return skip("needs at least %d CPUs (2N+2 for N = %d: the server pinned to N of them, its load on the others); this machine has %d", 2*n+2, n, cpus)
	}
	dir, err := workDir(e, "workers-scale", map[string]string{
		"text.txt":  string(randomText(e.Rand(), 1<<20)),
		"small.txt": string(randomText(e.Rand(), 1<<10)),
	})
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var load []int
	for c := n; c < cpus; c++ {
		load = append(load, c)
	}
	restore, err := pinThreads(load)
	if err != nil {
		return err
	}
	defer restore()
	measure := func(workers int) (gz, small float64, err error) {
		ports, err := freeInstancePorts()
		if err != nil {
			return 0, 0, err
		}
		var c config
		r := gzipRoute("/", dir)
		r.GzipLevel = 6
		c.Routes[0] = []route{r}
		c.More = map[string]any{"workers": workers}
		s, err := e.StartInstance(Instance{Ports: ports, Config: c.json(ports), Wrap: []string{"taskset", "-c", "0-" + strconv.Itoa(workers-1), "--"}})
		if err != nil {
			return 0, 0, err
		}
		defer s.Close()
		if gz, err = rate(at(s, 0), "/text.txt", "gzip", 4*workers, 5*time.Second); err != nil {
			return 0, 0, err
		}
		small, err = rate(at(s, 0), "/small.txt", "identity", 8*workers, 5*time.Second)
		return gz, small, err
	}
	gz1, small1, err := measure(1)
	if err != nil {
		return err
	}
	gzN, smallN, err := measure(n)
	if err != nil {
		return err
	}
	e.logf("gzip %.0f → %.0f req/s (×%.2f), 1 KiB %.0f → %.0f req/s (×%.2f)", gz1, gzN, gzN/gz1, small1, smallN, smallN/small1)
	if gzN < 3*gz1 || smallN < 2*small1 {
		return fail(fmt.Sprintf("with %d workers on %d CPUs, ≥ 3× the gzip and ≥ 2× the small-file requests per second of 1", n, n),
			"gzip ×%.2f, small files ×%.2f", gzN/gz1, smallN/small1)
	}
	return nil
}

// switches sums the voluntary context switches of the worker threads.
func switches(ts []harness.Thread) int64 {
	var n int64
	for _, t := range ts {
		n += t.VoluntarySwitches
	}
	return n
}

func checkWorkersNoHerd(e *Env) error {
	const workers, conns = 8, 1000
	s, err := e.startWith(filesConfig(e, workers))
	if err != nil {
		return err
	}
	defer s.Close()
	before, err := waitWorkers(s.PID(), workers)
	if err != nil {
		return err
	}
	if _, err := sequentialGETs(at(s, 0), conns); err != nil {
		return err
	}
	after, err := waitWorkers(s.PID(), workers)
	if err != nil {
		return err
	}
	per := float64(switches(after)-switches(before)) / conns
	e.logf("%.2f voluntary context switches of the worker threads per connection", per)
	if per >= 5 {
		return fail("under 5 voluntary context switches per connection over all 8 worker threads (one worker woken per client)", "%.1f", per)
	}
	return nil
}

func checkWorkersIdleCPU(e *Env) error {
	const workers, idle = 8, 2000
	s, err := e.startWith(filesConfig(e, workers))
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := waitWorkers(s.PID(), workers); err != nil {
		return err
	}
	window := 3 * time.Second
	measure := func(what string) error {
		meter, err := harness.StartCPUMeter(s.PID())
		if err != nil {
			return err
		}
		time.Sleep(window) // a measurement window, not a synchronisation
		pct, _, err := meter.Percent()
		if err != nil {
			return err
		}
		e.logf("%s: %.2f %% CPU over %v", what, pct, window)
		if pct >= 1 {
			return fail(what+": under 1 % CPU", "%.1f %% over %v", pct, window)
		}
		return nil
	}
	if err := measure("8 idle workers"); err != nil {
		return err
	}
	_, _, done, err := reservedClients(e, s.PID(), idle, 64, toPort(s, 0))
	defer done()
	if err != nil {
		return err
	}
	return measure("8 workers holding 2,000 idle connections")
}

// slowReader reads from c at about rate bytes per second until stop is
// closed or the stream ends.
func slowReader(c net.Conn, rate int, stop <-chan struct{}) {
	buf := make([]byte, rate/10)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := io.ReadFull(c, buf); err != nil && !harness.IsTimeout(err) {
			return
		}
	}
}

func checkWorkersSlowClients(e *Env) error {
	const slowloris, readers = 500, 20
	s, stopServer, err := fourWorkersWithBigFile(e, "workers-slow", func(dir string) []route {
		return []route{fileRoute("/big/", dir), fileRoute("/", e.Layout.Public)}
	})
	if err != nil {
		return err
	}
	defer stopServer()
	conns, _, done, err := reservedClients(e, s.PID(), slowloris, readers+64, toPort(s, 0))
	defer done()
	if err != nil {
		return err
	}
	for _, c := range conns {
		c.Write([]byte("GET /sample.txt HTTP/1.1\r\nHost: x\r\n")) // and never the rest
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for range readers {
		r, err := harness.Dial(at(s, 0))
		if err != nil {
			return err
		}
		defer r.Close()
		if _, err := r.Write([]byte(request("GET", "/big/big.bin", "x", nil, ""))); err != nil {
			return err
		}
		wg.Go(func() { slowReader(r, 100<<10, stop) })
	}
	var longest time.Duration
	for i := range 200 {
		start := time.Now()
		r, err := getFrom("", at(s, 0), "/sample.txt")
		if err != nil {
			return fmt.Errorf("GET %d of 200: %w", i+1, err)
		}
		took := time.Since(start)
		if r.Status != 200 || took >= 100*time.Millisecond {
			return fail("each of 200 GETs answered 200 within 100 ms beside 500 slowloris clients and 20 slow readers",
				"GET %d: %d after %v", i+1, r.Status, took.Round(time.Millisecond))
		}
		longest = max(longest, took)
	}
	e.logf("the longest of 200 GETs: %v", longest.Round(time.Microsecond))
	return nil
}

// stalledWorker waits until one of the n worker threads of pid has been
// blocked in another system call than the rest for stallSeen — the
// worker the stall hook holds, while the others wait for events — and
// returns it. A worker busy with a client leaves the others' system call
// for a moment only.
func stalledWorker(pid, n int) (harness.Thread, error) {
	var odd harness.Thread
	var since time.Time
	err := harness.WaitFor(replyTimeout, func() error {
		ts, err := workerThreads(pid)
		if err != nil {
			return harness.Permanent(err)
		}
		calls := map[int][]harness.Thread{}
		for _, t := range ts {
			call, err := harness.ThreadSyscall(pid, t.TID)
			if err != nil {
				return harness.Permanent(err)
			}
			calls[call] = append(calls[call], t)
		}
		var now harness.Thread
		for call, group := range calls {
			if len(ts) == n && len(calls) == 2 && len(group) == 1 && call >= 0 && len(calls[-1]) == 0 {
				now = group[0]
			}
		}
		switch {
		case now.TID == 0:
			odd = now
			return fmt.Errorf("the worker threads' system calls: %v", calls)
		case now.TID != odd.TID:
			odd, since = now, time.Now()
			return errors.New("a worker thread just left the others' system call")
		case time.Since(since) < stallSeen:
			return errors.New("a worker thread left the others' system call a moment ago")
		}
		return nil
	})
	if err != nil {
		return odd, fail("one worker thread stalled while the others wait for events", "%v", err)
	}
	return odd, nil
}

// stallSeen is how long a worker thread must stay out of the system call
// the others wait in to count as stalled.
const stallSeen = 100 * time.Millisecond

// stallRequest sends GET /stall to addr and delivers the status it got
// (0 for none) once the connection ends.
func stallRequest(addr string) <-chan int {
	got := make(chan int, 1)
	go func() {
		r, _, err := harness.RoundTripFrom("", addr, request("GET", "/stall", "x", nil, ""), time.Minute)
		if err != nil {
			got <- 0
			return
		}
		got <- r.Status
	}()
	return got
}

func checkWorkersStalledWorker(e *Env) error {
	const stall = 3 * time.Second
	s, err := e.startWithMetrics(filesConfig(e, 4), "XPS_FAULT_STALL_PATH=/stall", "XPS_FAULT_STALL_MS="+strconv.Itoa(int(stall/time.Millisecond)))
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := waitWorkers(s.PID(), 4); err != nil {
		return err
	}
	started := time.Now()
	answer := stallRequest(at(s.ServerProcess, 0))
	// Seen stalled, the worker has been so for at least stallSeen (100 ms).
	stalled, err := stalledWorker(s.PID(), 4)
	if err != nil {
		return err
	}
	for i := range 200 {
		start := time.Now()
		r, err := getFrom("", at(s.ServerProcess, 0), "/sample.txt")
		if err != nil {
			return fmt.Errorf("GET %d of 200 while %s is stalled: %w", i+1, stalled.Name, err)
		}
		if took := time.Since(start); r.Status != 200 || took >= 200*time.Millisecond {
			return fail("each of 200 GETs answered 200 within 200 ms while one worker is stalled", "GET %d: %d after %v", i+1, r.Status, took.Round(time.Millisecond))
		}
	}
	if time.Since(started) > stall {
		e.logf("the 200 GETs outlasted the %v stall", stall)
	}
	if status := <-answer; status != 200 {
		return fail("200 for the stalled request once the stall ended", "%d", status)
	}
	// After the stall the worker takes its turn again: with sequential
	// clients the workers take 16 each in turn, and each client wakes the
	// worker that takes it.
	ts, err := workerThreads(s.PID())
	if err != nil {
		return err
	}
	before := stalled
	for _, t := range ts {
		if t.TID == stalled.TID {
			before = t
		}
	}
	if _, err := sequentialGETs(at(s.ServerProcess, 0), 100); err != nil {
		return fmt.Errorf("after the stall: %w", err)
	}
	ts, err = workerThreads(s.PID())
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.TID == stalled.TID {
			if woke := t.VoluntarySwitches - before.VoluntarySwitches; woke < 10 {
				return fail(stalled.Name+" to take clients again after its stall (woken for at least 10 of 100 sequential clients)", "woken %d times", woke)
			}
			return nil
		}
	}
	return fail(stalled.Name+" still running after its stall", "its thread %d is gone", stalled.TID)
}

func checkWorkersPanic(e *Env) error {
	s, err := e.startWithMetrics(filesConfig(e, 4), "XPS_FAULT_PANIC_PATH=/boom")
	if err != nil {
		return err
	}
	defer s.Close()
	before, err := waitWorkers(s.PID(), 4)
	if err != nil {
		return err
	}
	// The counters are read around the panic; the other expectations do
	// not need them, and are checked even when they cannot be read.
	var metricsErr error
	s0, err := func() (*snapshot, error) {
		if err := s.waitAPI(); err != nil {
			return nil, err
		}
		return fetchAPI(s.api)
	}()
	if err != nil {
		metricsErr = err
	}
	base, err := stableFDs(e, s.PID())
	if err != nil {
		return err
	}
	c, err := harness.Dial(at(s.ServerProcess, 0))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte(request("GET", "/boom", "x", nil, ""))); err != nil {
		return err
	}
	raw, err := harness.ReadToClose(c, replyTimeout)
	if len(raw) > 0 || err != nil && !harness.IsReset(err) {
		return fail("the client of the panicking worker to see its connection end, with no status line", "%s (%v)", harness.Abbrev(raw, 60), err)
	}
	// The other workers take the next clients at once, while the new one
	// starts.
	if _, err := sequentialGETs(at(s.ServerProcess, 0), 100); err != nil {
		return fmt.Errorf("right after the panic: %w", err)
	}
	after, err := waitWorkers(s.PID(), 4)
	if err != nil {
		return fmt.Errorf("after the panic: %w", err)
	}
	fresh := 0
	for _, t := range after {
		if !slices.ContainsFunc(before, func(b harness.Thread) bool { return b.TID == t.TID }) {
			fresh++
		}
	}
	if fresh != 1 {
		return fail("one worker thread replaced, the other three the same", "%d new thread ids: before %v, after %v", fresh, before, after)
	}
	if !strings.Contains(s.Log(), "ERROR") || !strings.Contains(s.Log(), "panic") {
		return fail("an ERROR line about the panic in the log", "%s", harness.Abbrev([]byte(s.Tail(10)), 400))
	}
	if err := fdsBackTo(e, s.PID(), base); err != nil {
		return err
	}
	if metricsErr != nil {
		return fmt.Errorf("the workers survived, but their counters could not be read: %w", metricsErr)
	}
	s1, polls, err := settle(s.api, settleWithin)
	if err != nil {
		return err
	}
	e.logf("settled after %d polls", polls)
	if n := s1.n("worker_restarts"); n != 1 {
		return fail("worker_restarts 1", "%d", n)
	}
	for _, k := range counterKeys {
		if s1.n(k) < s0.n(k) {
			return fail(k+" never to decrease across a worker's panic", "%d after %d", s1.n(k), s0.n(k))
		}
	}
	return invariants(s1)
}

// sparseFile creates a file of size zeros that takes no room on the disk.
// fourWorkersWithBigFile starts a server of four workers with the routes
// that routes returns for dir, a new folder holding big.bin, a sparse file
// of 50 MiB. stop stops the server and removes the folder.
func fourWorkersWithBigFile(e *Env, name string, routes func(dir string) []route) (s *ServerProcess, stop func(), err error) {
	dir, err := workDir(e, name, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := sparseFile(filepath.Join(dir, "big.bin"), 50<<20); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	var c config
	c.Routes[0] = routes(dir)
	c.More = map[string]any{"workers": 4}
	if s, err = e.startWith(c); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() { s.Close(); os.RemoveAll(dir) }, nil
}

func sparseFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func checkWorkersSIGINT(e *Env) error {
	const idle, downloads = 1000, 20
	s, stop, err := fourWorkersWithBigFile(e, "workers-sigint", func(dir string) []route {
		return []route{fileRoute("/", dir)}
	})
	if err != nil {
		return err
	}
	defer stop()
	if _, err := waitWorkers(s.PID(), 4); err != nil {
		return err
	}
	conns, _, done, err := reservedClients(e, s.PID(), idle, downloads+64, toPort(s, 0))
	defer done()
	if err != nil {
		return err
	}
	for range downloads {
		d, err := harness.Dial(at(s, 0))
		if err != nil {
			return err
		}
		conns = append(conns, d)
		if _, err := d.Write([]byte(request("GET", "/big.bin", "x", nil, ""))); err != nil {
			return err
		}
		if _, err := harness.ReadChunk(d, replyTimeout); err != nil { // the download has begun
			return fmt.Errorf("a download: %w", err)
		}
	}
	start := time.Now()
	code, err := s.Interrupt()
	took := time.Since(start)
	if err != nil {
		return fail("exit on SIGINT", "%v", err)
	}
	e.logf("exit %d after %v", code, took.Round(time.Millisecond))
	if code != 0 || took > 2*time.Second {
		return fail("exit status 0 within 2 s of SIGINT", "exit status %d after %v", code, took.Round(time.Millisecond))
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(replyTimeout))
		// A download still has bytes in flight: read past them to the end.
		_, err := io.Copy(io.Discard, c)
		if err != nil && !harness.IsReset(err) {
			return fail("every client to see its connection end (EOF or reset)", "client %d: %v", i+1, err)
		}
	}
	if d, err := net.DialTimeout("tcp", at(s, 0), time.Second); err == nil {
		d.Close()
		return fail("the port to refuse connections once the server has exited", "a connection was accepted")
	}
	if n := strings.Count(s.Log(), "SIGINT received"); n != 1 {
		return fail(`one "SIGINT received" line`, "%d", n)
	}
	return nil
}

func checkWorkersSIGINTStalled(e *Env) error {
	ports, err := freeInstancePorts()
	if err != nil {
		return err
	}
	c := filesConfig(e, 4)
	s, err := e.StartInstance(Instance{Ports: ports, Config: c.json(ports), Env: []string{"XPS_FAULT_STALL_PATH=/stall", "XPS_FAULT_STALL_MS=30000"}})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := waitWorkers(s.PID(), 4); err != nil {
		return err
	}
	stallRequest(at(s, 0))
	stalled, err := stalledWorker(s.PID(), 4)
	if err != nil {
		return err
	}
	start := time.Now()
	code, err := s.Interrupt()
	took := time.Since(start)
	if err != nil {
		return fail("exit on SIGINT within 3 s with a worker stalled for 30 s", "%v", err)
	}
	if code != 0 || took > 3*time.Second {
		return fail("exit status 0 within 3 s of SIGINT with a worker stalled for 30 s", "exit status %d after %v", code, took.Round(time.Millisecond))
	}
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, "WARNING") && strings.Contains(line, stalled.Name) {
			return nil
		}
	}
	return fail("a WARNING naming "+stalled.Name+", which did not stop", "%s", harness.Abbrev([]byte(s.Tail(8)), 400))
}

func checkWorkersLBShared(e *Env) error { return e.withWorkers(4, lbMilestones) }

func checkWorkersTimers(e *Env) error { return e.withWorkers(4, timeoutMilestones) }

func checkWorkersRegression(e *Env) error {
	return e.withWorkers(4, slices.Concat(aclMilestones, gzipMilestones))
}

func checkWorkersReuseport(e *Env) error {
	free, err := harness.FreePorts(5)
	if err != nil {
		return err
	}
	ports := [4]int(free[:4])
	c := filesConfig(e, 4)
	c.More["metrics"] = map[string]any{"port": free[4]}
	var doc map[string]any
	mustRoundTrip(c.json(ports), &doc)
	l := doc["servers"].([]any)[0].(map[string]any)["listeners"].([]any)[0].(map[string]any)
	l["reuseport"] = true
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	srv, err := e.StartInstance(Instance{Ports: ports, Config: b})
	var se *StartError
	if errors.As(err, &se) && se.How == "exited" && se.Detail == "exit status 2" {
		return skip(`"reuseport" is not implemented: the server refuses the key`)
	}
	if err != nil {
		return err
	}
	s := &metricsServer{ServerProcess: srv, api: e.Host + ":" + strconv.Itoa(free[4])}
	defer s.Close()
	if _, err := waitWorkers(s.PID(), 4); err != nil {
		return err
	}
	if _, n, err := harness.AcceptQueue(ports[0]); err != nil || n != 4 {
		return fail("4 listening sockets on the port, one per worker", "%d (%v)", n, err)
	}
	if err := s.waitAPI(); err != nil {
		return err
	}
	s0, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	if _, err := sequentialGETs(at(srv, 0), 1000); err != nil {
		return err
	}
	s1, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	if err := spreadAtLeast(s0, s1, 0.15, "1,000 connections over 4 sockets"); err != nil {
		return err
	}
	a0, _ := acceptedBy(s0)
	a1, _ := acceptedBy(s1)
	for i := range a1 {
		if d := a1[i] - a0[i]; d > 350 {
			return fail("each worker at most 35 % of 1,000 connections over 4 sockets", "xps-w%d took %d", i, d)
		}
	}
	return nil
}
