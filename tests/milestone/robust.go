package milestone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"expserver-go/tests/harness"
)

// robustMilestones are the checks that no client is left waiting for ever:
// bursts of clients, a server out of descriptors, clients that leave.
var robustMilestones = []Milestone{
	{ID: "burst-2000", Title: "2,000 clients connecting at the same moment are all answered, none dropped by a full accept queue",
		From: 6, To: 23, Run: checkBurst},
	{ID: "fd-exhaustion", Title: "under a low descriptor limit, 500 clients at once are served in turns; the server never spins nor leaves a client waiting",
		From: 9, To: 23, Limit: time.Minute, Run: checkFDExhaustion},
}

// burstTimeout bounds a burst: a client whose handshake was dropped waits
// at least a second for its retransmission, and one that waits for the
// server to speak first waits for ever.
const burstTimeout = 20 * time.Second

// answerExchange is what one client of a crowd does on the stage's busiest
// port: send a line and get its reversal or echo (6–11), receive
// sample.txt without sending anything (12–13, the server speaks first),
// or GET /sample.txt (14–17). It returns the address to connect to and
// the exchange on the connected socket, which must end by deadline. A
// client closed without an answer, or from stage 14 answered 503, gets a
// noRoom error: what a server may do with a client it has no descriptor for.
func answerExchange(e *Env, deadline time.Time) (addr string, exchange func(c *net.TCPConn, i int) error, err error) {
	sample, err := sampleTxt(e)
	if err != nil {
		return "", nil, err
	}
	closed := func(err error) bool { return errors.Is(err, io.EOF) || harness.IsReset(err) }
	switch {
	case e.Stage <= 11:
		lines := make([][]byte, 2000)
		for i := range lines {
			lines[i] = telltaleLine(e.Rand(), 10)
		}
		return e.Addr(rawRoles(e.Stage)[0]), func(c *net.TCPConn, i int) error {
			line := lines[i%len(lines)]
			want := expectReply(e.Stage, line)
			c.SetDeadline(deadline)
			if _, err := c.Write(line); err != nil {
				return fail("to send "+harness.Abbrev(line, 20), "%v", err)
			}
			got := make([]byte, len(want))
			n, err := io.ReadFull(c, got)
			switch {
			case n == 0 && closed(err):
				return noRoom{fail(harness.Abbrev(want, 20), "a close without an answer")}
			case err != nil:
				return fail(harness.Abbrev(want, 20), "%s, then %s", harness.Abbrev(got[:n], 20), describeReadErr(err))
			case !bytes.Equal(got, want):
				return fail(harness.Abbrev(want, 20), "%s", harness.Abbrev(got, 20))
			}
			return nil
		}, nil
	case e.Stage <= 13:
		return e.Addr(1), func(c *net.TCPConn, _ int) error {
			want := fmt.Sprintf("sample.txt (%d bytes), then a close", len(sample))
			got, err := harness.ReadToClose(c, time.Until(deadline))
			switch {
			case len(got) == 0 && (err == nil || closed(err)):
				return noRoom{fail(want, "a close without data")}
			case err != nil:
				return fail(want, "%s, then %s", harness.Abbrev(got, 20), describeReadErr(err))
			case !bytes.Equal(got, sample):
				return fail(want, "%s", harness.Abbrev(got, 20))
			}
			return nil
		}, nil
	}
	request := []byte("GET /sample.txt HTTP/1.1\r\nHost: " + e.Addr(0) + "\r\nConnection: close\r\n\r\n")
	return e.Addr(0), func(c *net.TCPConn, _ int) error {
		c.SetDeadline(deadline)
		if _, err := c.Write(request); err != nil {
			return fail("to send the request", "%v", err)
		}
		raw, err := harness.ReadToClose(c, time.Until(deadline))
		switch {
		case len(raw) == 0 && (err == nil || closed(err)):
			return noRoom{fail("200 with sample.txt", "a close without a response")}
		case err != nil:
			return fail("a whole response, then a close", "%d bytes, then %s", len(raw), describeReadErr(err))
		}
		r, err := harness.ParseResponse(raw)
		switch {
		case err == nil && r.Status == 503:
			return noRoom{fail("200 with sample.txt", "%s", harness.Abbrev(raw, 40))}
		case err != nil || r.Status != 200 || !bytes.Equal(r.Body, sample):
			return fail("200 with sample.txt", "%s", harness.Abbrev(raw, 40))
		}
		return nil
	}, nil
}

