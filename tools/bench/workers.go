package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"syscall"
	"time"

	"expserver-go/tests/harness"
)

// workerRows runs rows (vii)–(x) and (xii) at every worker count the
// machine has the CPUs for: nginx with a master and N workers, ours with N
// workers, each on CPUs 0…N−1, wrk on N…2N−1 with N times row (i)'s
// threads and connections. Rows (vii)–(ix) at N > 1 add the scaling
// against N = 1 of the same round, rps(N)/(N·rps(1)).
func (b *bench) workerRows(label string, k int) error {
	rps1 := map[string]float64{} // "row server" → req/s at N = 1 this round
	for _, n := range b.o.workerCounts {
		if err := b.workersAt(label, n, k, rps1); err != nil {
			return err
		}
	}
	return nil
}

// workersAt runs the worker rows at n workers, in the k-th round of the
// rows, which says which server goes first.
func (b *bench) workersAt(label string, n, k int, rps1 map[string]float64) error {
	serverCPUs, clientCPUs := span(0, n), span(n, n)
	if n > 1 {
		// The bench's own clients (the bursts of row xii, the snapshots of
		// row x) must not take a worker's CPU either.
		if err := pinSelf(clientCPUs); err != nil {
			return err
		}
		defer pinSelf([]int{clientCPU})
	}
	servers := make([]*server, 2)
	var err error
	servers[0], err = b.instance(fmt.Sprintf("nginx %d workers", n), func() *server {
		return b.nginx(fmt.Sprintf("nginx (%d workers)", n), fmt.Sprintf("workers%d", n), nginxSetup{workers: n}, serverCPUs)
	})
	if err != nil {
		return err
	}
	servers[1], err = b.instance(fmt.Sprintf("ours %d workers", n), func() *server {
		return b.ours(fmt.Sprintf("ours (%d workers)", n), fmt.Sprintf("workers%d", n), oursSetup{stage: b.o.stage, workers: n}, true, serverCPUs)
	})
	if err != nil {
		return err
	}
	load := func(path string) wrkSpec {
		return wrkSpec{path: path, threads: 2 * n, conns: 50 * n, headers: []string{"Connection: close"}, cpus: clientCPUs}
	}
	rows := []struct {
		row string
		run func(s *server, key string) (float64, error)
	}{
		{"vii", func(s *server, key string) (float64, error) {
			return b.wrkRowRPS(label, "vii", key, s, load("/"+smallFile))
		}},
		{"viii", func(s *server, key string) (float64, error) { return b.gzipRowRPS(label, "viii", key, s, clientCPUs) }},
		{"ix", func(s *server, key string) (float64, error) {
			return b.wrkRowRPS(label, "ix", key, s, load("/lb/"+tinyFile))
		}},
	}
	for _, r := range rows {
		if !b.due[r.row] {
			continue
		}
		for _, s := range rotate(servers, k) {
			key := fmt.Sprintf("%s.%d", r.row, n)
			rps, err := r.run(s, key)
			if err != nil {
				return err
			}
			id := r.row + " " + s.name
			if n == 1 {
				rps1[id] = rps
			} else if one := rps1[id]; one > 0 {
				b.res.add(key+".scaling", s.name, rps/(float64(n)*one))
			}
		}
	}
	if b.due["x"] && n > 1 {
		for _, s := range rotate(servers, k) {
			if err := b.fairnessRow(label, n, s, clientCPUs); err != nil {
				return err
			}
		}
	}
	if b.due["xii"] {
		for _, s := range rotate(servers, k) {
			if err := b.stopRow(label, n, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// fairnessRow runs row (x): wrk with 64 connections on the 1 KiB file, and
// how evenly the workers shared the work: for ours the accepts of each
// worker (workers_conn_accepted in /api), for nginx the CPU time of each
// worker process, which the spec takes since nginx counts no accepts per
// worker. The figure is the largest share over the smallest.
func (b *bench) fairnessRow(label string, n int, s *server, clientCPUs []int) error {
	key := fmt.Sprintf("x.%d", n)
	before, err := workerShares(s)
	if err != nil {
		return err
	}
	w := wrkSpec{path: "/" + smallFile, threads: 2 * n, conns: 64, headers: []string{"Connection: close"}, cpus: clientCPUs}
	res, _, err := b.wrk(s, w)
	if err != nil {
		return err
	}
	after, err := workerShares(s)
	if err != nil {
		return err
	}
	if len(after) != len(before) || len(after) != n {
		return fmt.Errorf("%s: %d workers before the run, %d after, want %d", s.label, len(before), len(after), n)
	}
	delta := make([]float64, n)
	for i := range delta {
		delta[i] = after[i] - before[i]
	}
	lo, hi := slices.Min(delta), slices.Max(delta)
	b.flagWrk(label, "x", key, s.label, s, res)
	if lo <= 0 {
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (x): a worker took no share: %v", label, s.label, delta), "x")
		return nil
	}
	b.res.add(key+".ratio", s.name, hi/lo)
	progress("%s (x) %-8s shares %v: largest / smallest %s", label, s.label, delta, formatRatio(hi/lo))
	return nil
}

// workerShares returns what each worker of s has done so far: ours' accepts
// per worker from its /api, nginx's CPU seconds per worker process.
func workerShares(s *server) ([]float64, error) {
	if s.name == nginxName {
		var out []float64
		for _, pid := range family(s.PID())[1:] {
			d, err := harness.CPUTime(pid)
			if err != nil {
				return nil, fmt.Errorf("%s: worker %d: %w", s.label, pid, err)
			}
			out = append(out, d.Seconds())
		}
		return out, nil
	}
	if s.metricsPort == 0 {
		return nil, fmt.Errorf("%s has no metrics listener", s.label)
	}
	resp, err := harness.Get(addrOf(s.metricsPort), "/api", 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s: GET /api: %w", s.label, err)
	}
	var snap struct {
		Accepted []float64 `json:"workers_conn_accepted"`
	}
	if err := json.Unmarshal(resp.Body, &snap); err != nil {
		return nil, fmt.Errorf("%s: GET /api: %w", s.label, err)
	}
	return snap.Accepted, nil
}

// stopRow runs row (xii): -conns idle connections, then the signal that
// stops the server at once — SIGINT for ours, SIGTERM for nginx, which is
// what nginx -s stop sends its master — and the seconds until the process
// has exited (nginx: its master, after its workers). The next round starts
// the server anew.
func (b *bench) stopRow(label string, n int, s *server) error {
	const row = "xii"
	base, err := s.fds()
	if err != nil {
		return err
	}
	conns, _, err := burst(s, base+b.o.conns, b.o.conns, nil)
	defer resetAll(conns)
	if err != nil {
		if aerr := s.alive(); aerr != nil {
			return aerr
		}
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (xii): %v", label, s.label, err), row)
		progress("%s (xii) %-8s failed: %v", label, s.label, err)
		resetAll(conns)
		return b.settle(label, s, base, row)
	}
	sig := syscall.SIGINT
	if s.name == nginxName {
		sig = syscall.SIGTERM
	}
	start := time.Now()
	if err := s.Signal(sig); err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	code, err := s.Wait(30 * time.Second)
	took := time.Since(start)
	if err != nil {
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (xii): still running 30 s after %v with %s connections; killed",
			label, s.label, sig, formatCount(b.o.conns)), row)
		s.Kill()
		return nil
	}
	if code != 0 {
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (xii): exit status %d after %v", label, s.label, code, sig), row)
	}
	b.res.add(fmt.Sprintf("xii.%d.secs", n), s.name, took.Seconds())
	progress("%s (xii) %-8s exited %s s after %v with %s connections", label, s.label, formatNumber(took.Seconds()), sig, formatCount(b.o.conns))
	return nil
}
