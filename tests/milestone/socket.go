package milestone

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"expserver-go/tests/harness"
)

// socketMilestones are the checks of the raw-socket stages (6–13) and the
// process-level checks that hold for every stage.
var socketMilestones = []Milestone{
	{ID: "binds-all-interfaces", Title: "all four ports listen on 0.0.0.0, not only on loopback",
		From: 6, To: 23, Run: checkBindsAllInterfaces},
	{ID: "single-client-io", Title: "on each raw port, one client's 1,000 random strings are each answered in one chunk",
		From: 6, To: 12, Grader: true, Run: checkSingleClient},
	{ID: "multiple-clients", Title: "10 clients connected at once to the first port each get their own answer",
		From: 6, To: 10, Grader: true, Run: checkMultipleClients},
	{ID: "error-handling", Title: "after one client disconnects, a connected client and a new one are both served",
		From: 6, To: 10, Grader: true, Fresh: true, Run: checkErrorHandling},
	{ID: "blocks-on-non-reader", Title: "lesson: a client that sends without reading stalls every other client",
		From: 7, To: 7, Lesson: true, Run: checkBlocksOnNonReader},
	{ID: "non-blocking", Title: "while one client floods without reading, a second client is answered within 5 s",
		From: 8, To: 10, Grader: true, Run: checkNonBlocking},
	{ID: "idle-cpu-burn", Title: "lesson: level-triggered write events make an idle connection spin the CPU",
		From: 8, To: 8, Lesson: true, Fresh: true, Run: checkIdleCPUBurn},
	{ID: "idle-cpu", Title: "an idle client costs no CPU (under 1 % while it waits)",
		From: 9, To: 10, Grader: true, Fresh: true, Run: checkIdleCPU},
	{ID: "idle-cpu", Title: "an idle client costs no CPU (under 1 % while it waits)",
		From: 11, To: 23, Fresh: true, Run: checkIdleCPU},
	{ID: "memory-flat", Title: "a flood echoed to a slower reader arrives intact while RSS stays under 64 MiB",
		From: 10, To: 10, Grader: true, Run: checkMemoryFlat},
	{ID: "memory-flat", Title: "a flood echoed to a slower reader arrives intact while RSS stays under 64 MiB",
		From: 11, To: 12, Run: checkMemoryFlat},
	{ID: "concurrent-1000", Title: "1,000 connections open at once are all answered correctly",
		From: 6, To: 12, Run: checkConcurrent1000},
	{ID: "large-message", Title: "a 1 MiB message is answered whole",
		From: 6, To: 12, Run: checkLargeMessage},
	{ID: "reset-mid-reply", Title: "a client that resets in the middle of its reply ends alone; others keep being served",
		From: 6, To: 12, Run: checkResetMidReply},
	{ID: "connect-churn", Title: "2,000 rapid connect/disconnect cycles leave no fd behind and service normal",
		From: 6, To: 23, Run: checkConnectChurn},
	{ID: "sigint-exit", Title: "SIGINT shuts the server down with exit status 0 and frees its ports",
		From: 7, To: 23, Run: checkSIGINT},
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomLine returns a random string from the grader's alphabet, of a length
// drawn uniformly from 0 to max-1, with "\n" appended — the grader's inputs.
func randomLine(r *rand.Rand, max int) []byte {
	b := make([]byte, r.IntN(max), max+1)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return append(b, '\n')
}

// telltaleLine returns a line like randomLine's but at least two characters
// long and not a palindrome, so that a reply to it tells a reversing server
// from one that echoes or splits its answer. The grader draws 0–9
// characters; a check that sends only one or two lines must not draw the
// lines any server answers correctly ("\n", "a\n", "aba\n"), or it passes a
// broken server now and then.
func telltaleLine(r *rand.Rand, max int) []byte {
	for {
		b := randomLine(r, max)
		if s := b[:len(b)-1]; len(s) >= 2 && !isPalindrome(s) {
			return b
		}
	}
}

func isPalindrome(s []byte) bool {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		if s[i] != s[j] {
			return false
		}
	}
	return true
}

