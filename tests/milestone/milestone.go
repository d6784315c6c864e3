package milestone

import (
	"fmt"
	"slices"
	"time"
)

// Milestone is one check and the stages it applies to.
type Milestone struct {
	ID       string // stable short name, used by -case and in reports
	Title    string // one line a student understands
	From, To int    // the first and last stage it applies to
	Grader   bool   // one of the official grader's cases
	// Lesson marks a check that demonstrates a weakness the course keeps at
	// this stage on purpose (stage 7 blocking, stage 8 spinning). It runs in
	// our own tests, so the lesson cannot silently disappear, but it is not
	// a requirement and the grading tool skips it.
	Lesson bool
	// Fresh asks for a newly started server (and upstream) before the check,
	// as the grader restarts its container before such tests.
	Fresh bool
	// Browser marks a check that drives headless Chromium. Our tests
	// require it; the grading tool skips the check when Chromium is absent.
	Browser bool
	// Alone marks a check that measures how much CPU the server gets: it
	// runs while no other check runs on the machine (harness.LockCPU), so
	// that a loaded machine does not pass for a slow server.
	Alone bool
	// Limit bounds how long the check may take at normal sizes (ten times
	// as long with Env.Long); zero means DefaultLimit. A check past its
	// limit fails, and its server is replaced for the next one.
	Limit time.Duration
	Run   func(e *Env) error
}

// DefaultLimit is a check's time limit when it sets none. It is a backstop
// for a check stuck on a server, not a speed target: a server that stops
// answering fails a check sooner, on the check's own read timeouts, and a
// slow but working server (the test suite's broken servers pause 400 ms in
// each of their first 100 replies) must still finish.
const DefaultLimit = 60 * time.Second

// limit is the milestone's time limit at the given sizes.
func (m Milestone) limit(long bool) time.Duration {
	l := m.Limit
	if l == 0 {
		l = DefaultLimit
	}
	if long {
		l *= 10
	}
	return l
}

// Applies reports whether the milestone is checked at stage n.
func (m Milestone) Applies(n int) bool { return m.From <= n && n <= m.To }

// Failure is a check's verdict when the server misbehaved.
type Failure struct {
	Expected string
	Observed string
}

func (f *Failure) Error() string {
	return fmt.Sprintf("expected %s; observed %s", f.Expected, f.Observed)
}

// fail builds a *Failure. The observed text is formatted with args.
func fail(expected, observed string, args ...any) error {
	return &Failure{Expected: expected, Observed: fmt.Sprintf(observed, args...)}
}

// ForStage returns the milestones that apply to stage n, in table order.
func ForStage(n int) []Milestone {
	var out []Milestone
	for _, m := range All() {
		if m.Applies(n) {
			out = append(out, m)
		}
	}
	return out
}

// FirstStage and LastStage bound the stages the suite knows.
const (
	FirstStage = 6
	LastStage  = 23
)

// All returns the whole table, in the order the checks run.
func All() []Milestone {
	return slices.Concat(socketMilestones, fileMilestones, httpMilestones, routeMilestones, listingMilestones,
		robustMilestones, proxyMilestones, startupMilestones, pathMilestones, slowReaderMilestones,
		aclMilestones, gzipMilestones, lbMilestones, timeoutMilestones, metricsMilestones, workersMilestones)
}
