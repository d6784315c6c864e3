package milestone

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"expserver-go/tests/harness"
)

// Skipped is the verdict of a check that cannot run here — against this
// binary, or on this machine — with the reason. It is not a failure.
type Skipped struct{ Reason string }

func (s *Skipped) Error() string { return "skipped: " + s.Reason }

// IsSkipped reports whether err is a check's Skipped verdict, and why.
func IsSkipped(err error) (reason string, ok bool) {
	var s *Skipped
	if errors.As(err, &s) {
		return s.Reason, true
	}
	return "", false
}

func skip(format string, args ...any) error {
	return &Skipped{Reason: fmt.Sprintf(format, args...)}
}

// An Instance is a second server started from the binary under test, beside
// the one the checks share, with a configuration of the check's own.
type Instance struct {
	// Config is the config file it reads (stages 16–17); its listeners
	// must be on Ports.
	Config []byte
	// Ports are the four ports it listens on, by role.
	Ports [4]int
	// Upstream is the host:port it relays to (stages 11–13, where it is a
	// flag of our stages; a binary without flags cannot be given one).
	Upstream string
	// Wrap is a command the binary runs under, such as "unshare -m --".
	Wrap []string
	// AsWritten keeps Config as it is. Otherwise, from stage 22, a config
	// without a metrics key gets "metrics": false: a server whose config
	// says nothing listens for metrics on 8004, and instances started side
	// by side would take that port from one another. And a config without
	// a workers key gets the one a check of stage 23 asks for (see
	// Env.withWorkers).
	AsWritten bool
	// Env is added to the server's environment.
	Env []string
}

// instanceProcess makes the process for in: the binary under test, in its
// working directory, with a command line that says what in says. The
// course's interface lets a check move only a stage 16–17 server, through
// its config file; moving the ports or the upstream of an earlier stage
// needs the flags of our stages (Env.ArgsFor), and without them the check
// is skipped.
func (e *Env) instanceProcess(in Instance) (*ServerProcess, error) {
	srv, ok := e.Server.(*ServerProcess)
	if !ok {
		return nil, skip("the server under test is not a process this check can start again")
	}
	config := ""
	if in.Config != nil {
		if e.Stage >= 22 && !in.AsWritten {
			in.Config = withMetricsKey(in.Config, "false")
		}
		if e.workers != 0 && !in.AsWritten {
			in.Config = withKey(in.Config, "workers", strconv.Itoa(e.workers))
		}
		f, err := os.CreateTemp(e.Layout.Root, "instance-*.json")
		if err != nil {
			return nil, err
		}
		_, err = f.Write(in.Config)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		config = f.Name()
	}
	var args []string
	switch {
	case e.ArgsFor != nil:
		args = e.ArgsFor(in.Ports, in.Upstream, config)
	case e.Stage >= 16 && config != "":
		args = []string{config} // the course's interface: the config path comes first
	default:
		return nil, skip("the binary takes no flags to move its ports or name its upstream")
	}
	p := &ServerProcess{Bin: srv.Bin, Args: args, Dir: srv.Dir, Env: append(slices.Clip(srv.Env), in.Env...), Host: e.Host, Ports: in.Ports}
	if len(in.Wrap) > 0 {
		p.Bin, p.Args = in.Wrap[0], append(append(in.Wrap[1:len(in.Wrap):len(in.Wrap)], srv.Bin), args...)
	}
	return p, nil
}

// StartInstance starts in and waits until it accepts on its four ports.
// The caller closes it.
func (e *Env) StartInstance(in Instance) (*ServerProcess, error) {
	p, err := e.instanceProcess(in)
	if err != nil {
		return nil, err
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("a second server of the binary, with the check's own configuration: %w", err)
	}
	return p, nil
}

// RefusedStart starts in, which must refuse to start: exit by itself
// within timeout, without serving. It returns the exit code and what the
// process printed. A server still running after timeout, or accepting
// connections for more than a second, is a failure saying so.
func (e *Env) RefusedStart(in Instance, timeout time.Duration) (code int, output string, err error) {
	sp, err := e.instanceProcess(in)
	if err != nil {
		return 0, "", err
	}
	p, err := harness.Start(sp.Bin, sp.Args, sp.Dir, sp.Env...)
	if err != nil {
		return 0, "", err
	}
	defer p.Kill()
	var serving time.Time
	addr := e.Host + ":" + strconv.Itoa(in.Ports[0])
	err = harness.WaitFor(timeout, func() error {
		if p.Alive() != nil {
			return nil
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			if serving.IsZero() {
				serving = time.Now()
			} else if time.Since(serving) > time.Second {
				return harness.Permanent(fmt.Errorf("it started and accepts connections on port %d", in.Ports[0]))
			}
		}
		return fmt.Errorf("it was still running after %v", timeout)
	})
	if err != nil {
		return 0, p.Output(), fail("the server to refuse to start", "%v; it printed %s",
			err, harness.Abbrev([]byte(strings.TrimSpace(p.Output())), 200))
	}
	code, err = p.Wait(replyTimeout) // it has ended; this collects its status
	return code, p.Output(), err
}

// withKey returns the JSON object doc with key set to value (JSON text),
// unless doc already has it or is not an object; the key goes first, so
// that the rest of the text keeps its place.
func withKey(doc []byte, key, value string) []byte {
	var members map[string]json.RawMessage
	if json.Unmarshal(doc, &members) != nil || members == nil {
		return doc
	}
	if _, ok := members[key]; ok {
		return doc
	}
	i := bytes.IndexByte(doc, '{') + 1
	sep := ","
	if len(members) == 0 {
		sep = ""
	}
	return slices.Concat(doc[:i], []byte(strconv.Quote(key)+": "+value+sep), doc[i:])
}

// freeInstancePorts returns four free ports for an instance.
func freeInstancePorts() ([4]int, error) {
	free, err := harness.FreePorts(4)
	if err != nil {
		return [4]int{}, err
	}
	return [4]int(free), nil
}

// instanceConfig returns a config with one server per port, the i-th
// listening on 0.0.0.0:ports[i] with routes[i].
func instanceConfig(ports [4]int, routes [4][]map[string]any) []byte {
	type listener struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	type server struct {
		Listeners []listener       `json:"listeners"`
		Routes    []map[string]any `json:"routes,omitempty"`
	}
	var cfg struct {
		Servers []server `json:"servers"`
	}
	for i, port := range ports {
		cfg.Servers = append(cfg.Servers, server{Listeners: []listener{{"0.0.0.0", port}}, Routes: routes[i]})
	}
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		panic(fmt.Sprintf("milestone: instance config: %v", err)) // plain data; cannot fail
	}
	return b
}
