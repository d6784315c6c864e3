package harness

import (
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// Upstream is the HTTP upstream a stage relays to: `python3 -m http.server`
// as the course's grader runs it, or the repository's tools/upstream, which
// behaves the same on the wire. It serves Dir on Port on every interface.
type Upstream struct {
	Port   int
	Dir    string
	Python bool
	// Flags are more flags for tools/upstream, such as -silent or -record
	// DIR, which make it a test instrument; Python has none.
	Flags []string
	proc  *Process
}

// UpstreamCommand returns the program that runs tools/upstream and the
// arguments that come before the upstream's own flags. By default it builds
// tools/upstream, which needs Go and this repository; the grading tool, which
// carries the upstream inside its own binary, replaces it with a command
// that starts itself.
var UpstreamCommand = func() (bin string, lead []string, err error) {
	bin, err = Build("tools/upstream")
	return bin, nil, err
}

// PythonAvailable reports whether python3 is on the PATH.
func PythonAvailable() bool {
	_, err := exec.LookPath("python3")
	return err == nil
}

// StartUpstream starts an upstream serving dir on port and waits until it
// accepts connections.
func StartUpstream(port int, dir string, python bool) (*Upstream, error) {
	u := &Upstream{Port: port, Dir: dir, Python: python}
	return u, u.Start()
}

// Start (re)starts the upstream process after Stop. Starting a running
// upstream is an error: a second process could not bind the port.
func (u *Upstream) Start() error {
	if u.Running() {
		return fmt.Errorf("harness: the upstream on port %d is already running", u.Port)
	}
	var bin string
	var args []string
	if u.Python {
		bin, args = "python3", []string{"-m", "http.server", strconv.Itoa(u.Port), "-d", u.Dir}
	} else {
		b, lead, err := UpstreamCommand()
		if err != nil {
			return err
		}
		bin, args = b, append(append(lead, "-bind", "0.0.0.0", "-port", strconv.Itoa(u.Port), "-d", u.Dir), u.Flags...)
	}
	p, err := Start(bin, args, u.Dir)
	if err != nil {
		return err
	}
	alive := func() error {
		if err := p.Alive(); err != nil {
			return fmt.Errorf("upstream exited: %v\n%s", err, p.Output())
		}
		return nil
	}
	if err := WaitAccepting([]string{"127.0.0.1:" + strconv.Itoa(u.Port)}, 10*time.Second, alive); err != nil {
		p.Kill()
		return err
	}
	u.proc = p
	return nil
}

// Stop kills the upstream process, as the grader does before its
// "upstream down" tests, and waits until it is gone.
func (u *Upstream) Stop() {
	if u.proc != nil {
		u.proc.Kill()
		u.proc = nil
	}
}

// Running reports whether the upstream process is up.
func (u *Upstream) Running() bool {
	return u.proc != nil && u.proc.Alive() == nil
}

// Output returns what the upstream has logged.
func (u *Upstream) Output() string {
	if u.proc == nil {
		return ""
	}
	return u.proc.Output()
}