// roundTrip sends in on c and checks that the first chunk back is the
// stage's answer to it.
func roundTrip(e *Env, c net.Conn, in []byte) error {
	if _, err := c.Write(in); err != nil {
		return fail("to send "+harness.Abbrev(in, 40), "write failed: %v", err)
	}
	got, err := harness.ReadChunk(c, replyTimeout)
	want := expectReply(e.Stage, in)
	if err != nil {
		return fail(harness.Abbrev(want, 60), "no reply: %v", describeReadErr(err))
	}
	if !bytes.Equal(got, want) {
		return fail(harness.Abbrev(want, 60), "%s", harness.Abbrev(got, 60))
	}
	return nil
}

func describeReadErr(err error) string {
	switch {
	case harness.IsTimeout(err):
		return "nothing arrived in time"
	case harness.IsReset(err):
		return "connection reset"
	case errors.Is(err, io.EOF):
		return "connection closed"
	}
	return err.Error()
}

func checkBindsAllInterfaces(e *Env) error {
	listening, err := harness.ListeningSockets()
	if err != nil {
		return err
	}
	var bad []string
	for role, port := range e.Ports {
		var addrs []string
		ok := false
		for _, s := range listening {
			if s.Port != port {
				continue
			}
			addrs = append(addrs, s.Addr)
			ok = ok || s.Addr == "0.0.0.0" || s.Addr == "::"
		}
		if !ok {
			if len(addrs) == 0 {
				addrs = []string{"nothing"}
			}
			bad = append(bad, fmt.Sprintf("port %d (role %d) on %s", port, role+1, strings.Join(addrs, ", ")))
		}
	}
	if len(bad) > 0 {
		return fail("every port listening on 0.0.0.0", "%s", strings.Join(bad, "; "))
	}
	return nil
}

func checkSingleClient(e *Env) error {
	for _, role := range rawRoles(e.Stage) {
		c, err := harness.Dial(e.Addr(role))
		if err != nil {
			return fail(fmt.Sprintf("a connection to port %d", e.Ports[role]), "%v", err)
		}
		for i := 0; i < 1000; i++ {
			if err := roundTrip(e, c, randomLine(e.Rand(), 100)); err != nil {
				c.Close()
				return fmt.Errorf("port %d, string %d: %w", e.Ports[role], i+1, err)
			}
		}
		c.Close()
	}
	return nil
}

func checkMultipleClients(e *Env) error {
	return errors.Join(inParallel(10, func(i int) error {
		c, err := harness.Dial(e.Addr(0))
		if err != nil {
			return fail("a connection", "%v", err)
		}
		defer c.Close()
		if err := roundTrip(e, c, []byte(fmt.Sprintf("string-%d\n", i))); err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		return nil
	})...)
}

func checkErrorHandling(e *Env) error {
	leaving, err := harness.Dial(e.Addr(0))
	if err != nil {
		return err
	}
	staying, err := harness.Dial(e.Addr(0))
	if err != nil {
		leaving.Close()
		return err
	}
	defer staying.Close()
	leaving.Close()
	if err := roundTrip(e, staying, telltaleLine(e.Rand(), 10)); err != nil {
		return fmt.Errorf("client connected before the other left: %w", err)
	}
	fresh, err := harness.Dial(e.Addr(0))
	if err != nil {
		return fail("a new connection", "%v", err)
	}
	defer fresh.Close()
	if err := roundTrip(e, fresh, telltaleLine(e.Rand(), 10)); err != nil {
		return fmt.Errorf("client connected after the other left: %w", err)
	}
	return nil
}

// flooder sends up to total bytes on a connection and never reads.
type flooder struct {
	conn    *net.TCPConn
	sent    atomic.Int64
	stopped chan struct{} // closed when the writer returns
}

