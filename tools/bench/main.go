// Bench measures the finished server — the last stage in stages/, or the
// one -stage names ("ours") — side by side with nginx and Go's net/http on
// this machine, in one run, and prints a markdown table of each quantity's
// median over the rounds with its min–max, and ours divided by each peer.
// This is how the repository judges performance: against peers, on the
// same machine, at the same moment — never as a timed assertion in make
// test. Nothing logs per request: nginx runs with access_log off, ours with
// XPS_LOG=error,warning.
//
// Usage:
//
//	bench [-stage N] [-rounds 4] [-row-rounds i=6,…] [-duration 10s] [-idle 30s] [-conns 10000]
//	      [-big-mib 1024] [-slowloris 5000] [-workers 1,2,4] [-rows i,ii,…] [-quick]
//	      [-json FILE] [-md FILE]
//
// or make bench, with BENCHFLAGS for the flags. Nearly all of a run is
// fixed windows: per round, about 26 wrk runs of -duration (the slowloris
// row's 4 last at least 10 s), 8 idle windows of -idle, and a minute of
// bursts, downloads and restarts; on two CPUs with the defaults a round
// of every row takes about 9 minutes, so a full run of 4 rounds about 35.
// -row-rounds gives some rows more rounds than the others (the rows with
// fewer run in rounds spread over the run), such as 6 rounds of rows (i)
// and (iii) and 3 of the rest. -quick (2 rounds, 3 s of wrk, 5 s idle
// windows, 1,000 connections, 256 MiB files) is a smoke run of a few
// minutes. The report printed at the end, markdown, is also written to
// -md (tools/bench/results/latest.md), and the figures with every sample
// as JSON to -json (latest.json beside it).
// XPS_STAGE_N=dir measures the package in dir as stage N, as make test
// does for a stage being written outside stages/.
//
// The rows, each measured for every server one after the other, round
// after round, so that a drift of the machine hits them all alike. Rows
// (i)–(vi) measure nginx, net/http and ours; the later rows measure nginx
// and ours, or ours against itself.
//
//	(i)   a 1 KiB file under wrk -t2 -c50 -H 'Connection: close' for -duration:
//	      req/s, the server's CPU seconds, requests per server CPU-second;
//	      a run in which wrk counts errors is flagged ⚠.
//	(ii)  a 1 GiB file (random bytes) downloaded with curl: MB/s (10⁶ bytes),
//	      the server's peak RSS sampled every 50 ms, its CPU seconds.
//	(iii) the reverse proxy: wrk as in (i) on /proxy/100b.txt, relayed to an
//	      nginx upstream with one upstream connection per request (nginx's
//	      proxy_pass default, which net/http's proxy here and ours match).
//	      The CPU counted is the measured server's own, not the upstream's.
//	(iv)  memory per idle connection: RSS idle, then with -conns idle TCP
//	      connections open, read once the server holds them all (its
//	      /proc/PID/fd count); bytes per connection is the difference / -conns.
//	(v)   idle CPU over -idle, without and with those connections, as a
//	      percentage of one CPU. From stage 21 on every one of them has its
//	      header timer armed.
//	(vi)  the time from the first connect of a burst of -conns connections
//	      (8 goroutines dialling without pause) until the server holds all
//	      of them. A listen backlog smaller than the burst makes the kernel
//	      drop SYNs, which the client resends 1 s later, then 2 s after
//	      that: the wait is part of what is measured, and the backlogs are
//	      printed. On a small machine the dialling client is often the
//	      limit; compare the servers with each other, not with a clock.
//	gzip  a 1 MiB text file with Accept-Encoding: gzip, wrk -t2 -c8: req/s,
//	      CPU seconds, requests per server CPU-second, and the bytes of one
//	      response on the wire, whose decoded body is checked. nginx has
//	      gzip on with the same level (6), gzip_types text/plain, gzip_vary.
//	gzip-big   a -big-mib file of text downloaded with gzip: MB/s of the
//	      file, peak RSS, CPU seconds; the decoded body is checked.
//	acl   ours only: row (i) on a route with an access list against the
//	      same route without, alternated, and the ratio per round.
//	lb    the reverse proxy over three upstreams, round robin, as (iii);
//	      nginx through an upstream block.
//	slowloris  -slowloris connections each sending a request head a byte a
//	      second, reconnecting when closed, while wrk runs (i) for at least
//	      two header timeouts (so every one is closed and replaced at least
//	      once under load): req/s with and without them, and how long each
//	      lived, for ours and nginx with the same 5 s header timeout
//	      (client_header_timeout).
//	timers-idle  -conns idle connections that have each sent part of a
//	      request head, so each holds a started request and an armed
//	      header timer: bytes per connection and idle CPU, as (iv)–(v).
//	timers  ours only: row (i) on stage 20, the last without timers,
//	      against ours with its timers armed, alternated.
//	(vii)–(x), (xii)  at each -workers N that fits (stage 23): nginx with
//	      a master and N workers, ours with "workers": N, each on CPUs
//	      0…N−1, wrk on N…2N−1: (vii) the 1 KiB file, (viii) the gzip row,
//	      (ix) the balanced proxy, with rps(N)/(N·rps(1)) for N > 1; (x) at
//	      N > 1, the largest over the smallest worker's share of accepts
//	      (nginx: of worker CPU time) under wrk -c64; (xii) the seconds from
//	      SIGINT (nginx: SIGTERM, what nginx -s stop sends) to exit with
//	      -conns idle connections.
//	(xi)  ours only (stage 22): row (i) with a 1 Hz /api poller and a
//	      10 Hz /metrics scrape against none, alternated.
//
// A row that needs a lesson the measured stage does not have yet is
// skipped with a message, and so is an N whose 2N CPUs the machine lacks.
// Each row starts with a different server in each of its rounds.
//
// Pinning: each server runs alone on CPU 0 (taskset -c 0) as one process
// with one thread of work: nginx with master_process off and one worker,
// net/http with GOMAXPROCS=1, ours with its single event loop. wrk, curl,
// the connection clients (this process, whose threads are all moved to
// CPU 1 at start-up) and the nginx upstream run on CPU 1, so the load
// generator never takes the server's CPU and every server is held to the
// same single core. Servers inherit this process's open-file limit,
// raised to 65,536, or only to the hard limit where raising that is not
// allowed (no CAP_SYS_RESOURCE); the report says which. Ours admits as
// clients half of what its limit leaves (each may need a second
// descriptor), so under a hard limit of 20,000 a -conns left at its
// default is lowered to 9,000, with a message.
//
// Reading the figures: raw requests per second on a virtual or shared
// machine swing by up to 2× between runs, with the speed of the client
// side, the loopback and the hypervisor. The server's own CPU time
// (utime+stime from /proc/PID/stat, nginx's workers included) is read
// around every run, and requests per server CPU-second — the requests wrk
// completed divided by the CPU seconds the server spent on them — is the
// work the server does per request, whatever the load generator managed:
// it is the stable figure to compare servers by; req/s is a sanity check.
// For quantities where lower is better (CPU, RSS, seconds) the name says
// so, and the ratio is still ours/peer, so 0.8× there means ours used less.
//
// Leaks: after every run the bench waits up to 5 s for the server to hold
// no more fds than before it. A server that still holds more has leaked
// them (the note says in which TCP states); the run is flagged ⚠ and the
// server restarted on a new port, because leaked sockets would slow every
// later run of that server and, holding ephemeral ports, the upstream
// connections of every proxy row.
//
// The bench stops every process it started, by PID, on success, on error
// and on SIGINT or SIGTERM (exit status 130), and checks at the end that
// none is left. If nginx, wrk or curl is missing it installs them with
// apt-get (nginx-light, wrk, curl) without starting the system's nginx.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"expserver-go/tests/harness"
	"expserver-go/tools/internal/cli"
	"expserver-go/tools/internal/stagefs"

	"golang.org/x/sys/unix"
)

