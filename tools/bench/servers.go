package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"expserver-go/tests/harness"

	"golang.org/x/sys/unix"
)

// nofile is the open-file limit the bench asks for, for itself and, by
// inheritance, for the servers: 10,000 idle connections on each side plus
// wrk's, with room to spare.
const nofile = 65536

// The files of the web root. The gzip rows' files live under gz/, served
// with compression on by every server that compresses; acl/ holds a copy of
// the 1 KiB file behind an access list.
const (
	smallFile = "1k.txt"
	tinyFile  = "100b.txt"
	bigFile   = "1g.bin"
	textFile  = "gz/1m.txt"
	bigText   = "gz/big.txt"
	aclFile   = "acl/1k.txt"
)

// textSize is the size of the gzip row's file.
const textSize = 1 << 20

// content is what the web root's generated files hold, so that a row can
// check a decoded body against it without keeping a copy of a GiB: each is
// block repeated up to size.
type content struct {
	block []byte
	size  int64
}

// webRoot is the web root the bench writes and what its text files hold.
type webRoot struct {
	dir           string
	text, bigText content
}

// makeWebRoot writes the web root: 1k.txt, 100b.txt and a bigSize file of
// random bytes; acl/1k.txt; gz/1m.txt, 1 MiB of text that compresses as
// prose does (about 3.5:1); gz/big.txt, bigSize bytes of one line repeated.
// The big files are written as real data, block after block, so that every
// server reads pages of the page cache rather than a sparse hole the kernel
// fills with zeros for free.
//
// The big text is one repeated line, which deflate compresses hundreds of
// times faster than prose: the row it serves measures memory over a long
// compressed stream, and a GiB of prose would take a minute of compression
// per server and round without telling more. What compression costs per
// byte is the 1 MiB row's to measure.
func makeWebRoot(dir string, bigSize int64) (webRoot, error) {
	w := webRoot{dir: dir}
	for _, sub := range []string{"gz", "acl"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return w, err
		}
	}
	line := []byte("eXpServer bench: the quick brown fox jumps over the lazy dog.\n")
	text := func(n int) []byte { return bytes.Repeat(line, n/len(line)+1)[:n] }
	for name, data := range map[string][]byte{smallFile: text(1024), aclFile: text(1024), tinyFile: text(100)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return w, err
		}
	}
	w.text = content{block: prose(textSize), size: textSize}
	if err := os.WriteFile(filepath.Join(dir, textFile), w.text.block, 0o644); err != nil {
		return w, err
	}
	random := make([]byte, 1<<20)
	rand.Read(random)
	if err := writeRepeated(filepath.Join(dir, bigFile), random, bigSize); err != nil {
		return w, err
	}
	// A block of whole lines, so that the file is the line repeated.
	w.bigText = content{block: bytes.Repeat(line, (1<<20)/len(line)), size: bigSize}
	return w, writeRepeated(filepath.Join(dir, bigText), w.bigText.block, bigSize)
}

