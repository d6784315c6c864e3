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
	o       options
	tools   toolPaths
	procs   *procSet
	servers []*server // in serverNames order
	res     *results
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// round measures every selected row, each for the three servers one after
// the other, so that the servers' figures for a row are minutes apart at
// most and a drift of the machine hits all three alike.
func (b *bench) round(r int) error {
	label := fmt.Sprintf("round %d/%d", r, b.o.rounds)
	rows := b.o.rows
	steps := []struct {
		on  bool
		run func(*server) error
	}{
		{rows["i"], func(s *server) error { return b.wrkRow(label, "i", s, "/"+smallFile) }},
		{rows["ii"], func(s *server) error { return b.downloadRow(label, s) }},
		{rows["iii"], func(s *server) error { return b.wrkRow(label, "iii", s, "/proxy/"+tinyFile) }},
		{rows["iv"] || rows["v"] || rows["vi"], func(s *server) error { return b.connsRow(label, s) }},
	}
	for _, step := range steps {
		if !step.on {
			continue
		}
		for _, s := range b.servers {
			if err := step.run(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// cpuDuring returns the CPU seconds the server used while f ran.
func cpuDuring(s *server, f func() error) (float64, error) {
	before, err := harness.CPUTime(s.PID())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	if err := f(); err != nil {
		return 0, err
	}
	after, err := harness.CPUTime(s.PID())
	if err != nil {
		return 0, fmt.Errorf("%s: %w%s", s.name, err, logTail(s.Output(), s.logPath))
	}
	return (after - before).Seconds(), nil
}

// wrkRow runs rows (i) and (iii): wrk from clientCPU, a new connection per
// request, and the server's CPU time around it.
func (b *bench) wrkRow(label, row string, s *server, path string) error {
	base, err := harness.FDCount(s.PID())
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	var out string
	cpu, err := cpuDuring(s, func() error {
		var err error
		out, err = b.procs.run("wrk", b.o.duration+time.Minute, b.tools.taskset, "-c", strconv.Itoa(clientCPU),
			b.tools.wrk, "-t2", "-c50", fmt.Sprintf("-d%ds", int(b.o.duration.Seconds())),
			"-H", "Connection: close", "http://"+s.addr()+path)
		return err
	})
	if err != nil {
		return err
	}
	if err := s.alive(); err != nil {
		return err
	}
	w, err := parseWrk(out)
	if err != nil {
		return err
	}
	b.res.add(row+".rps", s.name, w.ReqPerSec)
	b.res.add(row+".cpu", s.name, cpu)
	perCPU := 0.0
	if cpu > 0 {
		perCPU = float64(w.Requests) / cpu
		b.res.add(row+".per_cpu", s.name, perCPU)
	}
	msg := fmt.Sprintf("%s (%s) %-8s %s req/s, %s CPU s, %s requests per CPU-second",
		label, row, s.name, formatNumber(w.ReqPerSec), formatNumber(cpu), formatNumber(perCPU))
	if e := w.ErrorSummary(); e != "" {
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (%s): wrk counted %s among %s requests",
			label, s.name, row, e, formatCount(int(w.Requests))), row)
		msg += " — errors: " + e
	}
	progress("%s", msg)
	return b.settle(label, s, base, row)
}

// downloadRow runs row (ii): the big file with curl from clientCPU, the
// server's RSS sampled every 50 ms for its peak, and its CPU time.
func (b *bench) downloadRow(label string, s *server) error {
	base, err := harness.FDCount(s.PID())
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
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
		label, s.name, formatNumber(mbps), formatNumber(float64(rss)/(1<<20)), formatNumber(cpu))
	if c.Status != 200 || c.Size != b.o.bigSize {
		e := fmt.Sprintf("status %d with %s of %s bytes", c.Status, formatCount(int(c.Size)), formatCount(int(b.o.bigSize)))
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (ii): %s", label, s.name, e), "ii")
		msg += " — " + e
	}
	progress("%s", msg)
	return b.settle(label, s, base, "ii")
}

// acceptTimeout bounds row (vi): a server that has not taken every
// connection by then gets no figure for the round, and a note.
const acceptTimeout = 3 * time.Minute

// burstWorkers is how many goroutines dial the burst of row (vi).
const burstWorkers = 8

// connsRow runs rows (iv), (v) and (vi), which share one burst of idle
// connections: idle CPU without them, RSS before, the burst and the time
// until the server holds every connection, RSS after, idle CPU with them.
func (b *bench) connsRow(label string, s *server) error {
	// After the earlier rows a server's RSS includes memory kept for reuse
	// (a Go heap grown during the download, buffers nginx keeps), which a
	// difference of two RSS readings would mix with what idle connections
	// cost. So every server starts afresh for these rows.
	if b.o.rows["iv"] {
		if err := s.restart(b.o.conns); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	pid, n := s.PID(), b.o.conns
	if b.o.rows["v"] {
		pct, err := idleCPU(pid, b.o.idle)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.res.add("v.idle", s.name, pct)
		progress("%s (v)   %-8s idle CPU %s%% without connections", label, s.name, formatNumber(pct))
	}
	rssIdle, err := harness.RSS(pid)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	base, err := harness.FDCount(pid)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}

	start := time.Now()
	conns, accept, err := burst(s.addr(), pid, base+n, n)
	defer resetAll(conns) // for the error paths; the others reset before settle, and a second close is harmless
	if err != nil {
		if aerr := s.alive(); aerr != nil {
			return aerr
		}
		b.res.flag(s.name, fmt.Sprintf("%s, %s, rows (iv)–(vi): %v after %.1f s", label, s.name, err, time.Since(start).Seconds()), "iv", "v", "vi")
		progress("%s (vi)  %-8s failed: %v", label, s.name, err)
		resetAll(conns)
		return b.settle(label, s, base, "iv", "v", "vi")
	}
	rssConns, err := harness.RSS(pid)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	b.res.add("iv.rss_idle", s.name, float64(rssIdle)/(1<<20))
	b.res.add("iv.rss_conns", s.name, float64(rssConns)/(1<<20))
	perConn := float64(rssConns-rssIdle) / float64(n)
	b.res.add("iv.per_conn", s.name, perConn)
	b.res.add("vi.accept", s.name, accept.Seconds())
	progress("%s (iv)  %-8s RSS %s MiB idle, %s MiB with %s connections: %s bytes each",
		label, s.name, formatNumber(float64(rssIdle)/(1<<20)), formatNumber(float64(rssConns)/(1<<20)),
		formatCount(n), formatNumber(perConn))
	progress("%s (vi)  %-8s %s s to accept %s connections", label, s.name, formatNumber(accept.Seconds()), formatCount(n))

	if b.o.rows["v"] {
		pct, err := idleCPU(pid, b.o.idle)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.res.add("v.idle_conns", s.name, pct)
		progress("%s (v)   %-8s idle CPU %s%% with %s connections", label, s.name, formatNumber(pct), formatCount(n))
		if fds, err := harness.FDCount(pid); err == nil && fds < base+n {
			b.res.flag(s.name, fmt.Sprintf("%s, %s, row (v): the server closed %s of the idle connections during the window",
				label, s.name, formatCount(base+n-fds)), "v")
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
// the proxies' upstream connections need, slowing all three servers' row
// (iii). So the rows are flagged and the server restarted on a new port.
func (b *bench) settle(label string, s *server, base int, rows ...string) error {
	fds := 0
	err := harness.WaitFor(settleTime, func() error {
		if err := s.alive(); err != nil {
			return harness.Permanent(err)
		}
		n, err := harness.FDCount(s.PID())
		if err != nil {
			return harness.Permanent(err)
		}
		fds = n
		if n > base+fdSlack {
			return fmt.Errorf("%s holds %d fds, %d before the run", s.name, n, base)
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
		label, s.name, strings.Join(names, ", "), settleTime, what)
	b.res.flag(s.name, note, rows...)
	progress("%s", note)
	return s.restart(b.o.conns)
}

// socketStates counts the process's TCP sockets by state, such as
// "14,402 CLOSE-WAIT, 1 LISTEN", to say what a leak is made of.
func socketStates(pid int) string {
	targets, err := harness.FDTargets(pid)
	if err != nil {
		return ""
	}
	inodes := map[string]bool{}
	for _, t := range targets {
		if inode, ok := strings.CutPrefix(t, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
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

// idleCPU returns the CPU the process uses over window, as a percentage of
// one CPU.
func idleCPU(pid int, window time.Duration) (float64, error) {
	m, err := harness.StartCPUMeter(pid)
	if err != nil {
		return 0, err
	}
	// The window is the measurement itself: nothing is awaited.
	time.Sleep(window)
	pct, _, err := m.Percent()
	return pct, err
}

// burst opens n connections to addr as fast as burstWorkers goroutines can
// dial, and returns them with the time from the first connect until the
// process pid holds want fds. The client's connect returns when the
// handshake is done, but the server holds a connection only once it has
// accepted it, so the server's fd count is what ends the clock.
func burst(addr string, pid, want, n int) ([]*net.TCPConn, time.Duration, error) {
	type dialed struct {
		conns []*net.TCPConn
		err   error
	}
	result := make(chan dialed, 1)
	start := time.Now()
	go func() {
		conns, err := dialBurst(addr, n, burstWorkers)
		result <- dialed{conns, err}
	}()
	var got *dialed
	for {
		fds, err := harness.FDCount(pid)
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

// dialBurst dials n connections from workers goroutines, each in a tight
// loop. It returns every connection that opened and the first error.
func dialBurst(addr string, n, workers int) ([]*net.TCPConn, error) {
	// No keep-alive probes: 10,000 connections probing every 15 s would
	// be traffic in the idle-CPU window.
	d := net.Dialer{Timeout: time.Minute, KeepAlive: -1}
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
				if c, err = d.Dial("tcp4", addr); err != nil {
					break
				}
				mine = append(mine, c.(*net.TCPConn))
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
