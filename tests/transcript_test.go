package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"expserver-go/tests/harness"
	"expserver-go/tests/milestone"
)

// A transcript is a ```console block of a README's "Try it" section: lines
// starting with "$ " are commands, the lines after one are its expected
// output. A command ending in " &" runs in the background for the rest of
// the block, and the block's next command waits until it listens:
// `make stage-N run &` on ports 8001–8004, `make upstream &` on port 3000.
// In expected output, "…" matches any text within a line, and a line that
// is only "…" matches any number of lines.
type transcript struct {
	file  string
	line  int // of the opening fence
	steps []step
}

type step struct {
	cmd  string
	want []string
	line int
}

var fence = regexp.MustCompile("^```console\\s*$")

// readTranscripts returns the console blocks of the "## Try it" section.
func readTranscripts(path string) ([]transcript, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []transcript
	var cur *transcript
	inSection := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			inSection = strings.HasPrefix(line, "## Try it")
		case !inSection:
		case cur == nil && fence.MatchString(line):
			cur = &transcript{file: path, line: n}
		case cur != nil && line == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil && strings.HasPrefix(line, "$ "):
			cur.steps = append(cur.steps, step{cmd: line[2:], line: n})
		case cur != nil:
			if len(cur.steps) == 0 {
				return nil, fmt.Errorf("%s:%d: output before any command", path, n)
			}
			s := &cur.steps[len(cur.steps)-1]
			s.want = append(s.want, strings.TrimRight(line, " \t"))
		}
	}
	return out, sc.Err()
}

// matchOutput compares output lines with expected ones, honouring "…".
func matchOutput(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "…" {
		for k := 0; k <= len(got); k++ {
			if matchOutput(want[1:], got[k:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && matchLine(want[0], got[0]) && matchOutput(want[1:], got[1:])
}

func matchLine(want, got string) bool {
	parts := strings.Split(want, "…")
	pattern := "^"
	for i, p := range parts {
		if i > 0 {
			pattern += ".*"
		}
		pattern += regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(pattern + "$").MatchString(got)
}

// waitPorts lists what a background command must be listening on before
// the next command runs.
func waitPorts(cmd string) []string {
	switch {
	case strings.HasPrefix(cmd, "make stage-"):
		return []string{"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003", "127.0.0.1:8004"}
	case strings.HasPrefix(cmd, "make upstream"):
		return []string{"127.0.0.1:3000"}
	}
	return nil
}

// TestTranscripts runs every README's "Try it" transcript and compares the
// output, so the docs cannot drift from what the servers really do.
func TestTranscripts(t *testing.T) {
	if _, err := exec.LookPath("nc"); err != nil {
		t.Fatal("the transcripts need nc (Debian: netcat-openbsd); .ci/run installs it")
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	release, err := harness.LockCoursePorts()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	files := []string{filepath.Join(root, "README.md")}
	for n := milestone.FirstStage; n <= milestone.LastStage; n++ {
		if dir, err := harness.StageDir(root, n); err == nil {
			files = append(files, filepath.Join(root, dir, "README.md"))
		}
	}
	for _, file := range files {
		ts, err := readTranscripts(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		for _, tr := range ts {
			t.Run(fmt.Sprintf("%s:%d", rel, tr.line), func(t *testing.T) { runTranscript(t, root, rel, tr) })
		}
	}
}

func runTranscript(t *testing.T, root, rel string, tr transcript) {
	// A reader types these commands in a plain shell, not inside make:
	// when the suite itself runs under make, a nested make would print
	// "Entering directory" lines the transcript does not show.
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES":
		default:
			env = append(env, kv)
		}
	}
	env = append(env, "XPS_COLOR=0")
	var background []*exec.Cmd
	defer func() {
		for _, c := range background {
			syscall.Kill(-c.Process.Pid, syscall.SIGINT)
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
	}()
	for _, s := range tr.steps {
		if cmd, ok := strings.CutSuffix(s.cmd, " &"); ok {
			c := exec.Command("bash", "-c", cmd)
			c.Dir, c.Env = root, env
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out strings.Builder
			c.Stdout, c.Stderr = &out, &out
			if err := c.Start(); err != nil {
				t.Fatalf("%s:%d: %s: %v", rel, s.line, cmd, err)
			}
			background = append(background, c)
			if err := harness.WaitAccepting(waitPorts(cmd), 60*time.Second, nil); err != nil {
				t.Fatalf("%s:%d: %s did not start listening: %v\n%s", rel, s.line, cmd, err, out.String())
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c := exec.CommandContext(ctx, "bash", "-c", s.cmd)
		c.Dir, c.Env = root, env
		out, err := c.CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("%s:%d: %s: %v", rel, s.line, s.cmd, err)
		}
		got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if len(out) == 0 {
			got = nil
		}
		for i := range got {
			got[i] = strings.TrimRight(got[i], " \t\r")
		}
		if !matchOutput(s.want, got) {
			t.Errorf("%s:%d: $ %s\nwant:\n%s\ngot:\n%s", rel, s.line, s.cmd, strings.Join(s.want, "\n"), strings.Join(got, "\n"))
		}
	}
}

func TestMatchOutput(t *testing.T) {
	cases := []struct {
		want, got []string
		ok        bool
	}{
		{[]string{"olleh"}, []string{"olleh"}, true},
		{[]string{"olleh"}, []string{"hello"}, false},
		{[]string{"Date: …"}, []string{"Date: Sun, 06 Nov 1994 08:49:37 GMT"}, true},
		{[]string{"HTTP/1.1 200 OK", "…", "end"}, []string{"HTTP/1.1 200 OK", "a", "b", "end"}, true},
		{[]string{"HTTP/1.1 200 OK", "…"}, []string{"HTTP/1.1 200 OK"}, true},
		{[]string{"a", "…", "end"}, []string{"a", "b"}, false},
		{nil, []string{"unexpected"}, false},
		{[]string{"x.*y"}, []string{"xzzy"}, false}, // only … is special
	}
	for _, tc := range cases {
		if got := matchOutput(tc.want, tc.got); got != tc.ok {
			t.Errorf("matchOutput(%q, %q) = %v, want %v", tc.want, tc.got, got, tc.ok)
		}
	}
}
