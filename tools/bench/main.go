// Bench measures the finished server, stage 17 ("ours"), side by side with
// nginx and Go's net/http on this machine, in one run, and prints a
// markdown table of each quantity's median over the rounds with its
// min–max, and ours divided by each peer. This is how the repository judges
// performance: against peers, on the same machine, at the same moment —
// never as a timed assertion in make test. Nothing logs per
// request: nginx runs with access_log off, ours with XPS_LOG=error,warning.
//
// Usage:
//
//	bench [-rounds 4] [-duration 10s] [-idle 30s] [-conns 10000] [-big-mib 1024]
//	      [-rows i,ii,iii,iv,v,vi] [-quick] [-json tools/bench/results/latest.json]
//
// or make bench, with BENCHFLAGS for the flags. A full run takes about a
// quarter of an hour; -quick (2 rounds, 3 s of wrk, 5 s idle windows, 1,000
// connections, a 256 MiB file) is a smoke run of a minute or two.
//
// The rows, each measured for nginx, net/http and ours one after the other,
// round after round, so that a drift of the machine hits all three alike:
//
//	(i)   a 1 KiB file under wrk -t2 -c50 -H 'Connection: close' for -duration:
//	      req/s, the server's CPU seconds, requests per server CPU-second;
//	      a run in which wrk counts errors is flagged ⚠.
//	(ii)  a 1 GiB file (random bytes) downloaded with curl: MB/s (10⁶ bytes),
//	      the server's peak RSS sampled every 50 ms, its CPU seconds.
//	(iii) the reverse proxy: wrk as in (i) on /proxy/100b.txt, relayed to an
//	      nginx upstream with one upstream connection per request (nginx's
//	      proxy_pass default, which net/http's proxy here and stage 17 match).
//	      The CPU counted is the measured server's own, not the upstream's.
//	(iv)  memory per idle connection: RSS idle, then with -conns idle TCP
//	      connections open, read once the server holds them all (its
//	      /proc/PID/fd count); bytes per connection is the difference / -conns.
//	(v)   idle CPU over -idle, without and with those connections, as a
//	      percentage of one CPU.
//	(vi)  the time from the first connect of a burst of -conns connections
//	      (8 goroutines dialling without pause) until the server holds all
//	      of them. A listen backlog smaller than the burst makes the kernel
//	      drop SYNs, which the client resends 1 s later, then 2 s after
//	      that: the wait is part of what is measured, and the backlogs are
//	      printed. On a small machine the dialling client is often the
//	      limit; compare the servers with each other, not with a clock.
//
// Pinning: each server runs alone on CPU 0 (taskset -c 0) as one process
// with one thread of work: nginx with master_process off and one worker,
// net/http with GOMAXPROCS=1, ours with its single event loop. wrk, curl,
// the idle-connection client (this process, whose threads are all moved to
// CPU 1 at start-up) and the nginx upstream of row (iii) run on CPU 1, so
// the load generator never takes the server's CPU and every server is held
// to the same single core. Servers inherit this process's open-file limit,
// raised to 65,536, or only to the hard limit where raising that is not
// allowed (no CAP_SYS_RESOURCE); the report says which.
//
// Reading the figures: raw requests per second on a virtual or shared
// machine swing by up to 2× between runs, with the speed of the client
// side, the loopback and the hypervisor. The server's own CPU time
// (utime+stime from /proc/PID/stat) is read around every run, and requests
// per server CPU-second — the requests wrk completed divided by the CPU
// seconds the server spent on them — is the work the server does per
// request, whatever the load generator managed: it is the stable figure to
// compare servers by; req/s is a sanity check. For quantities where lower
// is better (CPU, RSS, seconds) the name says so, and the ratio is still
// ours/peer, so 0.8× there means ours used less.
//
// Leaks: after every run the bench waits up to 5 s for the server to hold
// no more fds than before it. A server that still holds more has leaked
// them (the note says in which TCP states); the run is flagged ⚠ and the
// server restarted on a new port, because leaked sockets would slow every
// later run of that server and, holding ephemeral ports, the upstream
// connections of all three servers in row (iii).
//
// The bench stops every process it started, by PID, on success, on error
// and on SIGINT or SIGTERM (exit status 130), and checks at the end that
// none is left. If nginx, wrk or curl is missing it installs them with
// apt-get (nginx-light, wrk, curl) without starting the system's nginx.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"expserver-go/tests/harness"
	"expserver-go/tools/internal/cli"

	"golang.org/x/sys/unix"
)

// allRows are the rows in table order.
var allRows = []string{"i", "ii", "iii", "iv", "v", "vi"}

type options struct {
	rounds   int
	duration time.Duration
	idle     time.Duration
	conns    int
	bigSize  int64
	rows     map[string]bool
	jsonPath string
	quick    bool

	fileLimit uint64 // the open-file limit the bench and its servers got
}

