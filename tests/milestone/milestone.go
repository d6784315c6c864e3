package milestone

import (
	"fmt"
	"slices"
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
	Run     func(e *Env) error
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
	LastStage  = 17
)

// All returns the whole table, in the order the checks run.
func All() []Milestone {
	return slices.Concat(socketMilestones, fileMilestones, httpMilestones, routeMilestones, listingMilestones)
}