// noRoom marks an exchange that ended with the client closed unanswered,
// or answered 503 Service Unavailable.
type noRoom struct{ error }

func (n noRoom) Unwrap() error { return n.error }

// checkBurst connects 2,000 clients at once. The server must answer every
// one, and no client may have needed a retransmission: over loopback a
// retransmitted SYN or request means the server's kernel dropped it because
// the listen backlog the server asked for was full. A client that sends
// first recovers from that after a second or more; one that waits for the
// server to speak first is never told and waits for ever.
func checkBurst(e *Env) error {
	const n = 2000
	if queue := harness.SomaxConn(); queue > 0 && queue < n {
		return skip("the kernel caps every listen backlog at net.core.somaxconn = %d, below the burst's %d clients (sysctl -w net.core.somaxconn=4096 lifts it)", queue, n)
	}
	release, err := harness.ReserveFDs(n)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	deadline := start.Add(burstTimeout)
	addr, exchange, err := answerExchange(e, deadline)
	if err != nil {
		return err
	}
	retransmitted := make([]int, n)
	errs := crowd(n, addr, deadline, func(c *net.TCPConn, i int) error {
		if err := exchange(c, i); err != nil {
			return err
		}
		retransmitted[i], _ = harness.Retransmits(c)
		return nil
	})
	elapsed := time.Since(start)
	answered, clients, segments := 0, 0, 0
	for i, err := range errs {
		if err == nil {
			answered++
		}
		if retransmitted[i] > 0 {
			clients++
			segments += retransmitted[i]
		}
	}
	e.logf("%d of %d clients answered in %v; %d needed %d retransmissions", answered, n, elapsed.Round(time.Millisecond), clients, segments)
	if err := allAnswered(errs, burstTimeout); err != nil {
		return err
	}
	if clients > 0 {
		return fail("no client dropped by a full accept queue (no retransmission over loopback)",
			"%d of %d clients needed %d retransmitted segments between them; all were answered after %v",
			clients, n, segments, elapsed.Round(time.Millisecond))
	}
	return nil
}

// crowd connects n clients to addr at the same moment, each on its own
// goroutine, runs exchange on each connection and closes it. Connecting and
// the exchange must end by deadline. It returns the clients' errors,
// indexed like the clients.
func crowd(n int, addr string, deadline time.Time, exchange func(c *net.TCPConn, i int) error) []error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return inParallel(n, func(i int) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fail("a connection", "client %d: %v", i+1, err)
		}
		c := conn.(*net.TCPConn)
		defer c.Close()
		if err := exchange(c, i); err != nil {
			return fmt.Errorf("client %d: %w", i+1, err)
		}
		return nil
	})
}

// holdRole is a port where a client that sends nothing is held open
// without being answered: the echo port (6–11, 12's last port), an idle
// port (13), the HTTP port, waiting for a request head (14–17).
func holdRole(stage int) int {
	switch {
	case stage <= 12:
		roles := rawRoles(stage)
		return roles[len(roles)-1]
	case stage == 13:
		return 2
	}
	return 0
}