// rowList returns the selected rows in table order.
func (o options) rowList() []string {
	var out []string
	for _, r := range allRows {
		if o.rows[r] {
			out = append(out, r)
		}
	}
	return out
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(cli.Status(err))
	}
	if err := run(o, os.Stdout); err != nil {
		if interrupted.Load() {
			// The signal handler is stopping everything and will exit
			// 130; what failed here failed because of it.
			select {}
		}
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// interrupted is set when SIGINT or SIGTERM arrives.
var interrupted atomic.Bool

// The -quick sizes, used for every flag not given explicitly.
const (
	quickRounds   = 2
	quickDuration = 3 * time.Second
	quickIdle     = 5 * time.Second
	quickConns    = 1000
	quickBigMiB   = 256
)

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	var rows string
	var bigMiB int
	fs := cli.NewFlagSet("bench", out,
		"usage: bench [-rounds N] [-duration D] [-idle D] [-conns N] [-big-mib N] [-rows i,ii,…] [-quick] [-json FILE]",
		"\nMeasures stage 17 beside nginx and net/http, each pinned to CPU 0, and prints a markdown table.")
	fs.IntVar(&o.rounds, "rounds", 4, "how many `rounds` of every row (the table shows the median and min–max)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each wrk run lasts (rows i and iii), whole seconds")
	fs.DurationVar(&o.idle, "idle", 30*time.Second, "the idle-CPU window of row v")
	fs.IntVar(&o.conns, "conns", 10000, "the idle connections of rows iv–vi")
	fs.IntVar(&bigMiB, "big-mib", 1024, "the size of the download of row ii, in `MiB`")
	fs.StringVar(&rows, "rows", strings.Join(allRows, ","), "the rows to run, comma-separated")
	fs.BoolVar(&o.quick, "quick", false, fmt.Sprintf("a smoke run: %d rounds, %v of wrk, %v idle, %d connections, %d MiB, unless set otherwise",
		quickRounds, quickDuration, quickIdle, quickConns, quickBigMiB))
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to `file` (default tools/bench/results/latest.json)")
	err := cli.Parse(fs, args, func() error {
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		if o.quick {
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			if !set["rounds"] {
				o.rounds = quickRounds
			}
			if !set["duration"] {
				o.duration = quickDuration
			}
			if !set["idle"] {
				o.idle = quickIdle
			}
			if !set["conns"] {
				o.conns = quickConns
			}
			if !set["big-mib"] {
				bigMiB = quickBigMiB
			}
		}
		o.bigSize = int64(bigMiB) << 20
		var err error
		if o.rows, err = parseRows(rows); err != nil {
			return err
		}
		switch {
		case o.rounds < 1:
			return fmt.Errorf("-rounds: want at least 1, got %d", o.rounds)
		case o.duration < time.Second || o.duration%time.Second != 0:
			return fmt.Errorf("-duration: want whole seconds, at least 1s, got %v", o.duration)
		case o.idle <= 0:
			return fmt.Errorf("-idle: want a positive duration, got %v", o.idle)
		case o.conns < burstWorkers:
			return fmt.Errorf("-conns: want at least %d, got %d", burstWorkers, o.conns)
		case bigMiB < 1:
			return fmt.Errorf("-big-mib: want at least 1, got %d", bigMiB)
		}
		return nil
	})
	return o, err
}

// parseRows reads a comma-separated list of row numerals.
func parseRows(s string) (map[string]bool, error) {
	rows := map[string]bool{}
	for _, r := range strings.Split(s, ",") {
		r = strings.ToLower(strings.TrimSpace(r))
		if !slices.Contains(allRows, r) {
			return nil, fmt.Errorf("-rows: unknown row %q (rows are %s)", r, strings.Join(allRows, ","))
		}
		rows[r] = true
	}
	return rows, nil
}

