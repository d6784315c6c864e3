package milestone

import (
	"bytes"
	"crypto/sha256"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"expserver-go/tests/harness"
)

// inParallel runs fn(0) … fn(n-1) each on its own goroutine and returns
// their errors, indexed like the calls, once all have returned. A call that
// panics returns the panic as its error: a bug in a check must not take
// down the grading of every other case.
func inParallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					errs[i] = &checkPanic{value: p, stack: debug.Stack()}
				}
			}()
			errs[i] = fn(i)
		})
	}
	wg.Wait()
	return errs
}

// concurrentRequests opens n connections to the port with the given role,
// then sends request on all of them at once, reads each response to the
// close, and requires status 200 and a body with the sha256 want. what
// names that body in a failure.
func concurrentRequests(e *Env, role, n int, request string, want [32]byte, what string) error {
	conns, err := dialMany(e, n, func(int) string { return e.Addr(role) })
	defer closeAll(conns)
	if err != nil {
		return err
	}
	// The server answers the crowd in turns: a client waiting its turn
	// fails only if the server stops answering everyone.
	progress := harness.NewProgress()
	return firstErrors(inParallel(len(conns), func(i int) error {
		c := conns[i]
		c.Write([]byte(request))
		raw, err := harness.ReadToCloseAmong(c, bulkTimeout, progress)
		if err != nil {
			return fail("a whole response", "client %d: %d bytes, then %v", i+1, len(raw), describeReadErr(err))
		}
		r, err := harness.ParseResponse(raw)
		if err != nil || r.Status != 200 || sha256.Sum256(r.Body) != want {
			return fail("200 with "+what+" (sha256)", "client %d: %s", i+1, harness.Abbrev(raw, 60))
		}
		return nil
	}), 3)
}

// upstreamDiesMidResponse replaces the upstream with one that takes the
// request, sends part of a response and resets the connection, as a dying
// process would, and sends request to the port with the given role: the
// client must get a prefix of what the upstream sent, unchanged, then a
// close.
func upstreamDiesMidResponse(role int, request string) func(*Env) error {
	return func(e *Env) error {
		partial := append([]byte("HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n"), bytes.Repeat([]byte("partial "), 8192)...)
		restore, err := fakeUpstream(e, func(c net.Conn) {
			readRequest(c)
			c.Write(partial)
			harness.Reset(c.(*net.TCPConn))
		})
		if err != nil {
			return err
		}
		defer restore()
		c, err := harness.Dial(e.Addr(role))
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write([]byte(strings.ReplaceAll(request, "HOST", e.Addr(role))))
		got, err := harness.ExpectClose(c, bulkTimeout)
		if err != nil {
			return fail("the partial response, then a close", "%d bytes, then %v", len(got), describeReadErr(err))
		}
		// A reset from the upstream can destroy its last bytes in flight
		// before the server reads them, so what arrived must be a prefix
		// of what was sent — never more, never different.
		if len(got) == 0 || !bytes.HasPrefix(partial, got) {
			return fail("a prefix of the upstream's partial response, unchanged", "%s", harness.Abbrev(got, 80))
		}
		if err := restore(); err != nil {
			return err
		}
		return nil
	}
}

// expectSilentClose requires the server to close c without sending a
// byte; want says what was expected, in a failure.
func expectSilentClose(c net.Conn, want string) error {
	got, err := harness.ExpectClose(c, replyTimeout)
	if len(got) > 0 {
		return fail(want, "the server sent %s", harness.Abbrev(got, 60))
	}
	if err != nil {
		return fail(want, "the connection stayed open (%v)", describeReadErr(err))
	}
	return nil
}

// midStream starts a large reply: it connects to the port with the given
// role, sends request and reads the first MiB of the reply, which it
// returns as first. file names the reply in a failure. On success the
// caller owns c.
func midStream(e *Env, role int, request, file string) (c *net.TCPConn, first []byte, err error) {
	if c, err = harness.Dial(e.Addr(role)); err != nil {
		return nil, nil, err
	}
	c.Write([]byte(request))
	if first, err = harness.ReadFull(c, 1<<20, replyTimeout); err != nil {
		c.Close()
		return nil, nil, fail(file+" to start arriving", "%v", describeReadErr(err))
	}
	return c, first, nil
}

// leaveMidStream sends request to the port with the given role, reads the
// first MiB of what comes back and resets the connection: the server must
// release everything of that client, the file named file included.
func leaveMidStream(e *Env, role int, request, file string) error {
	pid := e.Server.PID()
	base, err := stableFDs(e, pid)
	if err != nil {
		return err
	}
	c, _, err := midStream(e, role, request, file)
	if err != nil {
		return err
	}
	harness.Reset(c)
	// The file must be closed by the time the client's fds are gone.
	if err := fdsBackTo(e, pid, base); err != nil {
		return err
	}
	targets, _ := harness.FDTargets(pid)
	for _, t := range targets {
		if strings.HasSuffix(t, "/"+file) {
			return fail(file+" closed", "the server still holds %s open", t)
		}
	}
	return nil
}

// fileShrinksMidStream sends request to the port with the given role, which
// answers with the file at path, 50 MiB long; after the first MiB arrives,
// the file is truncated to 1 MiB under the server. The server can never
// finish that reply: it must end the connection — the client reads what
// was already on its way, then a close — and release the file, rather than
// retry forever.
func fileShrinksMidStream(e *Env, role int, request, path string) error {
	c, first, err := midStream(e, role, request, filepath.Base(path))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := os.Truncate(path, 1<<20); err != nil {
		return err
	}
	rest, err := harness.ExpectClose(c, bulkTimeout)
	if err != nil {
		return fail("the bytes already sent, then a close", "%d bytes, then %v", len(first)+len(rest), describeReadErr(err))
	}
	if got := len(first) + len(rest); got >= 50<<20 {
		return fail("fewer than 50 MiB from a file cut to 1 MiB", "%d bytes", got)
	}
	return nil
}