// writeRepeated writes block repeated up to size bytes to path.
func writeRepeated(path string, block []byte, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for written := int64(0); written < size; written += int64(len(block)) {
		if _, err := f.Write(block[:min(int64(len(block)), size-written)]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// proseWords are the words of prose.
var proseWords = strings.Fields(`the server event loop reads a request from each client and writes its
response when the socket is ready pipe buffer file upstream proxy header body timer connection closes
after bytes of to in with that for on as by every compressed stream memory flat under back-pressure
nginx listener accepts new clients until queue empty`)

// prose returns n bytes of text made of proseWords and numbers in lines of
// at most 72 characters, the same on every run (a fixed seed), which
// compresses at level 6 to about 29 % of its size, as English prose does.
func prose(n int) []byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	var b bytes.Buffer
	col := 0
	for b.Len() < n {
		w := proseWords[r.IntN(len(proseWords))]
		if r.IntN(7) == 0 {
			w = strconv.Itoa(r.IntN(100000))
		}
		if col+len(w)+1 > 72 {
			b.WriteString(".\n")
			col = 0
		}
		if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.Bytes()[:n]
}

// check is a GET a server must answer with status 200 and size bytes of
// body before anything is timed.
type check struct {
	path string
	size int
}

// server is a server the bench runs: one of those it measures, or the
// upstream.
type server struct {
	name  string // the column it reports in: nginxName, goName or oursName
	label string // what progress lines and notes call it
	cpus  []int  // the CPUs it is pinned to
	// launch starts the server on port and returns it. Keeping it lets the
	// bench restart a server on a new port after a run that leaked, or
	// after row (xii) stopped it.
	launch func(port int) (*proc, error)
	checks []check
	// balanced: GET /lb/ is relayed to three upstreams in turn, which
	// ready checks by the X-Upstream header the upstreams add.
	balanced bool

	port        int
	ports       []int // every port it listens on: the upstream's three, else port
	metricsPort int   // ours from stage 22: where its /api answers; 0 without
	*proc
	logPath string
}

// baseChecks are the GETs every measured server answers.
var baseChecks = []check{{"/" + smallFile, 1024}, {"/" + tinyFile, 100}, {"/proxy/" + tinyFile, 100}}

// start launches the server on a free port and waits until it is ready for
// rows that open conns connections.
func (s *server) start(conns int) error {
	ports, err := harness.FreePorts(1)
	if err != nil {
		return err
	}
	s.port = ports[0]
	p, err := s.launch(s.port)
	if err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	s.proc = p
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
		return fmt.Errorf("%s exited (%v)%s", s.label, err, logTail(s.Output(), s.logPath))
	}
	return nil
}

// cpu returns the CPU seconds the server has used, its children's included.
func (s *server) cpu() (float64, error) {
	c, err := familyCPU(s.PID())
	if err != nil {
		return 0, fmt.Errorf("%s: %w%s", s.label, err, logTail(s.Output(), s.logPath))
	}
	return c, nil
}

// fds returns the fds the server holds, its children's included.
func (s *server) fds() (int, error) {
	n, err := familyFDs(s.PID())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.label, err)
	}
	return n, nil
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

// gzipLevel is the compression level of every server's gzip rows: zlib's
// default, nginx's usual setting, and ours' gzip_level default.
const gzipLevel = 6

// longTimeout is the header timeout of every server outside the slowloris
// row: nginx's client_header_timeout and, from stage 21, ours, raised so
// that idle connections stay open through a long -idle window while the
// timer of each is armed.
const longTimeout = time.Hour

// nginxSetup is what differs between the nginx instances.
type nginxSetup struct {
	ports         int           // how many ports it listens on: the upstream three, the others one
	upstreams     []int         // the upstreams of /proxy/ (the first) and /lb/ (all); none for the upstream itself
	headerTimeout time.Duration // client_header_timeout
	workers       int           // 0: one process (master_process off); N: a master and N workers
}

// nginxConfig is the nginx configuration of the measured nginx instances
// and of the upstream: no daemon, every path in the instance's folder, and
// either one process or a master with workers (rows vii–xii). The measured
// nginx compresses gz/ as ours does (same level, Vary added) and balances
// /lb/ round robin over the three upstream ports, each connection new
// (nginx's default, as ours does); the upstream adds X-Upstream, its port,
// so a check can see the balancing.
var nginxConfig = template.Must(template.New("nginx").Parse(`
{{- if .Workers}}worker_processes {{.Workers}};
worker_cpu_affinity auto;
{{- else}}worker_processes 1;
master_process off;
{{- end}}
daemon off;
worker_rlimit_nofile {{.Nofile}};
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 65536; }
http {
	access_log off;
	sendfile on;
	client_header_timeout {{.HeaderTimeout}};
	types { text/plain txt; application/octet-stream bin; }
	default_type application/octet-stream;
	client_body_temp_path {{.Dir}}/client_body;
	proxy_temp_path {{.Dir}}/proxy;
	fastcgi_temp_path {{.Dir}}/fastcgi;
	uwsgi_temp_path {{.Dir}}/uwsgi;
	scgi_temp_path {{.Dir}}/scgi;
{{- if .Upstreams}}
	upstream backends {
{{- range .Upstreams}}
		server 127.0.0.1:{{.}};
{{- end}}
	}
{{- end}}
	server {
{{- range .Listen}}
		listen 127.0.0.1:{{.}};
{{- end}}
		root {{.Root}};
{{- if .Upstreams}}
		location /proxy/ {
			proxy_pass http://127.0.0.1:{{index .Upstreams 0}}/;
		}
		location /lb/ {
			proxy_pass http://backends/;
		}
		location /gz/ {
			gzip on;
			gzip_comp_level {{.GzipLevel}};
			gzip_types text/plain;
			gzip_vary on;
		}
{{- else}}
		add_header X-Upstream $server_port;
		# Ours relays the path as it came, prefix and all; nginx and
		# net/http strip it. Serving both spellings of the path keeps the
		# upstream's work the same for all three.
		location /proxy/ {
			alias {{.Root}}/;
		}
		location /lb/ {
			alias {{.Root}}/;
		}
{{- end}}
	}
}
`))

// nginxServer is an nginx instance with its config in a folder of its own
// under tmp, pinned to cpus; slug names the folder.
func nginxServer(ps *procSet, t toolPaths, label, slug, tmp, root string, setup nginxSetup, cpus []int) *server {
	dir := filepath.Join(tmp, "nginx-"+slug)
	s := &server{name: nginxName, label: label, cpus: cpus, checks: baseChecks}
	s.launch = func(port int) (*proc, error) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		s.ports = []int{port}
		if setup.ports > 1 {
			more, err := harness.FreePorts(setup.ports - 1)
			if err != nil {
				return nil, err
			}
			s.ports = append(s.ports, more...)
		}
		var conf bytes.Buffer
		err := nginxConfig.Execute(&conf, map[string]any{
			"Dir": dir, "Root": root, "Listen": s.ports, "Upstreams": setup.upstreams, "Nofile": nofile,
			"HeaderTimeout": nginxDuration(setup.headerTimeout), "Workers": setup.workers, "GzipLevel": gzipLevel,
		})
		if err != nil {
			return nil, err
		}
		confPath := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		s.logPath = filepath.Join(dir, "error.log")
		return ps.start(label, t.taskset, []string{"-c", cpuList(cpus), t.nginx, "-p", dir, "-e", s.logPath, "-c", confPath}, dir)
	}
	if setup.upstreams != nil {
		s.checks = append(slices.Clone(baseChecks), check{"/" + textFile, textSize})
		s.balanced = true
	}
	return s
}

