package milestone

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"expserver-go/tests/harness"
)

// ServerProcess is a server binary started in a course layout. It implements
// Server for the checks.
type ServerProcess struct {
	Bin   string   // path of the binary
	Args  []string // its arguments
	Dir   string   // its working directory (the layout's app/)
	Env   []string // extra environment
	Host  string   // where it is reached
	Ports [4]int   // the ports it must accept on once started
	proc  *harness.Process
}

// StartTimeout is how long a started server has to accept on all four
// ports.
const StartTimeout = 10 * time.Second

// StartError says why a server never came up.
type StartError struct {
	// How is what happened, for a report: "could not be run", "crashed",
	// "exited" or "hung" (the grading tool adds "did not build" and
	// "timed out").
	How string
	// Detail says more: the exec error, how the process ended ("killed by
	// signal SIGSEGV (segmentation fault)", "exit status 1"), or which
	// port still refused connections.
	Detail string
	Log    string // the last lines the server printed
}

func (e *StartError) Error() string {
	msg := "server did not start: "
	switch e.How {
	case "crashed", "exited":
		msg += "it " + e.How + " before accepting on every port (" + e.Detail + ")"
	case "hung":
		msg += fmt.Sprintf("it hung: still running after %v, but %s", StartTimeout, e.Detail)
	default: // "could not be run", and what a tool around the server adds
		msg += "it " + e.How + ": " + e.Detail
	}
	if e.Log != "" {
		msg += "\n" + e.Log
	}
	return msg
}

// Start runs the binary and waits until all four ports accept connections.
// When the server does not come up, the error is a *StartError.
func (s *ServerProcess) Start() error {
	p, err := harness.Start(s.Bin, s.Args, s.Dir, s.Env...)
	if err != nil {
		return &StartError{How: "could not be run", Detail: err.Error()}
	}
	s.proc = p
	addrs := make([]string, len(s.Ports))
	for i, port := range s.Ports {
		addrs[i] = s.Host + ":" + strconv.Itoa(port)
	}
	if err := harness.WaitAccepting(addrs, StartTimeout, s.Alive); err != nil {
		end := p.Alive()
		p.Kill()
		se := &StartError{How: "hung", Detail: strings.TrimPrefix(err.Error(), "harness: "), Log: tail(p.Output(), 20)}
		if end != nil {
			se.Detail, se.How = describeEnd(end)
		}
		return se
	}
	return nil
}

// describeEnd says how a process ended, from the error Alive returned, and
// whether it crashed (ended by a signal it did not handle) or exited.
func describeEnd(err error) (detail, how string) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err.Error(), "exited"
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %s (%v)", unix.SignalName(ws.Signal()), ws.Signal()), "crashed"
	}
	return fmt.Sprintf("exit status %d", ee.ExitCode()), "exited"
}

// PID returns the process id.
func (s *ServerProcess) PID() int { return s.proc.PID() }

// Alive returns nil while the process runs.
func (s *ServerProcess) Alive() error { return s.proc.Alive() }

// Restart stops the process (killing it if it ignores SIGINT) and starts a
// new one.
func (s *ServerProcess) Restart() error {
	s.Close()
	return s.Start()
}

// Interrupt sends SIGINT and waits up to 5 s for the exit code.
func (s *ServerProcess) Interrupt() (int, error) {
	return s.proc.Stop(5 * time.Second)
}

// Close ends the process whatever state it is in.
func (s *ServerProcess) Close() {
	if s.proc != nil {
		s.proc.Kill()
	}
}

// Log returns what the process has printed.
func (s *ServerProcess) Log() string {
	if s.proc == nil {
		return ""
	}
	return s.proc.Output()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines > n {
				return s[i+1:]
			}
		}
	}
	return s
}

// Tail returns the last n lines of the server's log, for failure reports.
func (s *ServerProcess) Tail(n int) string { return tail(s.Log(), n) }
