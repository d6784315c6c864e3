package milestone

import (
	"fmt"
	"hash/fnv"
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
	// ArgsFor, when not nil, is the binary's command line for listening
	// on ports, relaying to upstream (host:port) and reading config: how a
	// check starts a server of its own beside this one (see Instance). Nil
	// for a binary that takes only the course's config path.
	ArgsFor func(ports [4]int, upstream, config string) []string
	// CaseLimit, when not zero, replaces every milestone's own time limit.
	CaseLimit time.Duration
	// Deadline, when set, bounds the whole run: a case still running then
	// is stopped, and Run starts no case after it.
	Deadline time.Time
	rng      *rand.Rand
	inputs   *inputSource
	caseID   string // the milestone Run is running
	lastID   string // the milestone Run ran before it
	// crashedBy is the milestone after which the server was found dead,
	// until a restart brings it back.
	crashedBy string
	// workers, when not zero, is the workers key every instance gets
	// whose config has none (see Env.withWorkers, stage 23).
	workers int
}

// Rand returns the source of every random input the checks send, seeded
// from Seed on first use (a random seed, recorded in Seed, when it is zero).
// Each milestone Run runs gets its own stream, drawn from Seed and the
// milestone's ID, so a case sends the same inputs whether it runs alone
// (grade -case) or after others.
func (e *Env) Rand() *rand.Rand {
	if e.rng == nil {
		if e.Seed == 0 {
			e.Seed = rand.Uint64() | 1
		}
		h := fnv.New64a()
		h.Write([]byte(e.caseID))
		e.inputs = &inputSource{src: rand.NewPCG(e.Seed, e.Seed>>32|e.Seed<<32^h.Sum64())}
		e.rng = rand.New(e.inputs)
	}
	return e.rng
}

// inputSource is a case's random source. It keeps a digest of every value
// drawn, so that two runs can show they sent the same inputs.
type inputSource struct {
	src   rand.Source
	draws uint64
	sum   uint64
}

func (s *inputSource) Uint64() uint64 {
	v := s.src.Uint64()
	s.draws++
	s.sum = (s.sum ^ v) * 0x100000001b3 // FNV's prime, one 64-bit word at a time
	return v
}

// digest is "draws:digest", or "" when nothing was drawn.
func (s *inputSource) digest() string {
	if s == nil || s.draws == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%016x", s.draws, s.sum)
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
	replyTimeout = 5 * time.Second // a small reply
	// bulkTimeout bounds the silence in a bulk transfer (the harness's
	// long reads time out between arrivals, not over the whole transfer),
	// so a server that stops sending fails in seconds rather than after
	// the longest a transfer could take. It allows for an upstream whose
	// short listen queue makes a connection wait out three SYN
	// retransmissions (1 + 2 + 4 s).
	bulkTimeout = 10 * time.Second
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