func startFlood(addr string, total int64) (*flooder, error) {
	c, err := harness.Dial(addr)
	if err != nil {
		return nil, err
	}
	f := &flooder{conn: c, stopped: make(chan struct{})}
	chunk := bytes.Repeat([]byte(alphabet[:61]+"\n"), 1<<14) // 1 MiB of printable lines
	go func() {
		defer close(f.stopped)
		for f.sent.Load() < total {
			n, err := c.Write(chunk[:min(int64(len(chunk)), total-f.sent.Load())])
			f.sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return f, nil
}

// waitBackedUp waits until the flood has filled what the server will take:
// it sent atLeast bytes, finished, or made no progress for half a second.
// This is the state the grader reaches by waiting 5 s.
func (f *flooder) waitBackedUp(atLeast int64) {
	last, lastChange := int64(-1), time.Now()
	harness.WaitFor(10*time.Second, func() error {
		select {
		case <-f.stopped:
			return nil
		default:
		}
		s := f.sent.Load()
		if s >= atLeast {
			return nil
		}
		if s != last {
			last, lastChange = s, time.Now()
		}
		if time.Since(lastChange) > 500*time.Millisecond {
			return nil
		}
		return errors.New("still flowing")
	})
}

// stop resets the flooding connection and waits for its writer to return.
func (f *flooder) stop() {
	harness.Reset(f.conn)
	<-f.stopped
}

func checkNonBlocking(e *Env) error {
	flood, err := startFlood(e.Addr(0), e.size(256<<20, 4<<30))
	if err != nil {
		return err
	}
	defer flood.stop()
	flood.waitBackedUp(64 << 20)
	e.logf("flooding client sent %d bytes before the second client connected", flood.sent.Load())

	second, err := harness.Dial(e.Addr(0))
	if err != nil {
		return fail("the second client to connect", "%v", err)
	}
	defer second.Close()
	if err := roundTrip(e, second, []byte("hello world\n")); err != nil {
		return fmt.Errorf("second client while the first floods: %w", err)
	}
	return nil
}

func checkBlocksOnNonReader(e *Env) error {
	flood, err := startFlood(e.Addr(0), 64<<20)
	if err != nil {
		return err
	}
	defer flood.stop()
	flood.waitBackedUp(64 << 20)

	second, err := harness.Dial(e.Addr(0))
	if err != nil {
		return err
	}
	defer second.Close()
	second.Write([]byte("hello world\n"))
	if got, err := harness.ReadChunk(second, time.Second); err == nil {
		return fail("no reply while the server is blocked in send() to the flooding client",
			"a reply arrived: %s — the server did not block", harness.Abbrev(got, 40))
	}
	// Once the flooding client goes away the blocked send fails and the
	// server catches up with the waiting client.
	flood.stop()
	got, err := harness.ReadChunk(second, replyTimeout)
	if err != nil || !bytes.Equal(got, expectReply(e.Stage, []byte("hello world\n"))) {
		return fail("the waiting client answered after the flooder left", "%s (%v)", harness.Abbrev(got, 40), err)
	}
	return nil
}

// idleCPU connects one client that sends nothing and measures the server's
// CPU use over window.
func idleCPU(e *Env, window time.Duration) (float64, error) {
	c, err := harness.Dial(e.Addr(0))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// Let the server finish accepting before the window opens.
	if _, err := stableFDs(e, e.Server.PID()); err != nil {
		return 0, err
	}
	meter, err := harness.StartCPUMeter(e.Server.PID())
	if err != nil {
		return 0, err
	}
	time.Sleep(window) // a measurement window, not a synchronisation
	pct, _, err := meter.Percent()
	return pct, err
}

func checkIdleCPU(e *Env) error {
	window := time.Duration(e.size(3, 30)) * time.Second
	pct, err := idleCPU(e, window)
	if err != nil {
		return err
	}
	e.logf("idle CPU over %v: %.2f %%", window, pct)
	if pct > 1 {
		return fail("under 1 % CPU with one idle client", "%.1f %% over %v", pct, window)
	}
	return nil
}

func checkIdleCPUBurn(e *Env) error {
	pct, err := idleCPU(e, time.Second)
	if err != nil {
		return err
	}
	e.logf("idle CPU over 1s: %.2f %%", pct)
	if pct < 30 {
		return fail("an idle connection to keep the CPU busy (level-triggered EPOLLOUT)", "%.1f %% CPU", pct)
	}
	return nil
}

func checkMemoryFlat(e *Env) error {
	roles := rawRoles(e.Stage)
	role := roles[len(roles)-1]
	total := e.size(1<<30, 4<<30)
	const limit = 64 << 20
	c, err := harness.Dial(e.Addr(role))
	if err != nil {
		return err
	}
	defer c.Close()

	sentSum := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = alphabet[(i*7+i/61)%len(alphabet)]
		}
		for sent := int64(0); sent < total; {
			p := chunk[:min(int64(len(chunk)), total-sent)]
			p[0] = byte('A' + (sent>>20)%26) // vary the chunks so reordering shows in the hash
			if _, err := c.Write(p); err != nil {
				break
			}
			h.Write(p)
			sent += int64(len(p))
		}
		sentSum <- h.Sum(nil)
	}()

	peak := harness.SampleRSS(e.Server.PID(), 50*time.Millisecond)

	// The reader takes 64 KiB at a time and never more than 256 MB/s, so
	// the server's pipe fills and backpressure has to hold the sender.
	h := sha256.New()
	buf := make([]byte, 64<<10)
	start := time.Now()
	var got int64
	c.SetReadDeadline(time.Now().Add(5 * time.Minute))
	for got < total {
		n, err := c.Read(buf)
		h.Write(buf[:n])
		got += int64(n)
		if err != nil {
			peak()
			return fail(fmt.Sprintf("%d bytes echoed", total), "%d bytes, then %v", got, describeReadErr(err))
		}
		if ahead := time.Duration(float64(got)/256e6*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead) // rate limit of the slow reader
		}
	}
	peakRSS := peak()
	if want := <-sentSum; !bytes.Equal(h.Sum(nil), want) {
		return fail("the echo to equal what was sent (sha256)", "different bytes came back")
	}
	e.logf("echoed %d MiB in %v; peak RSS %.1f MiB", total>>20, time.Since(start).Round(time.Millisecond), float64(peakRSS)/(1<<20))
	if peakRSS > limit {
		return fail("RSS under 64 MiB throughout", "peak RSS %.1f MiB", float64(peakRSS)/(1<<20))
	}
	return nil
}

