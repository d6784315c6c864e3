package milestone

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"expserver-go/tests/harness"
)

// Target says what to run the suite against and where.
type Target struct {
	Stage        int
	Bin          string   // the server binary
	Args         []string // its command line
	Host         string   // where the checks connect, usually 127.0.0.1
	Ports        [4]int   // the ports it listens on, by role
	UpstreamPort int      // where the upstream listens (stages 11–13 and 16–23)
	Python       bool     // run python3 -m http.server as the upstream instead of tools/upstream
	Long         bool     // the official grader's full sizes
	Fixtures     string   // the web root copied into public/ (default: stages/public, built in)
	// CopyBin copies the binary into app/ and starts it as ./NAME, where
	// the course's grader puts a student's binary.
	CopyBin bool
	// MetricsPort, from stage 22, is where the server's config puts its
	// metrics listener; zero leaves the config as the grader's, whose
	// server on 8004 keeps the server from listening for metrics.
	MetricsPort int
}

// UsesUpstream reports whether stage n relays to an upstream.
func UsesUpstream(n int) bool { return n >= 11 && n <= 13 || n >= 16 }

// Prepare lays out the course's directories with the fixtures and the
// config of stage 16 on, starts the upstream when the stage has one, starts the
// server and waits until it accepts on all four ports. close stops every
// process it started and removes the layout; call it even after an error.
func Prepare(t Target) (env *Env, close func(), err error) {
	var cleanups []func()
	close = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	defer func() {
		if err != nil {
			close()
		}
	}()
	fixtures := harness.Fixtures()
	if t.Fixtures != "" {
		fixtures = os.DirFS(t.Fixtures)
	}
	layout, err := harness.NewLayout(fixtures)
	if err != nil {
		return nil, close, err
	}
	cleanups = append(cleanups, func() { layout.Remove() })
	config := harness.CourseConfig(t.Ports, "localhost:"+strconv.Itoa(t.UpstreamPort))
	if t.Stage >= 22 && t.MetricsPort != 0 {
		config = withMetricsKey(config, `{"port": `+strconv.Itoa(t.MetricsPort)+`}`)
	}
	if err := os.WriteFile(filepath.Join(layout.Public, "xps_config.json"), config, 0o644); err != nil {
		return nil, close, err
	}

	env = &Env{Stage: t.Stage, Host: t.Host, Ports: t.Ports, Layout: layout, Long: t.Long}
	if UsesUpstream(t.Stage) {
		if env.Upstream, err = harness.StartUpstream(t.UpstreamPort, layout.Public, t.Python); err != nil {
			return nil, close, err
		}
		cleanups = append(cleanups, env.Upstream.Stop)
	}
	bin := t.Bin
	if t.CopyBin {
		name := filepath.Base(t.Bin)
		if err := copyExecutable(t.Bin, filepath.Join(layout.App, name)); err != nil {
			return nil, close, err
		}
		bin = "./" + name // resolved in the working directory, app/
	}
	srv := &ServerProcess{Bin: bin, Args: t.Args, Dir: layout.App, Host: t.Host, Ports: t.Ports}
	if err := srv.Start(); err != nil {
		return nil, close, err
	}
	cleanups = append(cleanups, srv.Close)
	env.Server = srv
	return env, close, nil
}

func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// Result is the verdict of one milestone.
type Result struct {
	Milestone Milestone
	Err       error // nil when it passed
	Elapsed   time.Duration
	Log       string // the tail of the server's log when it failed
	// Crash says how the server ended when it died during the case
	// ("killed by signal SIGSEGV (segmentation fault)"), or "".
	Crash string
	// TimedOut reports that the case ran past its limit and was stopped.
	TimedOut bool
	// NotRun says why the case did not run — the server was down since an
	// earlier case and did not start again, or the run's deadline had
	// passed — or "". Err says the same, but such a case is not a failure
	// of its own: the failure is the case that brought the server down.
	NotRun string
	// CrashedBy names the case after which the server died, when the case
	// did not run because of it.
	CrashedBy string
	// Inputs is a digest of the random inputs the case drew (see Env.Rand):
	// the same seed gives the same digest; "" when it drew none.
	Inputs string
}

// dyingGrace is how long Run watches a server after a failed case for an
// exit already under way.
const dyingGrace = 300 * time.Millisecond

// checkPanic is a check that panicked.
type checkPanic struct {
	value any
	stack []byte
}

func (p *checkPanic) Error() string {
	return fmt.Sprintf("the check itself failed, a bug in the checks and not in the server: panic: %v\n%s", p.value, p.stack)
}

// stopGrace is how long Run waits, after ending the server of a case past
// its limit, for the check to notice and return.
const stopGrace = 5 * time.Second

