package harness

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Thread is one thread of a process as /proc shows it.
type Thread struct {
	TID  int
	Name string // its comm: what top -H and ps -L show, at most 15 bytes
	// CPU is the user plus system time it has used.
	CPU time.Duration
	// VoluntarySwitches counts the times it gave up its CPU to wait:
	// roughly, how often it slept and was woken.
	VoluntarySwitches int64
}

// Threads returns the threads of process pid, by thread id. A thread that
// ends while it is read is left out.
func Threads(pid int) ([]Thread, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Thread
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		t, err := readThread(dir+"/"+e.Name(), tid)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TID < out[j].TID })
	return out, nil
}

func readThread(dir string, tid int) (Thread, error) {
	t := Thread{TID: tid}
	comm, err := os.ReadFile(dir + "/comm")
	if err != nil {
		return t, err
	}
	t.Name = strings.TrimSuffix(string(comm), "\n")
	f, err := statFile(dir + "/stat")
	if err != nil {
		return t, err
	}
	if t.CPU, err = cpuFields(f, dir+"/stat"); err != nil {
		return t, err
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return t, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			if t.VoluntarySwitches, err = strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err != nil {
				return t, fmt.Errorf("harness: %s/status: voluntary_ctxt_switches %q", dir, rest)
			}
		}
	}
	return t, nil
}

// ThreadSyscall returns the number of the system call thread tid of pid is
// blocked in, or -1 while it runs. Reading it needs the right to trace the
// process (the same user, under the default Yama policy).
func ThreadSyscall(pid, tid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || f[0] == "running" {
		return -1, nil
	}
	return strconv.Atoi(f[0])
}

// ThreadRuntime returns how long thread tid of process pid has run on a
// CPU, in nanoseconds as the scheduler counts them (/proc/PID/task/TID/
// schedstat): finer than the clock ticks of stat, fine enough to tell
// whether two threads ran at the same time within a few milliseconds.
func ThreadRuntime(pid, tid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, fmt.Errorf("harness: /proc/%d/task/%d/schedstat: %q", pid, tid, b)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("harness: /proc/%d/task/%d/schedstat: %q", pid, tid, b)
	}
	return time.Duration(ns), nil
}
