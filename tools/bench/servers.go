package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"expserver-go/tests/harness"

	"golang.org/x/sys/unix"
)

// The CPUs the bench splits the machine into: the measured server alone on
// one, everything that generates load or answers it on the other.
const (
	serverCPU = 0
	clientCPU = 1
)

// nofile is the open-file limit the bench asks for, for itself and, by
// inheritance, for the servers: 10,000 idle connections on each side plus
// wrk's, with room to spare.
const nofile = 65536

// The files of the web root.
const (
	smallFile = "1k.txt"
	tinyFile  = "100b.txt"
	bigFile   = "1g.bin"
)

// makeWebRoot writes the web root: 1k.txt, 100b.txt and a bigSize file of
// random bytes. The big file is written as real data, block after block, so
// that every server reads pages of the page cache rather than a sparse hole
// the kernel fills with zeros for free.
func makeWebRoot(dir string, bigSize int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	text := func(n int) []byte {
		line := []byte("eXpServer bench: the quick brown fox jumps over the lazy dog.\n")
		return bytes.Repeat(line, n/len(line)+1)[:n]
	}
	if err := os.WriteFile(filepath.Join(dir, smallFile), text(1024), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, tinyFile), text(100), 0o644); err != nil {
		return err
	}
	block := make([]byte, 1<<20)
	rand.Read(block)
	f, err := os.Create(filepath.Join(dir, bigFile))
	if err != nil {
		return err
	}
	for written := int64(0); written < bigSize; written += int64(len(block)) {
		if _, err := f.Write(block[:min(int64(len(block)), bigSize-written)]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// server is a server the bench runs: one of the three it measures, or the
// upstream.
type server struct {
	name string
	cpu  int
	// launch starts the server on port and returns it with the file it logs
	// to, if it has one. Keeping it lets the bench restart a server on a new
	// port after a run that leaked.
	launch func(port int) (*proc, string, error)

	port int
	*proc
	logPath string
}

// start launches the server on a free port and waits until it is ready for
// rows that open conns connections.
func (s *server) start(conns int) error {
	ports, err := harness.FreePorts(1)
	if err != nil {
		return err
	}
	p, logPath, err := s.launch(ports[0])
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.proc, s.logPath, s.port = p, logPath, ports[0]
	return s.ready(conns)
}

// restart stops the server and starts it again on a new port, so that the
// sockets the old one left in TIME_WAIT cannot get in the way.
func (s *server) restart(conns int) error {
	s.proc.Stop(stopGrace)
	return s.start(conns)
}

// alive returns an error carrying the server's last output if it exited.
func (s *server) alive() error {
	if err := s.Alive(); err != nil {
		return fmt.Errorf("%s exited (%v)%s", s.name, err, logTail(s.Output(), s.logPath))
	}
	return nil
}

// logTail returns the end of a process's captured output and of its log
// file, for an error message.
func logTail(output, logPath string) string {
	b, _ := os.ReadFile(logPath)
	all := strings.TrimSpace(output + "\n" + string(b))
	if len(all) > 2000 {
		all = "…" + all[len(all)-2000:]
	}
	if all == "" {
		return ""
	}
	return ":\n" + all
}

// nginxConfig is the nginx configuration of both the measured nginx and
// the upstream: one process, one worker, no daemon, every path in the temp
// dir. client_header_timeout is raised from 60 s so that nginx keeps idle
// connections open through a long -idle window, as the other two servers do.
var nginxConfig = template.Must(template.New("nginx").Parse(`worker_processes 1;
master_process off;
daemon off;
worker_rlimit_nofile {{.Nofile}};
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 65536; }
http {
	access_log off;
	sendfile on;
	client_header_timeout 1h;
	types { text/plain txt; application/octet-stream bin; }
	default_type application/octet-stream;
	client_body_temp_path {{.Dir}}/client_body;
	proxy_temp_path {{.Dir}}/proxy;
	fastcgi_temp_path {{.Dir}}/fastcgi;
	uwsgi_temp_path {{.Dir}}/uwsgi;
	scgi_temp_path {{.Dir}}/scgi;
	server {
		listen 127.0.0.1:{{.Port}};
		root {{.Root}};
		location /proxy/ {
{{- if .Upstream}}
			proxy_pass http://127.0.0.1:{{.Upstream}}/;
{{- else}}
			# Stage 17 relays the path as it came, prefix and all; nginx and
			# net/http strip it. Serving both spellings of the path keeps
			# the upstream's work the same for all three.
			alias {{.Root}}/;
{{- end}}
		}
	}
}
`))

// nginxServer is nginx with its config in a folder of its own under tmp,
// pinned to cpu. upstream is the port /proxy/ relays to, or 0 for the
// upstream itself.
func nginxServer(ps *procSet, t toolPaths, name, tmp, root string, upstream, cpu int) *server {
	dir := filepath.Join(tmp, "nginx-"+strings.ReplaceAll(name, " ", "-"))
	launch := func(port int) (*proc, string, error) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "", err
		}
		var conf bytes.Buffer
		err := nginxConfig.Execute(&conf, map[string]any{
			"Dir": dir, "Root": root, "Port": port, "Upstream": upstream, "Nofile": nofile,
		})
		if err != nil {
			return nil, "", err
		}
		confPath := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
			return nil, "", err
		}
		logPath := filepath.Join(dir, "error.log")
		p, err := ps.start(name, t.taskset, []string{"-c", strconv.Itoa(cpu), t.nginx, "-p", dir, "-e", logPath, "-c", confPath}, dir)
		return p, logPath, err
	}
	return &server{name: name, cpu: cpu, launch: launch}
}