// nginxDuration writes d as an nginx time: whole seconds, or an hour as 1h.
func nginxDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%ds", (d+time.Second-1)/time.Second)
}

// goServer is tools/bench/gohttp with GOMAXPROCS=1 on serverCPU.
func goServer(ps *procSet, t toolPaths, bin, tmp, root string, upstream int) *server {
	s := &server{name: goName, label: goName, cpus: []int{serverCPU}, checks: baseChecks}
	s.launch = func(port int) (*proc, error) {
		args := []string{"-c", strconv.Itoa(serverCPU), bin, "-addr", addrOf(port), "-root", root, "-upstream", addrOf(upstream)}
		return ps.start(goName, t.taskset, args, tmp, "GOMAXPROCS=1")
	}
	return s
}

// The first stage of each lesson a row needs.
const (
	stageACL     = 18 // ip_whitelist, ip_blacklist
	stageGzip    = 19 // gzip_enable, gzip_level
	stageBalance = 20 // several upstreams, load_balancing
	stageTimers  = 21 // the six timeouts
	stageMetrics = 22 // the metrics listener
	stageWorkers = 23 // workers, worker_cpu_affinity
)

// oursSetup is what differs between the instances of ours.
type oursSetup struct {
	stage         int
	upstreams     []int         // /proxy relays to the first, /lb balances over all
	headerTimeout time.Duration // from stageTimers; 0 means longTimeout
	workers       int           // from stageWorkers; 0 leaves the key out (one worker)
	metricsPort   int           // from stageMetrics; 0 turns the metrics listener off
}

