package milestone

import (
	"math/rand/v2"
	"strconv"
	"time"

	"expserver-go/tests/harness"
)

// Server is the process under test as the checks see it.
type Server interface {
	PID() int
	// Alive returns nil while the process runs, or how it ended.
	Alive() error
	// Restart replaces the process with a new one on the same ports.
	Restart() error
	// Interrupt sends SIGINT and returns the exit code.
	Interrupt() (int, error)
	// Log returns what the process has printed.
	Log() string
}

// Env is everything a check needs: where the server listens, its process,
// its upstream and its directories.
type Env struct {
	Stage    int
	Host     string // address the checks connect to
	Ports    [4]int // the four course ports, by role (8001…8004)
	Server   Server
	Upstream *harness.Upstream // nil for stages without one
	Layout   *harness.Layout
	Long     bool // use the official grader's full sizes
	Logf     func(format string, args ...any)
	// Seed makes the checks' random inputs reproducible: the same seed
	// gives the same inputs. Zero picks one at random (see Rand).
	Seed uint64
	rng  *rand.Rand
}

// Rand returns the source of every random input the checks send, seeded
// from Seed on first use (a random seed, recorded in Seed, when it is zero).
func (e *Env) Rand() *rand.Rand {
	if e.rng == nil {
		if e.Seed == 0 {
			e.Seed = rand.Uint64() | 1
		}
		e.rng = rand.New(rand.NewPCG(e.Seed, e.Seed>>32|e.Seed<<32))
	}
	return e.rng
}

// Addr returns host:port of the port with the given role (0 for 8001's role).
func (e *Env) Addr(role int) string {
	return e.Host + ":" + strconv.Itoa(e.Ports[role])
}

// Restart gives the checks that need it a fresh server and upstream.
func (e *Env) Restart() error {
	if e.Upstream != nil {
		e.Upstream.Stop()
		if err := e.Upstream.Start(); err != nil {
			return err
		}
	}
	return e.Server.Restart()
}

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// size picks the bounded size for `make test` or the grader's full size.
func (e *Env) size(normal, long int64) int64 {
	if e.Long {
		return long
	}
	return normal
}

// alive turns a dead server into a failure that names how it ended.
func (e *Env) alive() error {
	if err := e.Server.Alive(); err != nil {
		return fail("the server to keep running", "it exited (%v)", err)
	}
	return nil
}

// Timeouts used across the checks. They bound waiting; none of them is a
// performance target.
const (
	replyTimeout = 5 * time.Second  // a small reply
	bulkTimeout  = 60 * time.Second // a bulk transfer
)

// Which behaviour each stage has on its four ports.

// reverses reports whether the stage reverses (6–9) rather than echoes.
func reverses(stage int) bool { return stage <= 9 }

// rawRoles returns the roles of the ports that answer raw bytes (reversal
// or echo) at the stage.
func rawRoles(stage int) []int {
	switch {
	case stage <= 10:
		return []int{0, 1, 2, 3}
	case stage == 11:
		return []int{1, 2, 3}
	case stage == 12:
		return []int{3}
	}
	return nil
}

// expectReply returns what the server sends back for one chunk at the stage.
func expectReply(stage int, in []byte) []byte {
	if !reverses(stage) {
		return in
	}
	return reverseChunk(in)
}

// reverseChunk is the course's reversal: a final newline stays last.
func reverseChunk(in []byte) []byte {
	out := make([]byte, len(in))
	n := len(in)
	if n > 0 && in[n-1] == '\n' {
		out[n-1] = '\n'
		n--
	}
	for i := range n {
		out[i] = in[n-1-i]
	}
	return out
}