// rowInfo is a row the bench can run: its name for -rows, and the first
// stage that has what it measures.
type rowInfo struct {
	id       string
	minStage int
	needs    string // what that stage adds, for the message when it is skipped
}

// rowTable lists the rows in table order.
var rowTable = []rowInfo{
	{"i", 0, ""}, {"ii", 0, ""}, {"iii", 0, ""}, {"iv", 0, ""}, {"v", 0, ""}, {"vi", 0, ""},
	{"gzip", stageGzip, "gzip compression"},
	{"gzip-big", stageGzip, "gzip compression"},
	{"acl", stageACL, "access lists"},
	{"lb", stageBalance, "load balancing"},
	{"slowloris", stageTimers, "the header timeout"},
	{"timers-idle", stageTimers, "timers"},
	{"timers", stageTimers, "timers"},
	{"vii", stageWorkers, "workers"},
	{"viii", stageWorkers, "workers"},
	{"ix", stageWorkers, "workers"},
	{"x", stageWorkers, "workers"},
	{"xi", stageMetrics, "metrics"},
	{"xii", stageWorkers, "workers"},
}

// allRows are the rows' names in table order.
var allRows = func() []string {
	var ids []string
	for _, r := range rowTable {
		ids = append(ids, r.id)
	}
	return ids
}()

