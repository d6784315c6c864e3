package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"expserver-go/tests/harness"

	"golang.org/x/sys/unix"
)

// The CPUs the bench splits the machine into for every row but those of
// several workers: the measured server alone on one, everything that
// generates load or answers it on the other.
const (
	serverCPU = 0
	clientCPU = 1
)

// span returns the n CPUs from first on.
func span(first, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = first + i
	}
	return out
}

// cpuList writes cpus as taskset -c takes them: "0" or "0,1,2".
func cpuList(cpus []int) string {
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

// workerLayout returns the CPUs of a server with n workers and of its load
// generators: the server on CPUs 0…n−1, wrk on n…2n−1, so that the load
// generator never takes a worker's CPU and each worker has a CPU of its own,
// as the single loop has in the other rows. ok is false when allowed, the
// CPUs the bench may use, lacks any of them.
func workerLayout(n int, allowed unix.CPUSet) (server, client []int, ok bool) {
	server, client = span(0, n), span(n, n)
	for _, c := range append(append([]int(nil), server...), client...) {
		if !allowed.IsSet(c) {
			return nil, nil, false
		}
	}
	return server, client, true
}

// pinSelf moves every thread of the bench onto cpus. sched_setaffinity acts
// on one thread, and threads inherit it from the thread that creates them,
// so after a pass over /proc/self/task every later thread lands on cpus too;
// a second pass catches a thread created during the first.
func pinSelf(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for range 3 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		moved := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if unix.SchedGetaffinity(tid, &cur) == nil && cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setaffinity(%d): %w", tid, err)
			}
			moved++
		}
		if moved == 0 {
			return nil
		}
	}
	return nil
}

// family returns pid and its children. nginx with a master process serves
// from its workers, which are the master's children; every other server is
// one process, and then this is just pid. The children come from
// /proc/PID/task/TID/children, so a server's threads count once, as part of
// their process.
func family(pid int) []int {
	pids := []int{pid}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return pids
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(f); err == nil {
				pids = append(pids, child)
			}
		}
	}
	return pids
}

// familyCPU returns the CPU seconds pid and its children have used: the
// master and the workers of nginx (spec: "master plus workers"), the one
// process of the others.
func familyCPU(pid int) (float64, error) {
	total := 0.0
	for i, p := range family(pid) {
		d, err := harness.CPUTime(p)
		if err != nil {
			if i > 0 {
				continue // a worker that has just exited
			}
			return 0, err
		}
		total += d.Seconds()
	}
	return total, nil
}

// familyFDs returns the fds pid and its children hold together.
func familyFDs(pid int) (int, error) {
	total := 0
	for i, p := range family(pid) {
		n, err := harness.FDCount(p)
		if err != nil {
			if i > 0 {
				continue
			}
			return 0, err
		}
		total += n
	}
	return total, nil
}

// familyCPUPercent returns the CPU pid and its children use over window, as
// a percentage of one CPU.
func familyCPUPercent(pid int, window time.Duration) (float64, error) {
	before, err := familyCPU(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	// The window is the measurement itself: nothing is awaited.
	time.Sleep(window)
	after, err := familyCPU(pid)
	if err != nil {
		return 0, err
	}
	return 100 * (after - before) / time.Since(start).Seconds(), nil
}
