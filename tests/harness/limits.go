package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The descriptors of the test process itself. Every client socket a check
// opens is one of them, and the milestone suites of all the stages run in
// one process at the same time, so a few checks that each open thousands of
// connections at once could exhaust it and fail for a reason that has
// nothing to do with the server under test. Such checks reserve what they
// open with ReserveFDs: they get half of the process's limit between them,
// taking turns when they would exceed it; the other half is left for
// everything else.
var fdBudget struct {
	sync.Mutex
	cond     *sync.Cond
	capacity int // -1 until read
	used     int
}

// FDLimit returns the test process's soft RLIMIT_NOFILE. The Go runtime
// raises the soft limit to the hard one at start, so this is the hard limit
// unless something lowered it since.
func FDLimit() (int, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("harness: getrlimit: %w", err)
	}
	return int(min(lim.Cur, 1<<30)), nil
}

// ReserveFDs waits until n more descriptors may be opened by the caller
// and returns the function that gives them back. It fails at once, saying
// how to fix it, when n can never fit: the hard limit of the test process
// is too low for the check.
func ReserveFDs(n int) (release func(), err error) {
	fdBudget.Lock()
	defer fdBudget.Unlock()
	if fdBudget.cond == nil {
		limit, err := FDLimit()
		if err != nil {
			return nil, err
		}
		fdBudget.capacity = limit / 2
		fdBudget.cond = sync.NewCond(&fdBudget.Mutex)
	}
	if n > fdBudget.capacity {
		return nil, fmt.Errorf("harness: this check opens %d connections at once, but the test process may "+
			"open only %d descriptors (RLIMIT_NOFILE), half of which stay for the other checks; "+
			"raise the hard limit to at least %d (ulimit -Hn, or LimitNOFILE= for a service)",
			n, 2*fdBudget.capacity, 2*n)
	}
	for fdBudget.used+n > fdBudget.capacity {
		fdBudget.cond.Wait()
	}
	fdBudget.used += n
	var once sync.Once
	return func() {
		once.Do(func() {
			fdBudget.Lock()
			fdBudget.used -= n
			fdBudget.Unlock()
			fdBudget.cond.Broadcast()
		})
	}, nil
}

// LowestFreeFD returns the lowest descriptor number the process does not
// have open: the one its next open or accept gets. A soft RLIMIT_NOFILE of
// that number leaves the process no room at all, holes below its highest
// descriptor included.
func LowestFreeFD(pid int) (int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	open := map[int]bool{}
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			open[n] = true
		}
	}
	n := 0
	for open[n] {
		n++
	}
	return n, nil
}

// SomaxConn returns net.core.somaxconn, the cap the kernel puts on every
// listen backlog in this network namespace, or 0 when it cannot be read.
func SomaxConn() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
