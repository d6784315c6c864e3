package milestone

import (
	"fmt"
	"strconv"
	"time"

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

// Start runs the binary and waits until all four ports accept connections.
func (s *ServerProcess) Start() error {
	p, err := harness.Start(s.Bin, s.Args, s.Dir, s.Env...)
	if err != nil {
		return err
	}
	s.proc = p
	addrs := make([]string, len(s.Ports))
	for i, port := range s.Ports {
		addrs[i] = s.Host + ":" + strconv.Itoa(port)
	}
	if err := harness.WaitAccepting(addrs, 10*time.Second, s.Alive); err != nil {
		p.Kill()
		return fmt.Errorf("server did not start: %w\n%s", err, tail(p.Output(), 20))
	}
	return nil
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