// checkFDExhaustion starts the server again, the same way, under a
// descriptor limit 64 above what it held (sh's ulimit -n, soft and hard),
// and requires that:
//
//  1. 500 clients connecting at once are all answered: the server takes
//     them in turns, coming back to its accept queue whenever it releases a
//     descriptor, without waiting for a new client to arrive;
//  2. while clients that say nothing fill that room and another waits in
//     the queue, the server stays idle (it does not retry accept in a
//     loop), and serves the waiting client once they leave;
//  3. with its soft limit then lowered (prlimit) to its lowest free
//     descriptor number, so that it has no room at all and no client of its
//     own to wait for, the server still answers each new client, or closes
//     it (from stage 14, answers it 503), rather than leave it waiting for
//     ever.
//
// Afterwards it must be running and hold no more sockets and files than
// before. The usual server is then started again for the next check.
func checkFDExhaustion(e *Env) (err error) {
	open, err := harness.FDCount(e.Server.PID())
	if err != nil {
		return err
	}
	limit := open + 64
	srv, restore, err := e.underFDLimit(limit)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nthe log of the server under the limit (tail):\n%s", err, srv.Tail(15))
		}
		srv.Close()
		restore()
	}()
	pid := srv.PID()
	base, err := stableFDs(e, pid)
	if err != nil {
		return err
	}
	// The clients the server has no room for wait in its accept queue,
	// which the kernel caps at net.core.somaxconn: more than fit there are
	// dropped, which is not what this check is about.
	clients, holders := 500, 80
	if queue := harness.SomaxConn(); queue > 0 {
		clients = min(clients, queue/2)
	}
	release, err := harness.ReserveFDs(clients)
	if err != nil {
		return err
	}
	defer release()

	// Served in turns, 500 clients take well under a second; the deadline
	// is for a loaded machine.
	const turns = 10 * time.Second
	start := time.Now()
	deadline := start.Add(turns)
	addr, exchange, err := answerExchange(e, deadline)
	if err != nil {
		return err
	}
	if err := allAnswered(crowd(clients, addr, deadline, exchange), turns); err != nil {
		return fmt.Errorf("under a limit of %d descriptors: %w", limit, err)
	}
	e.logf("%d clients answered in %v under a limit of %d descriptors", clients, time.Since(start).Round(time.Millisecond), limit)

	// Fill the room with clients that say nothing, then queue one more.
	held := make([]*net.TCPConn, 0, holders)
	defer func() { closeAll(held) }()
	for range holders {
		c, err := harness.Dial(e.Addr(holdRole(e.Stage)))
		if err != nil {
			return fail(fmt.Sprintf("%d idle clients connected", holders), "%v", err)
		}
		held = append(held, c)
	}
	waiting := make(chan error, 1)
	deadline = time.Now().Add(turns)
	if addr, exchange, err = answerExchange(e, deadline); err != nil {
		return err
	}
	go func() { waiting <- firstErrors(crowd(1, addr, deadline, exchange), 1) }()
	if _, err := stableFDs(e, pid); err != nil {
		return err
	}
	meter, err := harness.StartCPUMeter(pid)
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // a measurement window, not a synchronisation
	pct, _, err := meter.Percent()
	if err != nil {
		return err
	}
	e.logf("CPU while %d idle clients fill the room and one more waits: %.1f %%", holders, pct)
	if pct > 10 {
		return fail("an idle server while out of descriptors (under 10 % CPU)", "%.0f %% CPU over 1 s: it retries accept without waiting for a descriptor to be released", pct)
	}
	closeAll(held)
	held = nil
	if err := <-waiting; err != nil {
		return fmt.Errorf("the client queued behind %d idle clients, once they left: %w", holders, err)
	}

	// No room at all, and no client to wait for.
	if _, err := stableFDs(e, pid); err != nil {
		return err
	}
	next, err := harness.LowestFreeFD(pid)
	if err != nil {
		return err
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(next), Max: uint64(limit)}, nil); err != nil {
		return fmt.Errorf("lowering the server's descriptor limit to %d: %w", next, err)
	}
	for i := range 3 {
		deadline := time.Now().Add(replyTimeout)
		if addr, exchange, err = answerExchange(e, deadline); err != nil {
			return err
		}
		var nr noRoom
		if err := firstErrors(crowd(1, addr, deadline, exchange), 1); err != nil && !errors.As(err, &nr) {
			return fmt.Errorf("with no descriptor to spare, client %d, which may be answered, closed or told 503: %w", i+1, err)
		}
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(limit), Max: uint64(limit)}, nil); err != nil {
		return err
	}
	// A server still shedding its queue when the room comes back may close
	// a client or two more; then it must serve again.
	if err := harness.WaitFor(replyTimeout, func() error { return probe(e) }); err != nil {
		return fmt.Errorf("with room again: %w", err)
	}
	if err := srv.Alive(); err != nil {
		return fail("the server to keep running", "it exited (%v)", err)
	}
	return fdsBackTo(e, pid, base)
}

// underFDLimit replaces the server with one started the same way under a
// descriptor limit of n, and returns it and the function that starts the
// usual server again (once the caller has closed the replacement).
func (e *Env) underFDLimit(n int) (*ServerProcess, func() error, error) {
	srv, ok := e.Server.(*ServerProcess)
	if !ok {
		return nil, nil, skip("the server under test is not a process this check can start again")
	}
	srv.Close()
	p := &ServerProcess{Bin: "sh", Args: append([]string{"-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(n), srv.Bin}, srv.Args...),
		Dir: srv.Dir, Env: srv.Env, Host: srv.Host, Ports: srv.Ports}
	if err := p.Start(); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("starting the server under a limit of %d descriptors: %w", n, err), srv.Start())
	}
	return p, srv.Start, nil
}

// allAnswered turns the errors of a crowd of clients into one: how many
// were answered within limit, and the first failures.
func allAnswered(errs []error, limit time.Duration) error {
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d clients answered within %v: %w", len(errs)-failed, len(errs), limit, firstErrors(errs, 3))
}