// run prepares the machine, runs the rounds and reports. Whatever happens,
// every process it started is stopped and the temp dir removed before it
// returns; a signal does the same and exits 130.
func run(o options, out io.Writer) (err error) {
	t, err := ensureTools()
	if err != nil {
		return err
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		return err
	}
	if !cpus.IsSet(serverCPU) || !cpus.IsSet(clientCPU) {
		return errors.New("the bench needs CPUs 0 and 1: the servers on one, the load generators on the other")
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("raise the open-file limit: %w", err)
	}
	if limit < uint64(o.conns)+1000 {
		return fmt.Errorf("the open-file limit is %d, too low for %d connections (run as root, or raise the hard limit)", limit, o.conns)
	}
	o.fileLimit = limit
	if limit < nofile {
		progress("open-file limit %s: the hard limit, since raising it to %s needs CAP_SYS_RESOURCE", formatCount(int(limit)), formatCount(nofile))
	}
	if o.jsonPath == "" {
		root, err := harness.RepoRoot()
		if err != nil {
			return err
		}
		o.jsonPath = filepath.Join(root, "tools", "bench", "results", "latest.json")
	}

	// Built before the bench pins itself to one CPU, so the builds use both.
	progress("building stage 17 and tools/bench/gohttp")
	oursBin, err := harness.BuildStage(17)
	if err != nil {
		return err
	}
	goBin, err := harness.Build("tools/bench/gohttp")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "xps-bench-")
	if err != nil {
		return err
	}
	ps := &procSet{}
	cleanup := func() {
		ps.stopAll()
		os.RemoveAll(tmp)
		harness.RemoveBuilds()
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		interrupted.Store(true)
		fmt.Fprintf(os.Stderr, "\nbench: %v: stopping every process it started\n", sig)
		cleanup()
		if err := ps.verifyGone(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
		os.Exit(130)
	}()
	defer func() {
		signal.Stop(signals)
		cleanup()
		if verr := ps.verifyGone(); verr != nil {
			err = errors.Join(err, verr)
		} else {
			progress("all %d processes it started have exited; temp dir removed", ps.count())
		}
	}()

	root := filepath.Join(tmp, "www")
	progress("writing the web root in %s (%s file of random bytes)", root, sizeLabel(o.bigSize))
	if err := makeWebRoot(root, o.bigSize); err != nil {
		return err
	}
	if err := pinSelf(clientCPU); err != nil {
		return fmt.Errorf("pin the bench to CPU %d: %w", clientCPU, err)
	}
	b := &bench{o: o, tools: t, procs: ps, res: newResults()}
	if err := b.startServers(tmp, root, oursBin, goBin); err != nil {
		return err
	}
	m := describeMachine(func(bin string, args ...string) string {
		out, _ := ps.run(filepath.Base(bin), 10*time.Second, bin, args...)
		return out
	}, t)
	backlogs := map[string]string{}
	for _, s := range b.servers {
		backlogs[s.name] = b.listenBacklog(s.addr())
	}

	started := time.Now()
	for r := 1; r <= o.rounds; r++ {
		progress("round %d/%d (%s elapsed)", r, o.rounds, time.Since(started).Round(time.Second))
		if err := b.round(r); err != nil {
			return err
		}
	}

	lines := b.res.lines(quantities(o))
	writeReport(out, m, o, lines, b.res.notes, backlogs)
	if err := writeJSON(o.jsonPath, buildJSON(m, o, lines, b.res.notes)); err != nil {
		return err
	}
	progress("results written to %s", o.jsonPath)
	return nil
}

// startServers starts the upstream and the three measured servers.
func (b *bench) startServers(tmp, root, oursBin, goBin string) error {
	up := nginxServer(b.procs, b.tools, "upstream nginx", tmp, root, 0, clientCPU)
	if err := up.start(0); err != nil {
		return err
	}
	upPort := up.port
	b.servers = []*server{
		nginxServer(b.procs, b.tools, nginxName, tmp, root, upPort, serverCPU),
		goServer(b.procs, b.tools, goBin, tmp, root, upPort),
		oursServer(b.procs, b.tools, oursBin, tmp, root, upPort),
	}
	for _, s := range b.servers {
		if err := s.start(b.o.conns); err != nil {
			return err
		}
		progress("%-8s pid %d on %s, pinned to CPU %d", s.name, s.PID(), s.addr(), s.cpu)
	}
	return nil
}

// writeReport prints the machine, the settings, the table and the notes
// as markdown.
func writeReport(w io.Writer, m machine, o options, lines []line, notes []string, backlogs map[string]string) {
	fmt.Fprintf(w, "\n**Machine:** %s, %d CPUs · %s · %s · %s · %s · %s\n\n", m.CPU, m.CPUs, m.Kernel, m.Go, m.Nginx, m.Wrk, m.Curl)
	fmt.Fprintf(w, "**Run:** %d rounds · wrk %v, 2 threads, 50 connections, Connection: close · idle windows %v · %s connections · %s download · "+
		"each server alone on CPU %d, load generators and the upstream on CPU %d · open-file limit %s\n\n",
		o.rounds, o.duration, o.idle, formatCount(o.conns), sizeLabel(o.bigSize), serverCPU, clientCPU, formatCount(int(o.fileLimit)))
	fmt.Fprint(w, markdownTable(lines))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Median over rounds, (min–max); ratios compare medians. Requests per server CPU-second is the figure "+
		"to compare: req/s on this machine can swing 2× between runs.")
	if o.rows["vi"] {
		var parts []string
		for _, name := range serverNames {
			if bl := backlogs[name]; bl != "" {
				parts = append(parts, name+" "+bl)
			}
		}
		fmt.Fprintf(w, "\n(vi) A listen backlog smaller than the burst makes the kernel drop SYNs, which the client retries "+
			"after 1 s: that wait is part of what is measured. Listen backlogs: %s.\n", strings.Join(parts, ", "))
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\n⚠ Flagged runs:")
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
	fmt.Fprintln(w)
}
