package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"expserver-go/tests/harness"
	"expserver-go/tests/milestone"
)

// runConfigured runs our stage n binary with args in dir, expecting it to
// exit by itself within 10 s, and returns its exit code and what it printed
// on stdout (the log) and on stderr.
func runConfigured(t *testing.T, n int, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin, err := harness.BuildStage(n)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var outBuf, errBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("stage %d %q did not exit", n, args)
	}
	return cmd.ProcessState.ExitCode(), outBuf.String(), errBuf.String()
}

// TestBadConfigs starts stages 16 and 17 with broken configs: each must
// exit with status 2 and one line naming the file and the JSON path of the
// mistake, before binding anything.
func TestBadConfigs(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"unknown route type", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":1}],"routes":[{"req_path":"/","type":"fileserve"}]}]}`,
			`servers[0].routes[0].type: unknown route type "fileserve" (want file_serve, reverse_proxy or redirect)`},
		{"port out of range", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":70000}]}]}`,
			`servers[0].listeners[0].port: 70000 is not a port (1–65535)`},
		{"port as a string", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":"8001"}]}]}`,
			`servers[0].listeners[0].port: want a number, got string "8001"`},
		{"misspelt key", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":1}],"routes":[{"req_path":"/","type":"file_serve","dir_pth":"."}]}]}`,
			`servers[0].routes[0].dir_pth: unknown key`},
		{"missing folder", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":1}],"routes":[{"req_path":"/","type":"file_serve","dir_path":"../nowhere"}]}]}`,
			`servers[0].routes[0].dir_path: ../nowhere: no such directory`},
		{"upstream without port", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":1}],"routes":[{"req_path":"/","type":"reverse_proxy","upstreams":["localhost"]}]}]}`,
			`servers[0].routes[0].upstreams[0]: "localhost" is not host:port`},
		{"redirect status", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":1}],"routes":[{"req_path":"/","type":"redirect","http_status_code":200,"redirect_url":"/x"}]}]}`,
			`servers[0].routes[0].http_status_code: 200 is not a redirect status (301, 302, 303, 307 or 308)`},
		{"relative req_path", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":1}],"routes":[{"req_path":"api","type":"redirect","http_status_code":301,"redirect_url":"/x"}]}]}`,
			`servers[0].routes[0].req_path: must start with "/"`},
		{"no servers", `{"servers":[]}`, `servers: at least one server is needed`},
		{"syntax error", "{\n  \"servers\": [\n    {\"listeners\": [}\n  ]\n}", `3:20: invalid character '}' looking for beginning of value`},
		{"port 0", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":0}]}]}`,
			`servers[0].listeners[0].port: 0 is not a port (1–65535)`},
		{"duplicate key in a route", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":1}],"routes":[{"req_path":"/","type":"file_serve","type":"redirect"}]}]}`,
			`servers[0].routes[0]: duplicate key "type"`},
		{"duplicate key in a listener", `{"servers":[{"listeners":[{"host":"0.0.0.0","port":1,"port":2}]}]}`,
			`servers[0].listeners[0]: duplicate key "port"`},
	}
	dir := t.TempDir()
	for _, n := range []int{16, 17} {
		for _, tc := range cases {
			path := filepath.Join(dir, "bad.json")
			if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runConfigured(t, n, dir, path)
			want := fmt.Sprintf("%s: %s\n", path, tc.want)
			if code != 2 || !strings.HasSuffix(stderr, want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stage %d, %s: exit %d, stderr %q; want exit 2 and the one line …%q", n, tc.name, code, stderr, want)
			}
		}
	}
}

func TestConfigCommandLine(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{16, 17} {
		code, _, stderr := runConfigured(t, n, dir, "/nonexistent.json")
		if code != 2 || !strings.HasSuffix(stderr, ": /nonexistent.json: no such file or directory\n") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("stage %d with a missing config: exit %d, stderr %q", n, code, stderr)
		}
		code, _, stderr = runConfigured(t, n, dir)
		if code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("stage %d without arguments: exit %d, stderr %q; want the usage and exit 2", n, code, stderr)
		}
	}
}

// TestPortInUse starts stage 17 on a port something else holds: it must exit
// with status 1 and an error naming the listener.
func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	path := filepath.Join(dir, "c.json")
	doc := fmt.Sprintf(`{"servers":[{"listeners":[{"host":"0.0.0.0","port":%d}]}]}`, port)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runConfigured(t, 17, dir, path)
	if out := stdout + stderr; code != 1 || !strings.Contains(out, fmt.Sprintf("listener 0.0.0.0:%d: bind: address already in use", port)) {
		t.Fatalf("exit %d, output %q; want exit 1 naming the listener", code, out)
	}
}

// TestUnresolvableUpstream starts stages 16 and 17 with a config whose
// second server proxies to a name that cannot resolve: each must exit with
// status 2 and one line naming the file, the JSON path and the name, before
// binding anything. (The resolver's own reason ends the line.)
func TestUnresolvableUpstream(t *testing.T) {
	free, err := harness.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c.json")
	doc := fmt.Sprintf(`{"servers":[{"listeners":[{"host":"0.0.0.0","port":%d}]},
		{"listeners":[{"host":"0.0.0.0","port":%d}],"routes":[{"req_path":"/","type":"reverse_proxy","upstreams":["localhost:3000","no-such-host.invalid:3000"]}]}]}`,
		free[0], free[1])
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	want := path + `: servers[1].routes[0].upstreams[1]: cannot resolve "no-such-host.invalid": `
	for _, n := range []int{16, 17} {
		code, _, stderr := runConfigured(t, n, dir, path)
		if code != 2 || !strings.Contains(stderr, want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("stage %d: exit %d, stderr %q; want exit 2 and one line with …%q", n, code, stderr, want)
		}
	}
}

// TestBindErrorOnStderr starts every stage on a port something else holds:
// it must exit with status 1 and say so on stderr, where errors go, naming
// the port — not on stdout, where the log goes.
func TestBindErrorOnStderr(t *testing.T) {
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	free, err := harness.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	// The course's layout: stages 12–15 serve ../public and want it there.
	root := t.TempDir()
	dir := filepath.Join(root, "app")
	config := filepath.Join(root, "c.json")
	doc := fmt.Sprintf(`{"servers":[{"listeners":[{"host":"0.0.0.0","port":%d}]}]}`, port)
	if err := harness.WriteTree(root, map[string]string{"app/.keep": "", "public/sample.txt": "sample\n", "c.json": doc}); err != nil {
		t.Fatal(err)
	}
	for n := 6; n <= milestone.LastStage; n++ {
		args := []string{config}
		if n < 16 {
			args = []string{"-ports", fmt.Sprintf("%d,%d,%d,%d", port, free[0], free[1], free[2]), "-upstream", "127.0.0.1:1", config}
			if !milestone.UsesUpstream(n) {
				args = slices.Delete(args, 2, 4)
			}
		}
		code, stdout, stderr := runConfigured(t, n, dir, args...)
		if code != 1 || !strings.Contains(stderr, strconv.Itoa(port)) || !strings.Contains(stderr, "address already in use") || strings.Contains(stdout, "address already in use") {
			t.Errorf("stage %d: exit %d, stdout %q, stderr %q; want exit 1 and the bind error, naming port %d, on stderr only", n, code, stdout, stderr, port)
		}
	}
}