// workerRows are the rows measured at each worker count.
var workerRows = []string{"vii", "viii", "ix", "x", "xii"}

type options struct {
	stage     int // 0 until run resolves it: the last stage
	rounds    int
	rowRounds map[string]int // rows with a round count of their own (-row-rounds)
	duration  time.Duration
	idle      time.Duration
	conns     int
	connsSet  bool // -conns was given, so it is not lowered to fit the open-file limit
	slowConns int
	bigSize   int64
	workers   []int // the worker counts asked for
	rows      map[string]bool
	jsonPath  string
	mdPath    string
	quick     bool

	fileLimit    uint64   // the open-file limit the bench and its servers got
	workerCounts []int    // the worker counts this machine has the CPUs for
	skipped      []string // why rows or worker counts were not run
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

// anyRow reports whether any of rows is selected.
func (o options) anyRow(rows ...string) bool {
	return slices.ContainsFunc(rows, func(r string) bool { return o.rows[r] })
}

// roundsOf returns how many rounds row gets: its -row-rounds count, else
// -rounds.
func (o options) roundsOf(row string) int {
	if n, ok := o.rowRounds[row]; ok {
		return n
	}
	return o.rounds
}

// totalRounds returns the rounds of the run: the most any selected row gets.
func (o options) totalRounds() int {
	total := 0
	for _, r := range o.rowList() {
		total = max(total, o.roundsOf(r))
	}
	return total
}

// rowRound reports whether row runs in round r of total and, if it does,
// which of its own rounds that is (1, 2, …). A row with fewer rounds than
// the run has its rounds spread evenly over the run (3 of 6 run in rounds
// 2, 4 and 6) rather than bunched at the start, so that a drift of the
// machine during the run reaches every row.
func (o options) rowRound(row string, r, total int) (int, bool) {
	n := o.roundsOf(row)
	k := r * n / total
	return k, k > (r-1)*n/total
}

// roundsSummary says how many rounds the rows get, for the report.
func (o options) roundsSummary() string {
	total := o.totalRounds()
	var own []string
	for _, r := range o.rowList() {
		if o.roundsOf(r) != total {
			own = append(own, fmt.Sprintf("%s %d", r, o.roundsOf(r)))
		}
	}
	if len(own) == 0 {
		return fmt.Sprintf("%d rounds", total)
	}
	return fmt.Sprintf("%d rounds (fewer for rows %s, spread over the run)", total, strings.Join(own, ", "))
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
	quickRounds    = 2
	quickDuration  = 3 * time.Second
	quickIdle      = 5 * time.Second
	quickConns     = 1000
	quickSlowConns = 1000
	quickBigMiB    = 256
)

// firstStage is the first stage the bench can measure: the first with a
// config that routes files and a proxy.
const firstStage = 17

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	var rows, workers, rowRounds string
	var bigMiB int
	fs := cli.NewFlagSet("bench", out,
		"usage: bench [-stage N] [-rounds N] [-duration D] [-idle D] [-conns N] [-big-mib N] [-slowloris N] [-workers 1,2,4] [-rows i,ii,…] [-quick] [-json FILE]",
		"\nMeasures the last stage beside nginx and net/http, each pinned to its CPUs, and prints a markdown table.")
	fs.IntVar(&o.stage, "stage", 0, "the stage to measure (default the last in stages/)")
	fs.IntVar(&o.rounds, "rounds", 4, "how many `rounds` of every row (the table shows the median and min–max)")
	fs.StringVar(&rowRounds, "row-rounds", "", "rounds for some rows instead of -rounds, as `row=N,…` (i=6,iii=6); a row with fewer rounds than the run runs in rounds spread over it")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each wrk run lasts, whole seconds")
	fs.DurationVar(&o.idle, "idle", 30*time.Second, "the idle-CPU windows of rows v and timers-idle")
	fs.IntVar(&o.conns, "conns", 10000, "the idle connections of rows iv–vi, timers-idle and xii")
	fs.IntVar(&o.slowConns, "slowloris", 5000, "the attacking connections of row slowloris")
	fs.IntVar(&bigMiB, "big-mib", 1024, "the size of the downloads of rows ii and gzip-big, in `MiB`")
	fs.StringVar(&workers, "workers", "1,2,4", "the worker counts of rows vii–x and xii; N runs only on a machine with 2N CPUs")
	fs.StringVar(&rows, "rows", strings.Join(allRows, ","), "the rows to run, comma-separated")
	fs.BoolVar(&o.quick, "quick", false, fmt.Sprintf("a smoke run: %d rounds, %v of wrk, %v idle, %d connections, %d attackers, %d MiB, unless set otherwise",
		quickRounds, quickDuration, quickIdle, quickConns, quickSlowConns, quickBigMiB))
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to `file` (default tools/bench/results/latest.json)")
	fs.StringVar(&o.mdPath, "md", "", "write the report printed at the end, markdown, to `file` too (default tools/bench/results/latest.md)")
	err := cli.Parse(fs, args, func() error {
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		o.connsSet = set["conns"]
		if o.quick {
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
			if !set["slowloris"] {
				o.slowConns = quickSlowConns
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
		if o.workers, err = parseWorkers(workers); err != nil {
			return err
		}
		if o.rowRounds, err = parseRowRounds(rowRounds); err != nil {
			return err
		}
		switch {
		case o.stage != 0 && o.stage < firstStage:
			return fmt.Errorf("-stage: want %d or later, got %d", firstStage, o.stage)
		case o.rounds < 1:
			return fmt.Errorf("-rounds: want at least 1, got %d", o.rounds)
		case o.duration < time.Second || o.duration%time.Second != 0:
			return fmt.Errorf("-duration: want whole seconds, at least 1s, got %v", o.duration)
		case o.idle <= 0:
			return fmt.Errorf("-idle: want a positive duration, got %v", o.idle)
		case o.conns < burstWorkers:
			return fmt.Errorf("-conns: want at least %d, got %d", burstWorkers, o.conns)
		case o.slowConns < burstWorkers:
			return fmt.Errorf("-slowloris: want at least %d, got %d", burstWorkers, o.slowConns)
		case bigMiB < 1:
			return fmt.Errorf("-big-mib: want at least 1, got %d", bigMiB)
		}
		return nil
	})
	return o, err
}

// parseRows reads a comma-separated list of row names.
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

// parseRowRounds reads -row-rounds: comma-separated row=N pairs.
func parseRowRounds(s string) (map[string]int, error) {
	out := map[string]int{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		row, count, ok := strings.Cut(strings.TrimSpace(f), "=")
		row = strings.ToLower(strings.TrimSpace(row))
		n, err := strconv.Atoi(strings.TrimSpace(count))
		switch {
		case !ok || err != nil || n < 1:
			return nil, fmt.Errorf("-row-rounds: %q is not row=N with N at least 1", strings.TrimSpace(f))
		case !slices.Contains(allRows, row):
			return nil, fmt.Errorf("-row-rounds: unknown row %q (rows are %s)", row, strings.Join(allRows, ","))
		}
		out[row] = n
	}
	return out, nil
}

// parseWorkers reads a comma-separated list of worker counts, returned in
// increasing order without repeats.
func parseWorkers(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("-workers: %q is not a worker count (1–1024)", strings.TrimSpace(f))
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// fdHeadroom is what the open-file limit must leave beyond twice the
// connections of a row: for listeners, logs, files, wrk's connections
// and the bench's own descriptors.
const fdHeadroom = 200

// connsFit returns the most connections a row may open under the open-file
// limit. Ours admits at most half of what its limit leaves as clients,
// since each client may need a second descriptor (a file or an upstream
// connection) and a client it could not serve would better wait in the
// accept queue; the rest wait there, and a row would wait for them in vain.
func connsFit(limit uint64) int {
	return max(int(min(limit, 1<<30))-fdHeadroom, 0) / 2
}

// fitConns checks -conns and -slowloris against the open-file limit in
// o.fileLimit. A -conns left at its default is lowered to the largest
// multiple of 1,000 that fits, with a message; one given that does not
// fit is an error, and so is a -slowloris that does not.
func fitConns(o *options) error {
	fit := connsFit(o.fileLimit)
	hint := fmt.Sprintf("the open-file limit is %s, and a server that keeps a descriptor in reserve for each client "+
		"admits about half as many clients: at most %s here (raise the hard limit, or ask for fewer)",
		formatCount(int(o.fileLimit)), formatCount(fit))
	if o.slowConns+100 > fit {
		return fmt.Errorf("-slowloris %d: %s", o.slowConns, hint)
	}
	if o.conns <= fit {
		return nil
	}
	if o.connsSet || fit < 1000 {
		return fmt.Errorf("-conns %d: %s", o.conns, hint)
	}
	old := o.conns
	o.conns = fit / 1000 * 1000
	progress("-conns %s instead of %s: %s", formatCount(o.conns), formatCount(old), hint)
	return nil
}

// stagePackage returns the package of stage n relative to the repository
// root: $XPS_STAGE_N if set, else the stage's folder.
func stagePackage(root string, n int) (string, error) {
	if pkg := os.Getenv(fmt.Sprintf("XPS_STAGE_%d", n)); pkg != "" {
		return filepath.ToSlash(filepath.Clean(pkg)), nil
	}
	dir, err := harness.StageDir(root, n)
	return filepath.ToSlash(dir), err
}

// lastStage returns the number of the last stage folder in stages/.
func lastStage(root string) (int, error) {
	stages, err := stagefs.Stages(root)
	if err != nil {
		return 0, err
	}
	if len(stages) == 0 {
		return 0, errors.New("no stage folders in stages/")
	}
	return stages[len(stages)-1].Num, nil
}

// planRows drops the selected rows the measured stage cannot run and the
// worker counts the machine lacks the CPUs for, saying why in o.skipped.
// prevTimers reports whether stage 20's package exists, for row timers.
func planRows(o *options, allowed unix.CPUSet, prevTimers bool) {
	for _, r := range rowTable {
		if !o.rows[r.id] {
			continue
		}
		switch {
		case o.stage < r.minStage:
			o.skipped = append(o.skipped, fmt.Sprintf("row %s: it needs %s, from stage %d on; the measured stage is %d",
				r.id, r.needs, r.minStage, o.stage))
			delete(o.rows, r.id)
		case r.id == "timers" && !prevTimers:
			o.skipped = append(o.skipped, fmt.Sprintf("row timers: it compares with stage %d, which has no folder", stageTimers-1))
			delete(o.rows, r.id)
		}
	}
	if !o.anyRow(workerRows...) {
		return
	}
	var missing []string
	o.workerCounts = nil
	for _, n := range o.workers {
		if _, _, ok := workerLayout(n, allowed); ok {
			o.workerCounts = append(o.workerCounts, n)
		} else {
			missing = append(missing, strconv.Itoa(n))
		}
	}
	if len(missing) > 0 {
		o.skipped = append(o.skipped, fmt.Sprintf("rows %s at N = %s: N workers need 2N CPUs, N for the server and N more for wrk, "+
			"so that the load generator never takes a worker's CPU and each worker has a CPU of its own, as the single loop "+
			"has in the other rows (with fewer, the figures would measure the sharing, not the server); this machine lets the bench use %d",
			strings.Join(workerRowsSelected(*o), ", "), strings.Join(missing, ", "), allowed.Count()))
	}
	if o.rows["x"] && !slices.ContainsFunc(o.workerCounts, func(n int) bool { return n > 1 }) {
		o.skipped = append(o.skipped, "row x: fairness compares workers, so it needs N ≥ 2")
		delete(o.rows, "x")
	}
	if len(o.workerCounts) == 0 {
		for _, r := range workerRows {
			delete(o.rows, r)
		}
	}
}

// workerRowsSelected returns the selected rows among workerRows.
func workerRowsSelected(o options) []string {
	var out []string
	for _, r := range workerRows {
		if o.rows[r] {
			out = append(out, r)
		}
	}
	return out
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
	o.fileLimit = limit
	if limit < nofile {
		progress("open-file limit %s: the hard limit, since raising it to %s needs CAP_SYS_RESOURCE", formatCount(int(limit)), formatCount(nofile))
	}
	if err := fitConns(&o); err != nil {
		return err
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	if o.jsonPath == "" {
		o.jsonPath = filepath.Join(root, "tools", "bench", "results", "latest.json")
	}
	if o.mdPath == "" {
		o.mdPath = filepath.Join(root, "tools", "bench", "results", "latest.md")
	}
	if o.stage == 0 {
		if o.stage, err = lastStage(root); err != nil {
			return err
		}
	}
	oursPkg, err := stagePackage(root, o.stage)
	if err != nil {
		return fmt.Errorf("-stage %d: %w", o.stage, err)
	}
	prevPkg, prevErr := stagePackage(root, stageTimers-1)
	planRows(&o, cpus, prevErr == nil)
	for _, s := range o.skipped {
		progress("skipped: %s", s)
	}
	if len(o.rows) == 0 {
		return errors.New("no row left to run")
	}

	// Built before the bench pins itself to one CPU, so the builds use both.
	progress("building %s (stage %d) and tools/bench/gohttp", oursPkg, o.stage)
	bins := map[int]string{}
	if bins[o.stage], err = harness.Build(oursPkg); err != nil {
		return err
	}
	if o.rows["timers"] {
		if bins[stageTimers-1], err = harness.Build(prevPkg); err != nil {
			return err
		}
	}
	goBin, err := harness.Build("tools/bench/gohttp")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "xps-bench-")
	if err != nil {
		return err
	}
	// nginx with a master process (rows vii–xii) started as root serves
	// from workers running as nobody, which must be able to reach the web
	// root; MkdirTemp makes the folder private.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
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

	www := filepath.Join(tmp, "www")
	progress("writing the web root in %s (two %s files)", www, sizeLabel(o.bigSize))
	web, err := makeWebRoot(www, o.bigSize)
	if err != nil {
		return err
	}
	if err := pinSelf([]int{clientCPU}); err != nil {
		return fmt.Errorf("pin the bench to CPU %d: %w", clientCPU, err)
	}
	b := &bench{o: o, tools: t, procs: ps, res: newResults(), tmp: tmp, web: web, bins: bins, instances: map[string]*server{}}
	if err := b.startServers(goBin); err != nil {
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
	total := o.totalRounds()
	for r := 1; r <= total; r++ {
		progress("round %d/%d (%s elapsed)", r, total, time.Since(started).Round(time.Second))
		if err := b.round(r, total); err != nil {
			return err
		}
	}

	lines := b.res.lines(quantities(o))
	var report bytes.Buffer
	writeReport(&report, m, o, lines, b.res.notes, backlogs)
	if _, err := out.Write(report.Bytes()); err != nil {
		return err
	}
	if err := writeFile(o.mdPath, report.Bytes()); err != nil {
		return err
	}
	if err := writeJSON(o.jsonPath, buildJSON(m, o, lines, b.res.notes)); err != nil {
		return err
	}
	progress("results written to %s and %s (%s)", o.mdPath, o.jsonPath, time.Since(started).Round(time.Second))
	return nil
}

// startServers starts the upstream and the three servers every round
// measures; the other instances start when a row first needs them.
func (b *bench) startServers(goBin string) error {
	up := nginxServer(b.procs, b.tools, "upstream nginx", "upstream", b.tmp, b.web.dir,
		nginxSetup{ports: 3, headerTimeout: longTimeout}, []int{clientCPU})
	if err := up.start(0); err != nil {
		return err
	}
	b.upstreams = up.ports
	b.servers = []*server{
		b.nginx("nginx", "measured", nginxSetup{}, []int{serverCPU}),
		goServer(b.procs, b.tools, goBin, b.tmp, b.web.dir, b.upstreams[0]),
		b.ours(oursName, "measured", oursSetup{stage: b.o.stage}, true, []int{serverCPU}),
	}
	for _, s := range b.servers {
		if err := s.start(b.o.conns); err != nil {
			return err
		}
		progress("%-8s pid %d on %s, pinned to CPU %s", s.label, s.PID(), s.addr(), cpuList(s.cpus))
	}
	return nil
}

// nginx returns a measured nginx instance, proxying to the upstreams.
func (b *bench) nginx(label, slug string, setup nginxSetup, cpus []int) *server {
	setup.upstreams = b.upstreams
	if setup.headerTimeout == 0 {
		setup.headerTimeout = longTimeout
	}
	return nginxServer(b.procs, b.tools, label, slug, b.tmp, b.web.dir, setup, cpus)
}

// ours returns an instance of the stage setup names, proxying to the
// upstreams.
func (b *bench) ours(label, slug string, setup oursSetup, withMetrics bool, cpus []int) *server {
	setup.upstreams = b.upstreams
	return oursServer(b.procs, b.tools, b.bins[setup.stage], label, slug, b.tmp, b.web.dir, setup, withMetrics, cpus)
}

// instance returns the running instance named key, starting the one make
// returns the first time a row asks for it. These instances are idle
// outside their rows, so they cost the others nothing.
func (b *bench) instance(key string, create func() *server) (*server, error) {
	if s := b.instances[key]; s != nil {
		if s.Alive() == nil {
			return s, nil
		}
		// Row (xii) stops its instances; the next round starts them anew.
		return s, s.start(b.o.conns)
	}
	s := create()
	if err := s.start(b.o.conns); err != nil {
		return nil, err
	}
	progress("%s: pid %d on %s, pinned to CPUs %s", s.label, s.PID(), s.addr(), cpuList(s.cpus))
	b.instances[key] = s
	return s, nil
}

// writeReport prints the machine, the settings, the table and the notes
// as markdown.
func writeReport(w io.Writer, m machine, o options, lines []line, notes []string, backlogs map[string]string) {
	fmt.Fprintf(w, "\n**Machine:** %s, %d CPUs · %s · %s · %s · %s · %s\n\n", m.CPU, m.CPUs, m.Kernel, m.Go, m.Nginx, m.Wrk, m.Curl)
	fmt.Fprintf(w, "**Run:** stage %d as ours · %s · wrk %v, 2 threads, 50 connections, Connection: close · idle windows %v · %s connections · %s downloads · "+
		"each server alone on CPU %d, load generators and the upstreams on CPU %d · open-file limit %s\n\n",
		o.stage, o.roundsSummary(), o.duration, o.idle, formatCount(o.conns), sizeLabel(o.bigSize), serverCPU, clientCPU, formatCount(int(o.fileLimit)))
	fmt.Fprint(w, markdownTable(lines))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Median over rounds, (min–max); ratios compare medians. Requests per server CPU-second is the figure "+
		"to compare: req/s on this machine can swing 2× between runs. A \"per round\" line is the ratio of two runs "+
		"back to back in each round, so its min–max is the noise of the comparison.")
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
	if len(o.skipped) > 0 {
		fmt.Fprintln(w, "\nNot run:")
		for _, s := range o.skipped {
			fmt.Fprintln(w, "- "+s)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\n⚠ Flagged runs:")
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
	fmt.Fprintln(w)
}