func checkConcurrent1000(e *Env) error {
	roles := rawRoles(e.Stage)
	conns, err := dialMany(e, 1000, func(i int) string { return e.Addr(roles[i%len(roles)]) })
	defer closeAll(conns)
	if err != nil {
		return err
	}
	return firstErrors(inParallel(len(conns), func(i int) error {
		if err := roundTrip(e, conns[i], []byte(fmt.Sprintf("client-%04d-%s\n", i, alphabet[:i%50]))); err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		return nil
	}), 3)
}

// dialMany opens n connections, the i-th to addr(i), and returns them all
// open. It dials in batches and lets the server accept each batch before the
// next: a client completes handshakes faster than a server accepts, and past
// the listen backlog the kernel drops SYNs, each drop costing a one-second
// retransmission that tests nothing. A batch has been accepted when no
// client waits in the accept queue of the ports it went to.
func dialMany(e *Env, n int, addr func(i int) string) ([]*net.TCPConn, error) {
	conns, _, err := dialManyFrom(e, e.Server.PID(), n, func(i int) (string, string) { return "", addr(i) })
	return conns, err
}

// dialManyFrom is dialMany towards the server process pid, the i-th
// connection from the source address src and to the address dst that
// route(i) returns (see harness.DialFrom). It also returns when each
// connection was made: a time before the server accepted it, and one by
// which it had. The accept queue, unlike the server's descriptor count,
// tells that the server has caught up even when it has already closed some
// of the clients (a timeout shorter than the whole dial).
func dialManyFrom(e *Env, pid, n int, route func(i int) (src, dst string)) ([]*net.TCPConn, []dialTimes, error) {
	return dialManyWatched(e, pid, n, route, nil)
}

// reservedClients is dialManyFrom after harness.ReserveFDs has made room
// in this process for the n connections and spare more descriptors. done
// closes the connections and gives the room back; it is to be called
// whatever the error, which may come with some connections made.
func reservedClients(e *Env, pid, n, spare int, route func(i int) (src, dst string)) (conns []*net.TCPConn, times []dialTimes, done func(), err error) {
	release, err := harness.ReserveFDs(n + spare)
	if err != nil {
		return nil, nil, func() {}, err
	}
	conns, times, err = dialManyFrom(e, pid, n, route)
	return conns, times, func() { closeAll(conns); release() }, err
}

// toPort returns the route of dialManyFrom that takes every client to the
// i-th port of s.
func toPort(s *ServerProcess, i int) func(int) (string, string) {
	return func(int) (string, string) { return "", at(s, i) }
}

