package milestone

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"expserver-go/tests/harness"
)

// selfServer stands in for a server process: this test process, which
// runs for as long as the test does. Close, which Run calls on a case past
// its limit, ends the check waiting on it, as ending a real server fails
// the check's sockets.
type selfServer struct{ closed chan struct{} }

func (s *selfServer) PID() int                { return os.Getpid() }
func (s *selfServer) Alive() error            { return nil }
func (s *selfServer) Restart() error          { return nil }
func (s *selfServer) Interrupt() (int, error) { return 0, nil }
func (s *selfServer) Log() string             { return "" }
func (s *selfServer) Close()                  { close(s.closed) }

func newTestEnv(t *testing.T, seed uint64) *Env {
	t.Helper()
	return &Env{Stage: 6, Seed: seed, Server: &selfServer{closed: make(chan struct{})}, Layout: &harness.Layout{Root: t.TempDir()}}
}

// draws is a check that sends n random lines, as single-client-io does.
func draws(n int) Milestone {
	return Milestone{ID: "draws-" + strings.Repeat("x", n%7), Run: func(e *Env) error {
		for range n {
			randomLine(e.Rand(), 100)
		}
		return nil
	}}
}

// TestSeedGivesSameInputs: one seed gives every case the same inputs,
// whether it runs alone or after others; another seed gives other inputs.
func TestSeedGivesSameInputs(t *testing.T) {
	a, b := draws(1000), draws(10)
	alone := newTestEnv(t, 42).Run(b)
	env := newTestEnv(t, 42)
	afterA, afterB := env.Run(a), env.Run(b)
	other := newTestEnv(t, 43).Run(b)
	if alone.Err != nil || alone.Inputs == "" {
		t.Fatalf("the case failed or drew nothing: %+v", alone)
	}
	if afterB.Inputs != alone.Inputs {
		t.Errorf("with seed 42, %s drew %s after %s and %s alone", b.ID, afterB.Inputs, a.ID, alone.Inputs)
	}
	if afterA.Inputs == afterB.Inputs || other.Inputs == alone.Inputs {
		t.Errorf("different cases or seeds drew the same inputs: %s, %s, %s", afterA.Inputs, afterB.Inputs, other.Inputs)
	}
	if d := newTestEnv(t, 42).Run(Milestone{ID: "none", Run: func(*Env) error { return nil }}); d.Inputs != "" {
		t.Errorf("a case that drew nothing has inputs %q", d.Inputs)
	}
}

// TestRunLimits: a check past its limit is stopped by ending the server
// and fails as timed out; a check that panics does not take the run down.
func TestRunLimits(t *testing.T) {
	env := newTestEnv(t, 1)
	env.CaseLimit = 200 * time.Millisecond
	srv := env.Server.(*selfServer)
	start := time.Now()
	r := env.Run(Milestone{ID: "waits", Run: func(*Env) error {
		<-srv.closed // a read that only the server's end ends
		return errors.New("connection reset")
	}})
	if !r.TimedOut || r.Err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("a check past its limit: timed out %v, err %v, after %v", r.TimedOut, r.Err, time.Since(start))
	}

	r = newTestEnv(t, 1).Run(Milestone{ID: "panics", Run: func(*Env) error { panic("index out of range") }})
	if r.NotRun == "" || !strings.Contains(r.Err.Error(), "index out of range") {
		t.Errorf("a check that panics: %+v", r)
	}

	env = newTestEnv(t, 1)
	env.Deadline = time.Now().Add(-time.Second)
	if r := env.Run(draws(1)); r.NotRun == "" || r.Err == nil {
		t.Errorf("a case after the run's deadline ran: %+v", r)
	}
}
