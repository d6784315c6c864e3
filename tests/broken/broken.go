// Package broken holds deliberately broken servers: our stages with one
// defect each, made by replacing one snippet of their source (or a few,
// when the defect spans them). The milestone suite must report exactly the
// milestones each defect breaks — no more, which would mean a check is
// fragile, and no fewer, which would mean a check cannot fail. The
// repository's tests and the grading tool's tests both use them.
package broken

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"expserver-go/tests/harness"
	"expserver-go/tests/milestone"
)

// A Server is one of our stages with one deliberate defect.
type Server struct {
	Name     string
	Stage    int
	file     string   // in the stage folder
	old, new string   // old must occur exactly once
	also     []edit   // further snippets of the same defect, each replaced likewise
	Failing  []string // the IDs of the milestones it must fail
	// LessonOnly runs the server through the milestones its stage
	// introduces — the checks of the lesson its defect is in — and its
	// Failing ones, rather than through its stage's whole suite. The
	// phase 3 stages' suites hold every check of stages 6–17 besides their
	// own, and stage 21's runs for over a minute: a broken server of each
	// lesson through all of them would make the suite's wall time grow by
	// minutes to learn what TestStage already checks against the stage
	// itself. The older broken servers keep their whole suites.
	LessonOnly bool
}

// edit is one snippet of a broken server's defect: old, which must occur
// exactly once in file, becomes new.
type edit struct {
	file, old, new string
}

// Checks reports whether the milestone m is run against the server.
func (b Server) Checks(m milestone.Milestone) bool {
	return !b.LessonOnly || m.From >= b.Stage || slices.Contains(b.Failing, m.ID)
}