// dialManyWatched is dialManyFrom calling watch, when not nil, with each
// connection as soon as it is made: a check that times what the server
// does to each client starts watching it at once, not after the last one
// was dialled.
func dialManyWatched(e *Env, pid, n int, route func(i int) (src, dst string), watch func(i int, c *net.TCPConn)) ([]*net.TCPConn, []dialTimes, error) {
	if _, err := stableFDs(e, pid); err != nil {
		return nil, nil, err
	}
	conns := make([]*net.TCPConn, 0, n)
	times := make([]dialTimes, 0, n)
	ports := map[int]bool{}
	for i := range n {
		dialed := time.Now()
		_, dst := route(i)
		c, err := harness.DialFrom(route(i))
		if err != nil {
			return conns, times, fail(fmt.Sprintf("%d connections", n), "connection %d failed: %v", i+1, err)
		}
		conns = append(conns, c)
		times = append(times, dialTimes{dialed: dialed})
		if watch != nil {
			watch(i, c)
		}
		if _, p, err := net.SplitHostPort(dst); err == nil {
			port, _ := strconv.Atoi(p)
			ports[port] = true
		}
		if i%32 == 31 || i == n-1 {
			err := harness.WaitFor(replyTimeout, func() error {
				for port := range ports {
					if waiting, _, err := harness.AcceptQueue(port); err != nil || waiting > 0 {
						return fmt.Errorf("%d clients still wait in the accept queue of port %d (%v)", waiting, port, err)
					}
				}
				return nil
			})
			if err != nil {
				return conns, times, fail("every client accepted", "%v", err)
			}
			clear(ports)
			now := time.Now()
			for j := len(times) - 1; j >= 0 && times[j].accepted.IsZero(); j-- {
				times[j].accepted = now
			}
		}
	}
	return conns, times, nil
}

// dialTimes bound when the server accepted a connection: after dialed,
// by accepted.
type dialTimes struct{ dialed, accepted time.Time }

func closeAll(conns []*net.TCPConn) {
	for _, c := range conns {
		c.Close()
	}
}

// firstErrors joins the first max non-nil errors and counts the rest.
func firstErrors(errs []error, max int) error {
	var out []error
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
			if len(out) < max {
				out = append(out, err)
			}
		}
	}
	if n > max {
		out = append(out, fmt.Errorf("… and %d more", n-max))
	}
	return errors.Join(out...)
}

func checkLargeMessage(e *Env) error {
	const size = 1 << 20
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = alphabet[e.Rand().IntN(len(alphabet))]
	}
	msg[size-1] = '\n'
	c, err := harness.Dial(e.Addr(rawRoles(e.Stage)[0]))
	if err != nil {
		return err
	}
	defer c.Close()
	// Write while reading: a server that answers chunk by chunk would
	// otherwise fill both directions and deadlock with us.
	go c.Write(msg)
	got, err := harness.ReadFull(c, size, bulkTimeout)
	if err != nil {
		return fail("1 MiB back", "%d bytes, then %v", len(got), describeReadErr(err))
	}
	if !reverses(e.Stage) {
		if sha256.Sum256(got) != sha256.Sum256(msg) {
			return fail("the echo to equal the message (sha256)", "different bytes")
		}
		return nil
	}
	// Each chunk is reversed on its own and chunk boundaries are the
	// network's choice, so compare what is independent of them: the length,
	// the multiset of bytes, and the final newline.
	var want, have [256]int
	for i := range msg {
		want[msg[i]]++
		have[got[i]]++
	}
	if want != have || got[size-1] != '\n' {
		return fail("the reversed chunks to hold exactly the message's bytes, newline last", "bytes were lost, added or changed")
	}
	return nil
}

func checkResetMidReply(e *Env) error {
	role := rawRoles(e.Stage)[0]
	flood, err := startFlood(e.Addr(role), 8<<20)
	if err != nil {
		return err
	}
	flood.waitBackedUp(2 << 20)
	other, err := harness.Dial(e.Addr(role))
	if err != nil {
		flood.stop()
		return err
	}
	defer other.Close()
	if e.Stage >= 8 { // stages 6 and 7 block in send() until the reset: their lesson
		if err := roundTrip(e, other, []byte("while the other floods\n")); err != nil {
			flood.stop()
			return fmt.Errorf("before the reset: %w", err)
		}
	}
	flood.stop()
	if err := roundTrip(e, other, []byte("after the reset\n")); err != nil {
		return fmt.Errorf("after the reset: %w", err)
	}
	return nil
}