// goServer is tools/bench/gohttp with GOMAXPROCS=1 on serverCPU.
func goServer(ps *procSet, t toolPaths, bin, tmp, root string, upstream int) *server {
	launch := func(port int) (*proc, string, error) {
		args := []string{"-c", strconv.Itoa(serverCPU), bin, "-addr", addrOf(port), "-root", root, "-upstream", addrOf(upstream)}
		p, err := ps.start(goName, t.taskset, args, tmp, "GOMAXPROCS=1")
		return p, "", err
	}
	return &server{name: goName, cpu: serverCPU, launch: launch}
}

// oursServer is stage 17 on serverCPU with a generated config. Its log goes
// to a file through the shell's redirection rather than to a pipe the bench
// would drain, so that logging costs what it costs in real use; sh and
// taskset exec, so the PID is the server's own. A restarted server appends
// to the same log.
func oursServer(ps *procSet, t toolPaths, bin, tmp, root string, upstream int) *server {
	launch := func(port int) (*proc, string, error) {
		cfg := map[string]any{
			"server_name": "eXpServer",
			"servers": []any{map[string]any{
				"listeners": []any{map[string]any{"host": "127.0.0.1", "port": port}},
				"routes": []any{
					map[string]any{"req_path": "/", "type": "file_serve", "dir_path": root},
					map[string]any{"req_path": "/proxy", "type": "reverse_proxy", "upstreams": []string{addrOf(upstream)}},
				},
			}},
		}
		b, err := json.MarshalIndent(cfg, "", "\t")
		if err != nil {
			return nil, "", err
		}
		cfgPath := filepath.Join(tmp, "ours.json")
		if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
			return nil, "", err
		}
		logPath := filepath.Join(tmp, "ours.log")
		script := fmt.Sprintf("exec %s -c %d %s %s >>%s 2>&1",
			shellQuote(t.taskset), serverCPU, shellQuote(bin), shellQuote(cfgPath), shellQuote(logPath))
		// XPS_LOG keeps errors and warnings and drops the per-connection
		// and per-request lines, as access_log off does for nginx.
		p, err := ps.start(oursName, "/bin/sh", []string{"-c", script}, tmp, "XPS_COLOR=0", "XPS_DEBUG=0", "XPS_LOG=error,warning")
		return p, logPath, err
	}
	return &server{name: oursName, cpu: serverCPU, launch: launch}
}

func addrOf(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// addr is the server's address, 127.0.0.1:port.
func (s *server) addr() string { return addrOf(s.port) }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ready waits until the server accepts connections, then checks that it
// runs on its CPU alone, may open enough files for conns connections, and
// answers the files and the proxy path with the right bodies, before
// anything is timed.
func (s *server) ready(conns int) error {
	if err := harness.WaitAccepting([]string{s.addr()}, 15*time.Second, s.alive); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	// taskset has exec'd the server by the time it accepts; its affinity
	// is the server's now.
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(s.PID(), &set); err != nil {
		return fmt.Errorf("%s: sched_getaffinity: %w", s.name, err)
	}
	if set.Count() != 1 || !set.IsSet(s.cpu) {
		return fmt.Errorf("%s (pid %d) is not pinned to CPU %d alone", s.name, s.PID(), s.cpu)
	}
	limit, err := openFileLimit(s.PID())
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if limit < uint64(conns)+100 {
		return fmt.Errorf("%s may open only %d files, too few for %d connections", s.name, limit, conns)
	}
	for _, c := range []struct {
		path string
		size int
	}{{"/" + smallFile, 1024}, {"/" + tinyFile, 100}, {"/proxy/" + tinyFile, 100}} {
		resp, err := harness.Get(s.addr(), c.path, 10*time.Second)
		if err != nil {
			return fmt.Errorf("%s: GET %s: %w", s.name, c.path, err)
		}
		if resp.Status != 200 || len(resp.Body) != c.size {
			return fmt.Errorf("%s: GET %s: status %d with %d bytes, want 200 with %d", s.name, c.path, resp.Status, len(resp.Body), c.size)
		}
	}
	return nil
}

// openFileLimit reads the soft "Max open files" limit from /proc/PID/limits.
func openFileLimit(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "Max open files"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				if fields[0] == "unlimited" {
					return ^uint64(0), nil
				}
				return strconv.ParseUint(fields[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/limits has no Max open files line", pid)
}

// raiseFileLimit raises the bench's own RLIMIT_NOFILE to nofile, which the
// servers and tools it starts inherit (os/exec passes on a limit set with
// Setrlimit). Without the privilege to raise the hard limit it settles for
// the hard limit and returns it.
func raiseFileLimit() (uint64, error) {
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: nofile, Max: nofile}); err == nil {
		return nofile, nil
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// pinSelf moves every thread of the bench onto cpu. sched_setaffinity acts
// on one thread, and threads inherit it from the thread that creates them,
// so after a pass over /proc/self/task every later thread lands on cpu too;
// a second pass catches a thread created during the first.
func pinSelf(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	for range 3 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		moved := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if unix.SchedGetaffinity(tid, &cur) == nil && cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setaffinity(%d): %w", tid, err)
			}
			moved++
		}
		if moved == 0 {
			return nil
		}
	}
	return nil
}