// oursConfig is the config of ours on port: the routes of the rows the
// stage can serve, each with only the keys that stage knows, since an
// unknown key is a config error. Every route serves the same web root:
// with nginx's root semantics the request path stays part of the file
// path, so /gz/1m.txt is the same file on every server.
func oursConfig(port int, root string, s oursSetup) map[string]any {
	routes := []any{
		map[string]any{"req_path": "/", "type": "file_serve", "dir_path": root},
		map[string]any{"req_path": "/proxy", "type": "reverse_proxy", "upstreams": []string{addrOf(s.upstreams[0])}},
	}
	if s.stage >= stageACL {
		// An access list of the size a real one has, which the client
		// (127.0.0.1) passes after every entry has been looked at.
		routes = append(routes, map[string]any{
			"req_path": "/acl", "type": "file_serve", "dir_path": root,
			"ip_whitelist": []string{"10.0.0.0/8", "192.168.0.0/16", "127.0.0.0/8"},
			"ip_blacklist": []string{"127.0.0.2"},
		})
	}
	if s.stage >= stageGzip {
		routes = append(routes, map[string]any{
			"req_path": "/gz", "type": "file_serve", "dir_path": root, "gzip_enable": true, "gzip_level": gzipLevel,
		})
	}
	if s.stage >= stageBalance {
		var ups []string
		for _, p := range s.upstreams {
			ups = append(ups, addrOf(p))
		}
		routes = append(routes, map[string]any{
			"req_path": "/lb", "type": "reverse_proxy", "load_balancing": "round_robin", "upstreams": ups,
		})
	}
	cfg := map[string]any{
		"server_name": "eXpServer",
		"servers": []any{map[string]any{
			"listeners": []any{map[string]any{"host": "127.0.0.1", "port": port}},
			"routes":    routes,
		}},
	}
	if s.stage >= stageTimers {
		t := s.headerTimeout
		if t == 0 {
			t = longTimeout
		}
		cfg["client_header_timeout"] = t.Seconds()
	}
	if s.stage >= stageMetrics {
		if s.metricsPort != 0 {
			cfg["metrics"] = map[string]any{"host": "127.0.0.1", "port": s.metricsPort}
		} else {
			cfg["metrics"] = false
		}
	}
	if s.stage >= stageWorkers && s.workers > 0 {
		cfg["workers"] = s.workers
		cfg["worker_cpu_affinity"] = "auto"
	}
	return cfg
}