var Servers = []Server{
	{
		Name: "echoes-instead-of-reversing", Stage: 9, file: "connection.go",
		old: "\treverseChunk(readBuf[:n])\n", new: "\n",
		Failing: []string{"burst-2000", "connect-churn", "concurrent-1000", "error-handling", "fd-exhaustion",
			"multiple-clients", "non-blocking", "reset-mid-reply", "single-client-io"},
	},
	{
		Name: "replies-in-two-writes", Stage: 9, file: "connection.go",
		old: "\tc.pending.Write(readBuf[:n])\n", new: "\twriteInTwo(c.sock, c.pending, readBuf[:n], len(c.core.connections))\n",
		Failing: []string{"connect-churn", "concurrent-1000", "error-handling", "fd-exhaustion", "multiple-clients",
			"non-blocking", "reset-mid-reply", "single-client-io"},
	},
	{
		Name: "binds-loopback-only", Stage: 9, file: "main.go",
		old: `flag.StringVar(&host, "host", "0.0.0.0"`, new: `flag.StringVar(&host, "host", "127.0.0.1"`,
		Failing: []string{"binds-all-interfaces"},
	},
	{
		Name: "answers-502-when-upstream-is-down", Stage: 13, file: "session.go",
		old:     "\t\ts.upstreamErrorResSet = true\n",
		new:     "\t\ts.upstreamErrorResSet = true\n\t\ts.toClient.Write([]byte(\"HTTP/1.1 502 Bad Gateway\\r\\nContent-Length: 0\\r\\n\\r\\n\"))\n\t\ts.setToClient(true)\n",
		Failing: []string{"upstream-down"},
	},
	{
		Name: "sends-the-head-in-two-writes", Stage: 15, file: "session.go",
		old: "\ts.toClient.Write(res.serialize())\n", new: "\tstatusLineFirst(s.client.sock, res.serialize(), &s.toClient, len(s.core.connections))\n",
		also: []edit{{"session.go", "\ts.clientSink.reset()\n\ts.fileSink.reset()\n",
			"\ts.clientSink.reset()\n\ts.fileSink.reset()\n\tnewReplyQueue(&s.toClient)\n"}},
		Failing: []string{"hostile-heads", "http-bad-version", "http-header-without-colon", "http-no-headers",
			"http-no-version", "http-not-found", "http-unknown-method", "http-valid-jpg", "http-valid-pdf",
			"http-valid-plain", "method-not-allowed"},
	},
	{
		// A session that never judges a proxied request over leaves its
		// upstream connection open for ever: caught by the leak check every
		// milestone runs after itself.
		Name: "leaks-upstream-connections", Stage: 17, file: "session.go",
		old: "\trequestAlive := s.clientSink.active\n\ttoUpstream := s.upstreamSource.active && (s.clientSink.active || s.fromClient.Len() > 0)\n",
		new: "\trequestAlive := s.clientSink.active || s.upstream != nil\n\ttoUpstream := s.upstreamSource.active && (s.clientSink.active || s.upstream != nil || s.fromClient.Len() > 0)\n",
		Failing: []string{"log-no-forging", "proxy-200-concurrent", "proxy-equals-upstream", "proxy-forwards-body",
			"proxy-framed-body"},
	},
	{
		// Out of descriptors, a listener that counts its own failed accept
		// as a release is retried on every iteration of a loop that then
		// never blocks: it serves every client, at 100 % CPU while it waits.
		Name: "spins-when-out-of-descriptors", Stage: 9, file: "listener.go",
		old:     "\tl.core.loop.freed = false\n",
		new:     "\tl.core.loop.freed = true\n",
		Failing: []string{"fd-exhaustion"},
	},
	{
		// Out of descriptors with no connection to close, a server without
		// the spare descriptor leaves the clients in its accept queue
		// waiting for ever.
		Name: "never-sheds-unservable-clients", Stage: 9, file: "listener.go",
		old:     "\tif len(l.core.connections) == 0 {\n\t\tl.shed()\n\t}\n",
		new:     "",
		Failing: []string{"fd-exhaustion"},
	},
	{
		Name: "serves-outside-the-root", Stage: 12, file: "file.go",
		old: "\tfd, rel, err := openBeneath(c, c.publicRoot, path)\n", new: "\tfd, err := unix.Open(path, openFlags, 0)\n\trel, _ := openedPath(c.publicRoot, fd)\n",
		Failing: []string{"file-access-restriction"},
	},
	{
		// The course's warning: an address a client writes is a claim.
		// Trusting X-Forwarded-For lets a blacklisted client in by naming
		// an allowed one.
		Name: "acl-trusts-x-forwarded-for", Stage: 18, file: "session.go", LessonOnly: true,
		old:     "\tip := s.client.remoteAddr\n",
		new:     "\tip := s.client.remoteAddr\n\tif v, ok := s.req.getHeader(\"X-Forwarded-For\"); ok {\n\t\tif a, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil {\n\t\t\tip = a\n\t\t}\n\t}\n",
		also:    []edit{{"session.go", "\t\"fmt\"\n", "\t\"fmt\"\n\t\"net/netip\"\n"}},
		Failing: []string{"acl-spoofed-headers"},
	},
	{
		// Checking the lists only once the lookup has found the file tells
		// a denied client which files exist: 404 against 403.
		Name: "acl-after-the-404", Stage: 18, file: "session.go", LessonOnly: true,
		old:     "\tif res != nil && !s.ipAllowed(res) {\n\t\ts.deny()\n\t\treturn\n\t}\n\tif err != nil {\n\t\ts.respondError(err)\n\t\treturn\n\t}\n",
		new:     "\tif err != nil {\n\t\ts.respondError(err)\n\t\treturn\n\t}\n\tif !s.ipAllowed(res) {\n\t\ts.deny()\n\t\treturn\n\t}\n",
		Failing: []string{"acl-before-method"},
	},
	{
		// Every weight counts as above 0, so "gzip;q=0" — never gzip —
		// gets gzip, as the course's strstr does.
		Name: "gzip-ignores-q0", Stage: 19, file: "gzip.go", LessonOnly: true,
		old:     "\treturn v[0] == '1' || positive, true\n",
		new:     "\treturn true, true\n",
		Failing: []string{"gzip-not-accepted"},
	},
	{
		// The course's framing: no chunks and no Content-Length, so the
		// compressed body ends with the connection, and a client cannot
		// tell a whole body from a cut one.
		Name: "gzip-without-chunks", Stage: 19, file: "session.go", LessonOnly: true,
		old: ", header{\"Vary\", \"Accept-Encoding\"},\n\t\theader{\"Transfer-Encoding\", \"chunked\"}), r.gzipLevel",
		new: ", header{\"Vary\", \"Accept-Encoding\"}), r.gzipLevel",
		also: []edit{
			{"session.go", "!hasHeader(headers, \"Transfer-Encoding\")", "!hasHeader(headers, \"Content-Encoding\")"},
			{"gzip.go", "\t\tg.frame.Write(strconv.AppendInt(gzipChunkHead[:0], int64(n), 16))\n\t\tg.frame.Write(crlf)\n\t\tg.transfer.MoveTo(&g.frame)\n\t\tg.frame.Write(crlf)\n",
				"\t\tg.transfer.MoveTo(&g.frame)\n"},
			{"gzip.go", "\t\tg.frame.Write(lastChunk)\n", "\t\t_ = strconv.AppendInt\n"},
		},
		Failing: []string{"gzip-large-text"},
	},
	{
		// The course's gzip finishes the stream when its input ends,
		// however early: a file cut short becomes a well-formed gzip of
		// the wrong content, with its last chunk.
		Name: "gzip-finishes-truncated-file", Stage: 19, file: "gzip.go", LessonOnly: true,
		old:     "\t\tin, err := g.next(p.buf.Head(), min(budget, gzipStep))\n\t\tif err != nil {\n\t\t\tg.abort(err)\n",
		new:     "\t\tin, err := g.next(p.buf.Head(), min(budget, gzipStep))\n\t\tif err != nil {\n\t\t\tg.size = g.totalIn\n\t\t\tg.sink.clear(p.buf.Len())\n\t\t\tg.endOfInput()\n",
		Failing: []string{"gzip-file-shrinks"},
	},
	{
		// The course's round robin: a refused connect answers 502 instead
		// of trying the next upstream, and no failure is held against an
		// upstream, so every request that picks a dead one fails, for as
		// long as it is dead. (Were an upstream that closes before replying
		// still marked down, the requests in flight when it died could
		// mark it down before any later request picks it, and the server
		// would pass lb-upstream-dies-midrun by the luck of the timing.)
		Name: "round-robin-without-failover", Stage: 20, file: "session.go", LessonOnly: true,
		old:  "\ts.try.connectFailed(time.Now(), errors.Is(err, unix.ETIMEDOUT))\n\ts.connectUpstream()\n",
		new:  "\ts.try.release()\n\ts.noUpstream()\n",
		also: []edit{{"session.go", "\ts.try.ended(s.upstreamReplied, time.Now())\n", "\ts.try.release()\n"}},
		Failing: []string{"lb-failover-transparent", "lb-ip-hash-failover", "lb-post-failover", "lb-recovery",
			"lb-upstream-dies-midrun"},
	},
	{
		// The course's timer: reset by every byte the client sends, so a
		// client that trickles its head is never cut off (slowloris).
		Name: "header-timer-reset-by-each-byte", Stage: 21, file: "listener.go", LessonOnly: true,
		old: "\t\tc.readTimer.update(l.core.config.timeouts.clientHeader)\n",
		new: "\t\tc.readIdle = l.core.config.timeouts.clientHeader\n\t\tc.readTimer.update(c.readIdle)\n",
		also: []edit{{"session.go", "\t\t// The head is complete, or will never be: its deadline is over.\n\t\ts.client.readTimer.stop()\n",
			"\t\ts.client.setReadIdle(0)\n"}},
		Failing: []string{"timeout-slowloris-deadline"},
	},
	{
		// A body that times out gets its 408 even after the upstream's
		// answer has begun to reach the client, which then reads a 408
		// in the middle of another response.
		Name: "408-after-response-bytes", Stage: 21, file: "session.go", LessonOnly: true,
		old:     "\t\txlog.Warnf(\"client timed out (body) %s\", s.client.remoteIP)\n",
		new:     "\t\txlog.Warnf(\"client timed out (body) %s\", s.client.remoteIP)\n\t\ts.responded, s.upstreamReplied = false, false\n",
		Failing: []string{"timeout-body-408"},
	},
	{
		// The course's reference prints the system's CPU between quotes:
		// the course's dashboard, which needs a number, then shows 0.
		Name: "cpu-percent-as-string", Stage: 22, file: "metrics.go", LessonOnly: true,
		old: "\to.percent(\"sys_cpu_usage_percent\", s.sysCPU)\n",
		new: "\to.key(\"sys_cpu_usage_percent\")\n\to.b = strconv.AppendQuote(o.b, strconv.FormatFloat(s.sysCPU, 'f', 2, 64))\n",
		Failing: []string{"metrics-dashboard-fetch", "metrics-dashboard-page", "metrics-json-shape", "metrics-monotonic",
			"metrics-regression"},
	},
	{
		// The course's reference lacks a break in its type switch: every
		// file request is counted as a reverse-proxy request too, and the
		// types add up to more than the requests.
		Name: "file-request-counted-as-proxy", Stage: 22, file: "session.go", LessonOnly: true,
		old: "\ts.client.countType(requestType(res))\n",
		new: "\ts.client.countType(requestType(res))\n\tif requestType(res) == mReqFileServe {\n\t\ts.core.slot.set(mReqReverseProxy, 1)\n\t}\n",
		Failing: []string{"metrics-exact-counts", "metrics-monotonic", "metrics-prometheus", "metrics-quiescent",
			"metrics-regression"},
	},
	{
		// The course's sharing of a listener: every worker attaches its
		// duplicate with plain EPOLLIN | EPOLLET, so each client wakes
		// every idle worker and all but one find nothing to accept (the
		// thundering herd). The workers still take turns at the head of
		// the socket's wait queue, so the clients stay spread: only the
		// wake-ups give the defect away.
		Name: "accept-wakes-every-worker", Stage: 23, file: "listener.go", LessonOnly: true,
		old: "\tif len(c.srv.workers) > 1 {\n\t\tl.events |= unix.EPOLLEXCLUSIVE\n\t}\n",
		new: "",
		also: []edit{{"listener.go", "l.accepted == reorderEvery && l.events&unix.EPOLLEXCLUSIVE != 0 {",
			"l.accepted == reorderEvery && len(l.core.srv.workers) > 1 {"}},
		Failing: []string{"workers-no-herd"},
	},
}

