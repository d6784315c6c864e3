package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"expserver-go/tests/harness"
)

// stopGrace is how long a process gets to exit after SIGINT before it and
// its process group are killed (harness.Process.Stop). nginx needs the
// grace to close its files; the others simply exit.
const stopGrace = 5 * time.Second

// procSet records every process the bench starts, so that every way out —
// success, an error, SIGINT or SIGTERM — stops them all by PID, and the end
// of the run can check that none survived. Processes start through
// harness.Start, which gives each its own process group and a parent-death
// signal, so even a crash of the bench does not leave them running.
type procSet struct {
	mu      sync.Mutex
	procs   []*proc
	stopped bool
}

type proc struct {
	name string
	*harness.Process
}

// start starts bin and records it. After stopAll it refuses, so that a
// signal arriving while the bench starts something cannot leave that behind.
func (s *procSet) start(name, bin string, args []string, dir string, env ...string) (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errors.New("bench is stopping")
	}
	p, err := harness.Start(bin, args, dir, env...)
	if err != nil {
		return nil, err
	}
	pr := &proc{name: name, Process: p}
	s.procs = append(s.procs, pr)
	return pr, nil
}

// run starts bin, waits up to timeout for it to finish and returns its
// output (stdout and stderr together). A non-zero exit status is an error
// that carries the output.
func (s *procSet) run(name string, timeout time.Duration, bin string, args ...string) (string, error) {
	p, err := s.start(name, bin, args, "")
	if err != nil {
		return "", err
	}
	code, err := p.Wait(timeout)
	if err != nil {
		p.Stop(stopGrace)
		return p.Output(), fmt.Errorf("%s did not finish within %v", name, timeout)
	}
	if code != 0 {
		return p.Output(), fmt.Errorf("%s exited with status %d: %s", name, code, strings.TrimSpace(p.Output()))
	}
	return p.Output(), nil
}

// stopAll stops every recorded process, all at once so the grace periods
// overlap, and refuses new ones from then on.
func (s *procSet) stopAll() {
	s.mu.Lock()
	s.stopped = true
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.Stop(stopGrace) })
	}
	wg.Wait()
}

// verifyGone checks that every recorded process has exited and that no
// process is left in any of their process groups (a child one of them
// might have started).
func (s *procSet) verifyGone() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var alive []string
	for _, p := range s.procs {
		done, _ := p.Exited()
		if !done || syscall.Kill(-p.PID(), 0) != syscall.ESRCH {
			alive = append(alive, fmt.Sprintf("%s (pid %d)", p.name, p.PID()))
		}
	}
	if len(alive) > 0 {
		return fmt.Errorf("still running after cleanup: %s", strings.Join(alive, ", "))
	}
	return nil
}

// count returns how many processes the bench has started.
func (s *procSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.procs)
}