// Run runs one milestone against the prepared server, as the grader does:
// a fresh server first if the milestone asks for one, and a failure if the
// server is not running afterwards. Every milestone is also a leak check:
// once its clients are gone the server must hold no more sockets and files
// than before it. A check that runs past its limit is stopped by ending
// the server, whose sockets then fail under it. A server that died is
// restarted so the following milestones still run; if it does not start
// again, they are reported as not run, naming the case after which it died.
func (e *Env) Run(m Milestone) (r Result) {
	start := time.Now()
	var queued time.Duration // waiting for the CPU lock, which is not the case's time
	r = Result{Milestone: m}
	e.caseID, e.rng, e.inputs = m.ID, nil, nil
	defer func() {
		r.Elapsed = time.Since(start) - queued
		r.Inputs = e.inputs.digest()
		e.lastID = m.ID
	}()
	limit := m.limit(e.Long)
	if e.CaseLimit > 0 {
		limit = e.CaseLimit
	}
	if !e.Deadline.IsZero() {
		left := time.Until(e.Deadline)
		if left <= 0 {
			r.NotRun = "the time limit of the whole run was reached first"
			r.Err = errors.New(r.NotRun)
			return r
		}
		limit = min(limit, left)
	}
	if e.Server.Alive() != nil {
		if e.crashedBy == "" {
			e.crashedBy = e.lastID // it died after that case had ended
		}
		if err := e.Server.Restart(); err != nil {
			r.CrashedBy = e.crashedBy
			r.NotRun = "the server died after " + e.crashedBy + " and did not start again"
			r.Err = fmt.Errorf("%s: %w", r.NotRun, err)
			return r
		}
		e.crashedBy = ""
	}
	if m.Fresh {
		if err := e.Restart(); err != nil {
			r.Err = fmt.Errorf("restarting the server: %w", err)
		}
	}
	if r.Err == nil {
		locking := time.Now()
		release, err := harness.LockCPU(m.Alone)
		queued = time.Since(locking)
		if err != nil {
			r.Err = fmt.Errorf("the CPU lock: %w", err)
			return r
		}
		defer release()
	}
	if r.Err == nil {
		pid := e.Server.PID()
		base, baseErr := stableFDs(e, pid)
		r.Err, r.TimedOut = e.runWithin(m, limit)
		var cp *checkPanic
		if errors.As(r.Err, &cp) {
			r.NotRun = "the check itself failed (a bug in the checks, not in the server): panic: " + fmt.Sprint(cp.value)
		}
		if r.Err != nil && !r.TimedOut {
			// A server that crashed may still be on its way out (writing
			// a core dump, printing a crash report): give it a moment to
			// be seen ended, so the crash is reported in this case and
			// not in the next one.
			harness.WaitFor(dyingGrace, func() error {
				if e.Server.Alive() != nil {
					return nil
				}
				return errors.New("still running")
			})
		}
		if r.Err == nil {
			r.Err = e.alive()
		}
		// A milestone that restarted the server has nothing to compare.
		if r.Err == nil && baseErr == nil && e.Server.PID() == pid {
			if err := fdsBackTo(e, pid, base); err != nil {
				r.Err = fmt.Errorf("fd leak: %w", err)
				if dead := e.alive(); dead != nil {
					r.Err = dead // it did not leak: it died
				}
			}
		}
	}
	srv, _ := e.Server.(*ServerProcess)
	if r.Err != nil && srv != nil {
		r.Log = srv.Tail(15)
	}
	if end := e.Server.Alive(); end != nil {
		if !r.TimedOut { // a case past its limit had its server ended on purpose
			r.Crash, _ = describeEnd(end)
			e.crashedBy = m.ID
		}
		if err := e.Server.Restart(); err != nil && r.Err == nil {
			r.Err = fmt.Errorf("restarting the server: %w", err)
		} else if err == nil {
			e.crashedBy = ""
		}
	}
	return r
}

// runWithin runs the check, stopping it when it runs past limit: ending the
// server makes the check's sockets fail, so it returns, and the next case
// gets a new server.
func (e *Env) runWithin(m Milestone, limit time.Duration) (err error, timedOut bool) {
	done := make(chan error, 1)
	go func() {
		// A check that panics is a bug in the checks, not in the server:
		// it is reported as such, and the cases after it still run.
		defer func() {
			if p := recover(); p != nil {
				done <- &checkPanic{value: p, stack: debug.Stack()}
			}
		}()
		done <- m.Run(e)
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-done:
		return err, false
	case <-timer.C:
	}
	if srv, ok := e.Server.(interface{ Close() }); ok {
		srv.Close()
	}
	select {
	case <-done:
	case <-time.After(stopGrace):
	}
	return fail(fmt.Sprintf("the case to finish within its limit of %v", limit),
		"it was still waiting on the server when the limit passed"), true
}