// helpers added to a broken server's package when its defect needs them.
const helpers = `package main

import (
	"bytes"
	"time"

	"expserver-go/common/buffer"

	"golang.org/x/sys/unix"
)

// longGaps counts the long pauses taken so far, and split holds the reply
// queue of every connection that has had a reply split. (Holding the queue
// keeps it from being freed, so no later connection's queue can take its
// address, as a later connection takes a closed one's descriptor. A session
// taken from the free list does reuse the queue of the one before it, and
// says so: see newReplyQueue.)
var (
	longGaps int
	split    = map[*buffer.List]bool{}
)

// gap is the pause between the two parts of a split reply queued in queue,
// while the server holds connections connections. A client must see the parts as
// two reads even on a machine loaded by the whole suite running in
// parallel, which takes a long pause (150 ms was once not enough). But the
// loop sleeps through every pause, and long ones on every reply would stall
// checks whose point is not how a reply is written — a burst of clients, a
// 1 MiB message, a SIGINT — and fail them too. So only a connection's first
// split reply pauses long, only while the server holds a few connections,
// and only the first forty such; every other reply pauses a millisecond,
// which still splits most of them.
func gap(queue *buffer.List, connections int) time.Duration {
	first := !split[queue]
	split[queue] = true
	if first && connections <= 10 && longGaps < 40 && !underLowFDLimit() {
		longGaps++
		return 400 * time.Millisecond
	}
	return time.Millisecond
}

// underLowFDLimit reports whether the server runs under a low descriptor
// limit, as fd-exhaustion runs it (the limit may be lowered while it runs):
// there it serves hundreds of clients a few at a time, each connection's
// first reply would pause long, and the pauses would add up past the
// check's deadline. No check of the defect runs under such a limit.
func underLowFDLimit() bool {
	var rl unix.Rlimit
	return unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur <= 256
}

// newReplyQueue marks queue as a new connection's, whose first split reply
// pauses long again: the session that holds it comes from the free list.
func newReplyQueue(queue *buffer.List) { delete(split, queue) }

// writeInTwo sends the first byte of a reply on its own and queues the rest
// a moment later, as a server that writes a reply piece by piece does.
func writeInTwo(sock int, pending *buffer.List, p []byte, connections int) {
	if len(p) > 1 {
		unix.Write(sock, p[:1])
		time.Sleep(gap(pending, connections))
		p = p[1:]
	}
	pending.Write(p)
}

// statusLineFirst sends a response's status line on its own and queues the
// rest a moment later, as a server that writes the status line and the
// headers separately does.
func statusLineFirst(sock int, response []byte, toClient *buffer.List, connections int) {
	if i := bytes.IndexByte(response, '\n'); i > 0 {
		unix.Write(sock, response[:i+1])
		time.Sleep(gap(toClient, connections))
		response = response[i+1:]
	}
	toClient.Write(response)
}
`

