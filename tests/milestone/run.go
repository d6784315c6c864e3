package milestone

import (
	"fmt"
	"os"
	"path/filepath"
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
	UpstreamPort int      // where the upstream listens (stages 11–13 and 16–17)
	Python       bool     // run python3 -m http.server as the upstream instead of tools/upstream
	Long         bool     // the official grader's full sizes
	Fixtures     string   // the web root copied into public/ (default: stages/public)
	// CopyBin copies the binary into app/ and starts it as ./NAME, where
	// the course's grader puts a student's binary.
	CopyBin bool
}

// UsesUpstream reports whether stage n relays to an upstream.
func UsesUpstream(n int) bool { return n >= 11 && n <= 13 || n >= 16 }

// Prepare lays out the course's directories with the fixtures and the
// stage 16–17 config, starts the upstream when the stage has one, starts the
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
	if t.Fixtures == "" {
		if t.Fixtures, err = harness.Fixtures(); err != nil {
			return nil, close, err
		}
	}
	layout, err := harness.NewLayout(t.Fixtures)
	if err != nil {
		return nil, close, err
	}
	cleanups = append(cleanups, func() { layout.Remove() })
	config := harness.CourseConfig(t.Ports, "localhost:"+strconv.Itoa(t.UpstreamPort))
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
}

// Run runs one milestone against the prepared server, as the grader does:
// a fresh server first if the milestone asks for one, and a failure if the
// server is not running afterwards. Every milestone is also a leak check:
// once its clients are gone the server must hold no more sockets and files
// than before it. A server that died is restarted so the following
// milestones still run.
func (e *Env) Run(m Milestone) Result {
	start := time.Now()
	r := Result{Milestone: m}
	if m.Fresh {
		if err := e.Restart(); err != nil {
			r.Err = fmt.Errorf("restarting the server: %w", err)
		}
	}
	if r.Err == nil {
		pid := e.Server.PID()
		base, baseErr := stableFDs(e, pid)
		r.Err = m.Run(e)
		if r.Err == nil {
			r.Err = e.alive()
		}
		// A milestone that restarted the server has nothing to compare.
		if r.Err == nil && baseErr == nil && e.Server.PID() == pid {
			if err := fdsBackTo(e, pid, base); err != nil {
				r.Err = fmt.Errorf("fd leak: %w", err)
			}
		}
	}
	r.Elapsed = time.Since(start)
	srv, _ := e.Server.(*ServerProcess)
	if r.Err != nil && srv != nil {
		r.Log = srv.Tail(15)
	}
	if e.Server.Alive() != nil {
		if err := e.Server.Restart(); err != nil && r.Err == nil {
			r.Err = fmt.Errorf("restarting the server: %w", err)
		}
	}
	return r
}
