package main

import (
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"expserver-go/tests/harness"
)

// bench is one run: what it was asked to do, the servers it measures and
// what they measured.
type bench struct {
	o         options
	tools     toolPaths
	procs     *procSet
	tmp       string
	web       webRoot
	bins      map[int]string // stage → its binary
	upstreams []int          // the ports of the upstream nginx
	servers   []*server      // measured every round, in serverNames order
	instances map[string]*server
	res       *results
	// due holds the rows that run in the current round; see rowRound.
	due map[string]bool
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// round measures every row due in round r of total, each for its servers
// one after the other, so that the servers' figures for a row are minutes
// apart at most and a drift of the machine hits them all alike. Each row
// starts with a different server in each of its rounds, so that none is
// always the first (after another row's load) or the last.
func (b *bench) round(r, total int) error {
	label := fmt.Sprintf("round %d/%d", r, total)
	b.due = map[string]bool{}
	nth := map[string]int{} // row → which of its own rounds this is
	for _, row := range b.o.rowList() {
		if k, ok := b.o.rowRound(row, r, total); ok {
			b.due[row], nth[row] = true, k
		}
	}
	due := func(rows ...string) bool {
		return slices.ContainsFunc(rows, func(row string) bool { return b.due[row] })
	}
	// k is the round number the step's first due row counts in.
	k := func(rows ...string) int {
		for _, row := range rows {
			if b.due[row] {
				return nth[row]
			}
		}
		return r
	}
	base := b.servers
	peers := []*server{base[0], base[2]} // nginx and ours
	each := func(servers []*server, k int, f func(*server) error) func() error {
		return func() error {
			for _, s := range rotate(servers, k) {
				if err := f(s); err != nil {
					return err
				}
			}
			return nil
		}
	}
	steps := []struct {
		on  bool
		run func() error
	}{
		{due("i"), each(base, k("i"), func(s *server) error { return b.wrkRow(label, "i", "i", s, b.closeWrk("/"+smallFile)) })},
		{due("ii"), each(base, k("ii"), func(s *server) error { return b.downloadRow(label, s) })},
		{due("iii"), each(base, k("iii"), func(s *server) error { return b.wrkRow(label, "iii", "iii", s, b.closeWrk("/proxy/"+tinyFile)) })},
		{due("iv", "v", "vi"), each(base, k("iv", "v", "vi"), func(s *server) error { return b.connsRow(label, s) })},
		{due("gzip"), each(peers, k("gzip"), func(s *server) error {
			_, err := b.gzipRowRPS(label, "gzip", "gzip", s, []int{clientCPU})
			return err
		})},
		{due("gzip-big"), each(peers, k("gzip-big"), func(s *server) error { return b.gzipBigRow(label, s) })},
		{due("acl"), func() error { return b.aclRow(label, k("acl")) }},
		{due("lb"), each(peers, k("lb"), func(s *server) error { return b.wrkRow(label, "lb", "lb", s, b.closeWrk("/lb/"+tinyFile)) })},
		{due("slowloris"), func() error { return b.slowlorisRow(label, k("slowloris")) }},
		{due("timers-idle"), each(peers, k("timers-idle"), func(s *server) error { return b.partialHeadsRow(label, s) })},
		{due("timers"), func() error { return b.timersRow(label, k("timers")) }},
		{due(workerRows...), func() error { return b.workerRows(label, k(workerRows...)) }},
		{due("xi"), func() error { return b.metricsCostRow(label, k("xi")) }},
	}
	for _, step := range steps {
		if !step.on {
			continue
		}
		if err := step.run(); err != nil {
			return err
		}
	}
	return nil
}

// rotate returns servers starting with the one at (k−1) mod len, for the
// k-th round of a row.
func rotate(servers []*server, k int) []*server {
	i := (k - 1) % len(servers)
	return append(slices.Clone(servers[i:]), servers[:i]...)
}

// wrkSpec is one wrk run: the path, the load, and the CPUs wrk runs on.
type wrkSpec struct {
	path           string
	threads, conns int
	headers        []string
	timeout        time.Duration // wrk's per-request timeout; 0 keeps its 2 s
	duration       time.Duration // how long wrk runs; 0 means -duration
	cpus           []int
}

// closeWrk is the load of rows (i) and (iii): wrk -t2 -c50 with a new
// connection per request, on clientCPU.
func (b *bench) closeWrk(path string) wrkSpec {
	return wrkSpec{path: path, threads: 2, conns: 50, headers: []string{"Connection: close"}, cpus: []int{clientCPU}}
}

// wrk runs w against s and returns what wrk reports and the CPU seconds
// the server spent meanwhile.
func (b *bench) wrk(s *server, w wrkSpec) (wrkResult, float64, error) {
	d := w.duration
	if d == 0 {
		d = b.o.duration
	}
	args := []string{"-c", cpuList(w.cpus), b.tools.wrk, fmt.Sprintf("-t%d", w.threads), fmt.Sprintf("-c%d", w.conns),
		fmt.Sprintf("-d%ds", int(d.Seconds()))}
	if w.timeout > 0 {
		args = append(args, fmt.Sprintf("--timeout=%ds", int(w.timeout.Seconds())))
	}
	for _, h := range w.headers {
		args = append(args, "-H", h)
	}
	args = append(args, "http://"+s.addr()+w.path)
	var out string
	cpu, err := cpuDuring(s, func() error {
		var err error
		out, err = b.procs.run("wrk", d+time.Minute, b.tools.taskset, args...)
		return err
	})
	if err != nil {
		return wrkResult{}, 0, err
	}
	if err := s.alive(); err != nil {
		return wrkResult{}, 0, err
	}
	res, err := parseWrk(out)
	return res, cpu, err
}

// cpuDuring returns the CPU seconds the server used while f ran.
func cpuDuring(s *server, f func() error) (float64, error) {
	before, err := s.cpu()
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	after, err := s.cpu()
	if err != nil {
		return 0, err
	}
	return after - before, nil
}

// recordWrk adds key.rps, key.cpu and key.per_cpu for the server, flags the
// row when wrk counted errors, and returns the requests per CPU-second.
func (b *bench) recordWrk(label, row, key string, s *server, w wrkResult, cpu float64) float64 {
	b.res.add(key+".rps", s.name, w.ReqPerSec)
	b.res.add(key+".cpu", s.name, cpu)
	perCPU := 0.0
	if cpu > 0 {
		perCPU = float64(w.Requests) / cpu
		b.res.add(key+".per_cpu", s.name, perCPU)
	}
	progress("%s (%s) %-8s %s req/s, %s CPU s, %s requests per CPU-second%s",
		label, key, s.label, formatNumber(w.ReqPerSec), formatNumber(cpu), formatNumber(perCPU), b.flagWrk(label, row, key, s.label, s, w))
	return perCPU
}

// flagWrk flags row for s if wrk counted errors in the run key describes,
// and returns what the progress line adds about them.
func (b *bench) flagWrk(label, row, key, what string, s *server, w wrkResult) string {
	e := w.ErrorSummary()
	if e == "" {
		return ""
	}
	b.res.flag(s.name, fmt.Sprintf("%s, %s, row (%s): wrk counted %s among %s requests",
		label, what, key, e, formatCount(int(w.Requests))), row)
	return " — errors: " + e
}

// wrkRow runs a wrk row on s: rows (i), (iii), (lb), (vii) and (ix). key
// names its quantities (row, or row.N at N workers).
func (b *bench) wrkRow(label, row, key string, s *server, w wrkSpec) error {
	_, err := b.wrkRowRPS(label, row, key, s, w)
	return err
}

// wrkRowRPS is wrkRow returning wrk's req/s.
func (b *bench) wrkRowRPS(label, row, key string, s *server, w wrkSpec) (float64, error) {
	base, err := s.fds()
	if err != nil {
		return 0, err
	}
	res, cpu, err := b.wrk(s, w)
	if err != nil {
		return 0, err
	}
	b.recordWrk(label, row, key, s, res, cpu)
	return res.ReqPerSec, b.settle(label, s, base, row)
}

// perCPURun runs wrk on s for a comparison of ours with itself and returns
// the requests per server CPU-second, with the run's errors flagged.
func (b *bench) perCPURun(label, row, what string, s *server, w wrkSpec) (float64, error) {
	base, err := s.fds()
	if err != nil {
		return 0, err
	}
	res, cpu, err := b.wrk(s, w)
	if err != nil {
		return 0, err
	}
	perCPU := 0.0
	if cpu > 0 {
		perCPU = float64(res.Requests) / cpu
	}
	progress("%s (%s) %s: %s req/s, %s requests per CPU-second%s",
		label, row, what, formatNumber(res.ReqPerSec), formatNumber(perCPU), b.flagWrk(label, row, row, what, s, res))
	return perCPU, b.settle(label, s, base, row)
}

// abRow runs a comparison of ours with itself: a and b, each a wrk run
// returning requests per CPU-second, back to back, a first in the row's
// odd rounds r and b first in its even ones so that neither always has
// the warmer machine. It records key.a, key.b and their ratio b/a for the
// round.
func (b *bench) abRow(r int, key string, a, bRun func() (float64, error)) error {
	runs := []func() (float64, error){a, bRun}
	if r%2 == 0 {
		runs = []func() (float64, error){bRun, a}
	}
	var got [2]float64
	for i, run := range runs {
		v, err := run()
		if err != nil {
			return err
		}
		got[i] = v
	}
	if r%2 == 0 {
		got[0], got[1] = got[1], got[0]
	}
	b.res.add(key+".a", oursName, got[0])
	b.res.add(key+".b", oursName, got[1])
	if got[0] > 0 {
		b.res.add(key+".ratio", oursName, got[1]/got[0])
	}
	return nil
}

// downloadRow runs row (ii): the big file with curl from clientCPU, the
// server's RSS sampled every 50 ms for its peak, and its CPU time.
func (b *bench) downloadRow(label string, s *server) error {
	base, err := s.fds()
	if err != nil {
		return err
	}
	peak := harness.SampleRSS(s.PID(), 50*time.Millisecond)
	var out string
	cpu, err := cpuDuring(s, func() error {
		var err error
		out, err = b.procs.run("curl", 10*time.Minute, b.tools.taskset, "-c", strconv.Itoa(clientCPU),
			b.tools.curl, "-sS", "-o", "/dev/null", "-w", curlFormat, "http://"+s.addr()+"/"+bigFile)
		return err
	})
	rss := peak()
	if err != nil {
		return err
	}
	if err := s.alive(); err != nil {
		return err
	}
	c, err := parseCurl(out)
	if err != nil {
		return err
	}
	mbps := c.BytesPerSec / 1e6
	b.res.add("ii.mbps", s.name, mbps)
	b.res.add("ii.rss", s.name, float64(rss)/(1<<20))
	b.res.add("ii.cpu", s.name, cpu)
	msg := fmt.Sprintf("%s (ii) %-8s %s MB/s, peak RSS %s MiB, %s CPU s",
		label, s.label, formatNumber(mbps), formatNumber(float64(rss)/(1<<20)), formatNumber(cpu))
	if c.Status != 200 || c.Size != b.o.bigSize {
		e := fmt.Sprintf("status %d with %s of %s bytes", c.Status, formatCount(int(c.Size)), formatCount(int(b.o.bigSize)))
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (ii): %s", label, s.label, e), "ii")
		msg += " — " + e
	}
	progress("%s", msg)
	return b.settle(label, s, base, "ii")
}

// acceptTimeout bounds a burst: a server that has not taken every
// connection by then gets no figure for the round, and a note.
const acceptTimeout = 3 * time.Minute

// burstWorkers is how many goroutines dial a burst.
const burstWorkers = 8

// connsRow runs rows (iv), (v) and (vi), which share one burst of idle
// connections: idle CPU without them, RSS before, the burst and the time
// until the server holds every connection, RSS after, idle CPU with them.
func (b *bench) connsRow(label string, s *server) error {
	// After the earlier rows a server's RSS includes memory kept for reuse
	// (a Go heap grown during the download, buffers nginx keeps), which a
	// difference of two RSS readings would mix with what idle connections
	// cost. So every server starts afresh for these rows.
	if b.due["iv"] {
		if err := s.restart(b.o.conns); err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
	}
	pid, n := s.PID(), b.o.conns
	if b.due["v"] {
		pct, err := familyCPUPercent(pid, b.o.idle)
		if err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
		b.res.add("v.idle", s.name, pct)
		progress("%s (v)   %-8s idle CPU %s%% without connections", label, s.label, formatNumber(pct))
	}
	rssIdle, err := harness.RSS(pid)
	if err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	base, err := s.fds()
	if err != nil {
		return err
	}

	start := time.Now()
	conns, accept, err := burst(s, base+n, n, nil)
	defer resetAll(conns) // for the error paths; the others reset before settle, and a second close is harmless
	if err != nil {
		if aerr := s.alive(); aerr != nil {
			return aerr
		}
		b.res.flag(s.name, fmt.Sprintf("%s, %s, rows (iv)–(vi): %v after %.1f s", label, s.label, err, time.Since(start).Seconds()), "iv", "v", "vi")
		progress("%s (vi)  %-8s failed: %v", label, s.label, err)
		resetAll(conns)
		return b.settle(label, s, base, "iv", "v", "vi")
	}
	rssConns, err := harness.RSS(pid)
	if err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	b.res.add("iv.rss_idle", s.name, float64(rssIdle)/(1<<20))
	b.res.add("iv.rss_conns", s.name, float64(rssConns)/(1<<20))
	perConn := float64(rssConns-rssIdle) / float64(n)
	b.res.add("iv.per_conn", s.name, perConn)
	b.res.add("vi.accept", s.name, accept.Seconds())
	progress("%s (iv)  %-8s RSS %s MiB idle, %s MiB with %s connections: %s bytes each",
		label, s.label, formatNumber(float64(rssIdle)/(1<<20)), formatNumber(float64(rssConns)/(1<<20)),
		formatCount(n), formatNumber(perConn))
	progress("%s (vi)  %-8s %s s to accept %s connections", label, s.label, formatNumber(accept.Seconds()), formatCount(n))

	if b.due["v"] {
		pct, err := familyCPUPercent(pid, b.o.idle)
		if err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
		b.res.add("v.idle_conns", s.name, pct)
		progress("%s (v)   %-8s idle CPU %s%% with %s connections", label, s.label, formatNumber(pct), formatCount(n))
		if fds, err := s.fds(); err == nil && fds < base+n {
			b.res.flag(s.name, fmt.Sprintf("%s, %s, row (v): the server closed %s of the idle connections during the window",
				label, s.label, formatCount(base+n-fds)), "v")
		}
	}
	resetAll(conns)
	return b.settle(label, s, base, "iv", "v", "vi")
}

// settleTime is how long a server gets, after a run, to close what the
// run opened; fdSlack is how many more fds than before it may then hold
// without counting as a leak (a log file reopened, a cached file).
const (
	settleTime = 5 * time.Second
	fdSlack    = 8
)

// settle waits until the server holds no more fds than before the run
// (base). One that still holds more after settleTime has leaked them: every
// later run would pay for them, and leaked sockets keep the ephemeral ports
// the proxies' upstream connections need, slowing every proxy row. So the
// rows are flagged and the server restarted on a new port.
func (b *bench) settle(label string, s *server, base int, rows ...string) error {
	fds := 0
	err := harness.WaitFor(settleTime, func() error {
		if err := s.alive(); err != nil {
			return harness.Permanent(err)
		}
		n, err := s.fds()
		if err != nil {
			return harness.Permanent(err)
		}
		fds = n
		if n > base+fdSlack {
			return fmt.Errorf("%s holds %d fds, %d before the run", s.label, n, base)
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if fds <= base+fdSlack {
		return err
	}
	what := formatCount(fds-base) + " more fds than before it"
	if states := socketStates(s.PID()); states != "" {
		what += " (its sockets: " + states + ")"
	}
	var names []string
	for _, r := range rows {
		names = append(names, "("+r+")")
	}
	note := fmt.Sprintf("%s, %s, row %s: %v after the run the server still held %s; restarted on a new port so that later runs do not pay for them",
		label, s.label, strings.Join(names, ", "), settleTime, what)
	b.res.flag(s.name, note, rows...)
	progress("%s", note)
	return s.restart(b.o.conns)
}

// socketStates counts the TCP sockets of the process and its children by
// state, such as "14,402 CLOSE-WAIT, 1 LISTEN", to say what a leak is made
// of.
func socketStates(pid int) string {
	inodes := map[string]bool{}
	for _, p := range family(pid) {
		targets, err := harness.FDTargets(p)
		if err != nil {
			continue
		}
		for _, t := range targets {
			if inode, ok := strings.CutPrefix(t, "socket:["); ok {
				inodes[strings.TrimSuffix(inode, "]")] = true
			}
		}
	}
	sockets, _ := harness.TCPSockets()
	counts := map[string]int{}
	for _, s := range sockets {
		if inodes[s.Inode] {
			counts[s.State]++
		}
	}
	states := slices.Collect(maps.Keys(counts))
	slices.SortFunc(states, func(a, b string) int { return counts[b] - counts[a] })
	var parts []string
	for _, state := range states {
		parts = append(parts, formatCount(counts[state])+" "+state)
	}
	return strings.Join(parts, ", ")
}

// resetAll closes the connections with a reset rather than a FIN, so that
// neither side keeps thousands of sockets in TIME_WAIT into the next row.
// Closing one twice only returns an error, which nobody needs.
func resetAll(conns []*net.TCPConn) {
	for _, c := range conns {
		harness.Reset(c)
	}
}

// burst opens n connections to the server as fast as burstWorkers
// goroutines can dial, each sending hello (if any) once connected, and
// returns them with the time from the first connect until the server
// holds want fds. The client's connect returns when the handshake is done,
// but the server holds a connection only once it has accepted it, so the
// server's fd count is what ends the clock.
func burst(s *server, want, n int, hello []byte) ([]*net.TCPConn, time.Duration, error) {
	type dialed struct {
		conns []*net.TCPConn
		err   error
	}
	result := make(chan dialed, 1)
	start := time.Now()
	go func() {
		conns, err := dialBurst(s.addr(), n, burstWorkers, hello)
		result <- dialed{conns, err}
	}()
	var got *dialed
	for {
		fds, err := s.fds()
		if err != nil {
			d := <-result
			return d.conns, 0, err
		}
		if fds >= want {
			elapsed := time.Since(start)
			if got == nil {
				d := <-result
				got = &d
			}
			return got.conns, elapsed, got.err
		}
		if got == nil {
			select {
			case d := <-result:
				got = &d
				if d.err != nil {
					return d.conns, 0, d.err
				}
			default:
			}
		}
		if time.Since(start) > acceptTimeout {
			if got == nil {
				d := <-result
				got = &d
			}
			return got.conns, 0, fmt.Errorf("the server held %d of %d connections after %v", fds-(want-n), n, acceptTimeout)
		}
		// Listing ten thousand fds takes milliseconds of the CPU the
		// dialers run on, so look only every 10 ms.
		time.Sleep(10 * time.Millisecond)
	}
}

// dialer is how every client connection of the bench dials. No keep-alive
// probes: 10,000 connections probing every 15 s would be traffic in the
// idle-CPU windows.
var dialer = net.Dialer{Timeout: time.Minute, KeepAlive: -1}

// dialBurst dials n connections from workers goroutines, each in a tight
// loop, writing hello on each. It returns every connection that opened and
// the first error.
func dialBurst(addr string, n, workers int, hello []byte) ([]*net.TCPConn, error) {
	var (
		mu    sync.Mutex
		all   = make([]*net.TCPConn, 0, n)
		errs  []error
		wg    sync.WaitGroup
		share = n / workers
	)
	for w := range workers {
		count := share
		if w < n%workers {
			count++
		}
		wg.Go(func() {
			mine := make([]*net.TCPConn, 0, count)
			var err error
			for range count {
				var c net.Conn
				if c, err = dialer.Dial("tcp4", addr); err != nil {
					break
				}
				mine = append(mine, c.(*net.TCPConn))
				if len(hello) > 0 {
					if _, err = c.Write(hello); err != nil {
						break
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, mine...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return all, fmt.Errorf("%d of %d dialers failed, first: %w", len(errs), workers, errs[0])
	}
	return all, nil
}

// listenBacklog returns the backlog of the socket listening on addr, as ss
// reports it (Send-Q of a listening socket), or "" if ss is not there.
func (b *bench) listenBacklog(addr string) string {
	ss := findTool("ss")
	if ss == "" {
		return ""
	}
	out, err := b.procs.run("ss", 10*time.Second, ss, "-ltnH")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "LISTEN" && f[3] == addr {
			return f[2]
		}
	}
	return ""
}