var buildMu sync.Mutex

// Build makes the broken server's source tree inside the module, in a
// folder the go command's ./... patterns skip, builds it, and returns the
// binary and a function that removes the source tree.
func (b Server) Build() (bin string, cleanup func(), err error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return "", nil, err
	}
	stageDir, err := harness.StageDir(root, b.Stage)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(root, "tests", "_broken", b.Name)
	cleanup = func() {
		os.RemoveAll(dir)
		buildMu.Lock()
		defer buildMu.Unlock()
		os.Remove(filepath.Dir(dir)) // only once it is empty
	}
	os.RemoveAll(dir)
	if err := harness.CopyTree(filepath.Join(root, stageDir), dir); err != nil {
		return "", cleanup, err
	}
	for _, ed := range append([]edit{{b.file, b.old, b.new}}, b.also...) {
		path := filepath.Join(dir, ed.file)
		src, err := os.ReadFile(path)
		if err != nil {
			return "", cleanup, err
		}
		if n := strings.Count(string(src), ed.old); n != 1 {
			return "", cleanup, fmt.Errorf("%s: the snippet to break occurs %d times in %s/%s, want once; update the broken server", b.Name, n, stageDir, ed.file)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(src), ed.old, ed.new, 1)), 0o644); err != nil {
			return "", cleanup, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "broken_helpers.go"), []byte(helpers), 0o644); err != nil {
		return "", cleanup, err
	}
	bin, err = harness.Build("tests/_broken/" + b.Name)
	return bin, cleanup, err
}

// Find returns the broken server called name.
func Find(name string) (Server, bool) {
	for _, b := range Servers {
		if b.Name == name {
			return b, true
		}
	}
	return Server{}, false
}