// countFDs counts the server's open sockets and files under the course
// layout: the fds a leak would leave behind. Other fds are the language
// runtime's own (Go's keeps cgroup files open, opened lazily) and are not the
// server's to release.
func countFDs(e *Env, pid int) (int, error) {
	targets, err := harness.FDTargets(pid)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range targets {
		if strings.HasPrefix(t, "socket:") || strings.HasPrefix(t, e.Layout.Root+"/") {
			n++
		}
	}
	return n, nil
}

// stableFDs returns the server's fd count (as countFDs) once it has stopped
// changing: the clients of the previous check may still be closing, and a
// count taken in the middle would make a later comparison wrong.
func stableFDs(e *Env, pid int) (int, error) {
	last := -1
	var n int
	err := harness.WaitFor(replyTimeout, func() error {
		var err error
		if n, err = countFDs(e, pid); err != nil {
			return harness.Permanent(err)
		}
		if n != last {
			last = n
			return errors.New("fd count still changing")
		}
		return nil
	})
	return n, err
}

// fdsBackTo waits until the server holds no more fds than it did at base.
func fdsBackTo(e *Env, pid, base int) error {
	var now int
	err := harness.WaitFor(replyTimeout, func() error {
		var err error
		if now, err = countFDs(e, pid); err != nil {
			return harness.Permanent(err)
		}
		if now > base {
			return errors.New("fds still open")
		}
		return nil
	})
	if err != nil {
		if ae := e.alive(); ae != nil {
			return ae
		}
		return fail(fmt.Sprintf("%d open fds once the clients left", base), "%d open fds", now)
	}
	return nil
}

// probeRole is the port probe talks to at the stage: the first raw port up
// to stage 12, the file port of stage 13, the HTTP port from stage 14.
func probeRole(stage int) int {
	switch {
	case stage <= 12:
		return rawRoles(stage)[0]
	case stage == 13:
		return 1 // checkFileOnConnect's port
	}
	return 0 // checkGetSampleTxt's port
}

func checkConnectChurn(e *Env) error {
	addr := e.Addr(probeRole(e.Stage))
	for i := 0; i < 2000; i++ {
		c, err := harness.Dial(addr)
		if err != nil {
			return fail("2000 connections accepted", "connection %d: %v", i+1, err)
		}
		if i%2 == 0 {
			harness.Reset(c)
		} else {
			c.Close()
		}
		// Every 32 cycles, let the server catch up. A client loop completes
		// handshakes faster than a server accepts them; past the listen
		// backlog of 64 the kernel drops SYNs and each drop costs the client
		// a one-second retransmission, which tests nothing. The accept queue
		// is first in, first out, so once a probe on the same port is
		// answered, every earlier client has been accepted.
		if i%32 == 31 {
			if err := probe(e); err != nil {
				return fmt.Errorf("after %d cycles: %w", i+1, err)
			}
		}
	}
	return probe(e)
}

// probe checks that the server still does its normal job at this stage.
func probe(e *Env) error {
	switch {
	case e.Stage <= 12:
		c, err := harness.Dial(e.Addr(probeRole(e.Stage)))
		if err != nil {
			return err
		}
		defer c.Close()
		return roundTrip(e, c, []byte("still there?\n"))
	case e.Stage == 13:
		return checkFileOnConnect(e)
	default:
		return checkGetSampleTxt(e)
	}
}

func checkSIGINT(e *Env) error {
	code, err := e.Server.Interrupt()
	if err != nil {
		return fail("exit on SIGINT within 5 s", "%v", err)
	}
	if code != 0 {
		return fail("exit status 0 after SIGINT", "exit status %d", code)
	}
	for role := range e.Ports {
		if c, err := net.DialTimeout("tcp", e.Addr(role), time.Second); err == nil {
			c.Close()
			return fail("port "+strconv.Itoa(e.Ports[role])+" closed after exit", "it still accepts connections")
		}
	}
	return e.Server.Restart()
}
