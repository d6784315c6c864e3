package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"expserver-go/common/xpstest"
	"expserver-go/tests/milestone"
)

// A brokenServer is one of our stages with one deliberate defect, made by
// replacing one snippet of its source. The suite must report exactly the
// milestones the defect breaks — no more, which would mean a check is
// fragile, and no fewer, which would mean a check cannot fail.
type brokenServer struct {
	name     string
	stage    int
	file     string // in the stage folder
	old, new string // old must occur exactly once
	failing  []string
}

var brokenServers = []brokenServer{
	{
		name: "echoes-instead-of-reversing", stage: 9, file: "connection.go",
		old: "\treverseChunk(readBuf[:n])\n", new: "\n",
		failing: []string{"connect-churn", "concurrent-1000", "error-handling", "multiple-clients",
			"non-blocking", "reset-mid-reply", "single-client-io"},
	},
	{
		name: "replies-in-two-writes", stage: 9, file: "connection.go",
		old: "\tc.pending.Write(readBuf[:n])\n", new: "\twriteInTwo(c.sock, c.pending, readBuf[:n])\n",
		failing: []string{"connect-churn", "concurrent-1000", "error-handling", "multiple-clients",
			"non-blocking", "reset-mid-reply", "single-client-io"},
	},
	{
		name: "binds-loopback-only", stage: 9, file: "main.go",
		old: `flag.StringVar(&host, "host", "0.0.0.0"`, new: `flag.StringVar(&host, "host", "127.0.0.1"`,
		failing: []string{"binds-all-interfaces"},
	},
	{
		name: "answers-502-when-upstream-is-down", stage: 13, file: "session.go",
		old:     "\t\ts.upstreamErrorResSet = true\n",
		new:     "\t\ts.upstreamErrorResSet = true\n\t\ts.toClient.Write([]byte(\"HTTP/1.1 502 Bad Gateway\\r\\nContent-Length: 0\\r\\n\\r\\n\"))\n\t\ts.setToClient(true)\n",
		failing: []string{"upstream-down"},
	},
	{
		name: "sends-the-head-in-two-writes", stage: 15, file: "session.go",
		old: "\ts.toClient.Append(buffer.Wrap(res.serialize()))\n", new: "\tstatusLineFirst(s.client.sock, res.serialize(), &s.toClient)\n",
		failing: []string{"hostile-heads", "http-bad-version", "http-header-without-colon", "http-no-headers",
			"http-no-version", "http-not-found", "http-unknown-method", "http-valid-jpg", "http-valid-pdf",
			"http-valid-plain", "method-not-allowed"},
	},
	{
		name: "serves-outside-the-root", stage: 12, file: "file.go",
		old: "\tif !within(c.publicRoot, real) {", new: "\tif false {",
		failing: []string{"file-access-restriction"},
	},
}

// helpers added to a broken server's package when its defect needs them.
const brokenHelpers = `package main

import (
	"bytes"
	"time"

	"expserver-go/common/buffer"

	"golang.org/x/sys/unix"
)

// writeInTwo sends the first byte of a reply on its own and queues the rest
// a moment later, as a server that writes a reply piece by piece does.
func writeInTwo(sock int, pending *buffer.List, p []byte) {
	if len(p) > 1 {
		unix.Write(sock, p[:1])
		time.Sleep(5 * time.Millisecond)
		p = p[1:]
	}
	pending.Write(p)
}

// statusLineFirst sends a response's status line on its own and queues the
// rest a moment later, as a server that writes the status line and the
// headers separately does.
func statusLineFirst(sock int, response []byte, toClient *buffer.List) {
	if i := bytes.IndexByte(response, '\n'); i > 0 {
		unix.Write(sock, response[:i+1])
		time.Sleep(5 * time.Millisecond)
		response = response[i+1:]
	}
	toClient.Write(response)
}
`

var mutantsMu sync.Mutex

// build makes the broken server's source tree inside the module (in a folder
// the go command's ./... patterns skip) and builds it.
func (b brokenServer) build(t *testing.T) string {
	root, err := xpstest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stageDir, err := xpstest.StageDir(root, b.stage)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "tests", "_broken", b.name)
	t.Cleanup(func() {
		os.RemoveAll(dir)
		mutantsMu.Lock()
		defer mutantsMu.Unlock()
		os.Remove(filepath.Dir(dir)) // only once it is empty
	})
	os.RemoveAll(dir)
	if err := xpstest.CopyTree(filepath.Join(root, stageDir), dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, b.file)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), b.old); n != 1 {
		t.Fatalf("%s: the snippet to break occurs %d times in %s/%s, want once; update the broken server", b.name, n, stageDir, b.file)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(src), b.old, b.new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.new, "writeInTwo") || strings.Contains(b.new, "statusLineFirst") {
		if err := os.WriteFile(filepath.Join(dir, "broken_helpers.go"), []byte(brokenHelpers), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := xpstest.Build("tests/_broken/" + b.name)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestBrokenServers(t *testing.T) {
	if long {
		t.Skip("the broken servers run at normal sizes only")
	}
	for _, b := range brokenServers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			bin := b.build(t)
			var mu sync.Mutex
			var failed []string
			runSuite(t, b.stage, bin, func(t *testing.T, r milestone.Result) {
				if r.Err != nil {
					mu.Lock()
					failed = append(failed, r.Milestone.ID)
					mu.Unlock()
					t.Logf("fails as it should or should not: %v", r.Err)
				}
			})
			slices.Sort(failed)
			want := slices.Clone(b.failing)
			slices.Sort(want)
			if diff := cmp.Diff(want, failed); diff != "" {
				t.Errorf("milestones failed by %s (-want +got):\n%s", b.name, diff)
			}
		})
	}
}
