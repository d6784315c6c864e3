package harness

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// CPUTime returns the user plus system CPU time the process has used.
func CPUTime(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return cpuFields(f, fmt.Sprintf("/proc/%d/stat", pid))
}

// statFields returns the fields of /proc/PID/stat after the command name,
// which may itself contain spaces and parentheses.
func statFields(pid int) ([]string, error) {
	return statFile(fmt.Sprintf("/proc/%d/stat", pid))
}

// statFile returns the fields after the command name of a stat file of
// /proc: a process's, or a thread's (/proc/PID/task/TID/stat).
func statFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("harness: %s: malformed", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("harness: %s: too few fields", path)
	}
	return f, nil
}

// cpuFields returns utime + stime from the fields statFile returns.
func cpuFields(f []string, path string) (time.Duration, error) {
	// Fields after the command name: state is [0], utime [11], stime [12].
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("harness: %s: bad cpu times", path)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// RSS returns the process's resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("harness: /proc/%d/status: VmRSS %q", pid, rest)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("harness: /proc/%d/status has no VmRSS", pid)
}

// SampleRSS samples pid's resident set every interval until the returned
// function is called, which returns the largest value seen, in bytes.
func SampleRSS(pid int, every time.Duration) (peak func() int64) {
	done := make(chan struct{})
	result := make(chan int64)
	go func() {
		var max int64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, err := RSS(pid); err == nil && rss > max {
				max = rss
			}
			select {
			case <-done:
				result <- max
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-result
	}
}

// FDCount returns the number of file descriptors the process has open.
func FDCount(pid int) (int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(entries), nil
}

// FDTargets returns what each open fd of the process points to, such as
// "socket:[1234]" or "/srv/public/cat.jpg".
func FDTargets(pid int) ([]string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if t, err := os.Readlink(dir + "/" + e.Name()); err == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// CPUMeter measures the CPU a process uses over an interval, as a percentage
// of one core.
type CPUMeter struct {
	pid   int
	cpu0  time.Duration
	wall0 time.Time
}

// StartCPUMeter starts measuring pid's CPU use from now.
func StartCPUMeter(pid int) (*CPUMeter, error) {
	cpu, err := CPUTime(pid)
	if err != nil {
		return nil, err
	}
	return &CPUMeter{pid: pid, cpu0: cpu, wall0: time.Now()}, nil
}

// Percent returns the CPU used since the meter started, as a percentage of
// the wall time elapsed, and the CPU time itself.
func (m *CPUMeter) Percent() (float64, time.Duration, error) {
	cpu, err := CPUTime(m.pid)
	if err != nil {
		return 0, 0, err
	}
	used := cpu - m.cpu0
	return 100 * used.Seconds() / time.Since(m.wall0).Seconds(), used, nil
}