// oursServer is a stage's binary on cpus with a config from oursConfig;
// slug names its config and log files. With withMetrics, and a stage that
// has them, it gets a metrics listener on a port of its own. Its log goes
// to a file through the shell's redirection rather than to a pipe the bench
// would drain, so that logging costs what it costs in real use; sh and
// taskset exec, so the PID is the server's own. A restarted server appends
// to the same log.
func oursServer(ps *procSet, t toolPaths, bin, label, slug, tmp, root string, setup oursSetup, withMetrics bool, cpus []int) *server {
	s := &server{name: oursName, label: label, cpus: cpus, checks: slices.Clone(baseChecks)}
	if setup.stage >= stageACL {
		s.checks = append(s.checks, check{"/" + aclFile, 1024})
	}
	if setup.stage >= stageGzip {
		s.checks = append(s.checks, check{"/" + textFile, textSize})
	}
	s.balanced = setup.stage >= stageBalance
	s.launch = func(port int) (*proc, error) {
		if withMetrics && setup.stage >= stageMetrics {
			ports, err := harness.FreePorts(1)
			if err != nil {
				return nil, err
			}
			setup.metricsPort = ports[0]
		}
		s.metricsPort = setup.metricsPort
		b, err := json.MarshalIndent(oursConfig(port, root, setup), "", "\t")
		if err != nil {
			return nil, err
		}
		cfgPath := filepath.Join(tmp, "ours-"+slug+".json")
		if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
			return nil, err
		}
		s.logPath = filepath.Join(tmp, "ours-"+slug+".log")
		script := fmt.Sprintf("exec %s -c %s %s %s >>%s 2>&1",
			shellQuote(t.taskset), cpuList(cpus), shellQuote(bin), shellQuote(cfgPath), shellQuote(s.logPath))
		// XPS_LOG keeps errors and warnings and drops the per-connection
		// and per-request lines, as access_log off does for nginx.
		return ps.start(label, "/bin/sh", []string{"-c", script}, tmp, "XPS_COLOR=0", "XPS_DEBUG=0", "XPS_LOG=error,warning")
	}
	return s
}

func addrOf(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// addr is the server's address, 127.0.0.1:port.
func (s *server) addr() string { return addrOf(s.port) }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ready waits until the server accepts connections, then checks that it
// runs on its CPUs alone, may open enough files for conns connections, and
// answers its checks with the right bodies, before anything is timed.
func (s *server) ready(conns int) error {
	if err := harness.WaitAccepting([]string{s.addr()}, 15*time.Second, s.alive); err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	// taskset has exec'd the server by the time it accepts; its affinity
	// is the server's now. A server that pins its workers (nginx's and
	// ours' worker_cpu_affinity) narrows it further, never beyond.
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(s.PID(), &set); err != nil {
		return fmt.Errorf("%s: sched_getaffinity: %w", s.label, err)
	}
	inside := 0
	for _, c := range s.cpus {
		if set.IsSet(c) {
			inside++
		}
	}
	if set.Count() == 0 || inside != set.Count() {
		return fmt.Errorf("%s (pid %d) is not pinned to CPUs %s alone", s.label, s.PID(), cpuList(s.cpus))
	}
	limit, err := openFileLimit(s.PID())
	if err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	if limit < uint64(conns)+100 {
		return fmt.Errorf("%s may open only %d files, too few for %d connections", s.label, limit, conns)
	}
	for _, c := range s.checks {
		resp, err := harness.Get(s.addr(), c.path, 10*time.Second)
		if err != nil {
			return fmt.Errorf("%s: GET %s: %w", s.label, c.path, err)
		}
		if resp.Status != 200 || len(resp.Body) != c.size {
			return fmt.Errorf("%s: GET %s: status %d with %d bytes, want 200 with %d", s.label, c.path, resp.Status, len(resp.Body), c.size)
		}
	}
	if s.balanced {
		return s.checkBalanced()
	}
	return nil
}

// checkBalanced checks that three GETs of /lb/ reach the three upstreams,
// so that row (lb) measures a balancing proxy and not one that sticks to
// one upstream.
func (s *server) checkBalanced() error {
	seen := map[string]bool{}
	for range 3 {
		resp, err := harness.Get(s.addr(), "/lb/"+tinyFile, 10*time.Second)
		if err != nil {
			return fmt.Errorf("%s: GET /lb/%s: %w", s.label, tinyFile, err)
		}
		if resp.Status != 200 || len(resp.Body) != 100 {
			return fmt.Errorf("%s: GET /lb/%s: status %d with %d bytes, want 200 with 100", s.label, tinyFile, resp.Status, len(resp.Body))
		}
		seen[resp.Get("X-Upstream")] = true
	}
	if len(seen) != 3 {
		return fmt.Errorf("%s: three GETs of /lb/%s reached %d distinct upstreams, want 3 (round robin)", s.label, tinyFile, len(seen))
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
