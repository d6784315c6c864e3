package milestone

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"expserver-go/tests/harness"
)

// fileMilestones are the checks of the stages with an upstream relay and a
// file module but no HTTP (11–13).
var fileMilestones = []Milestone{
	{ID: "proxy-multiple-clients", Title: "3 concurrent requests through the first port get exactly the upstream's responses",
		From: 11, To: 13, Grader: true, Run: checkProxyMultipleClients},
	{ID: "file-on-connect", Title: "the second port sends sample.txt whole in its first chunk, then closes",
		From: 12, To: 13, Grader: true, Run: checkFileOnConnect},
	{ID: "file-access-restriction", Title: "the third port refuses ../temp/file.txt: closes without sending a byte",
		From: 12, To: 12, Grader: true, Run: checkFileAccessRestriction},
	{ID: "upstream-down", Title: "with the upstream down, a client on the first port is closed with nothing sent",
		From: 11, To: 13, Grader: true, Fresh: true, Run: checkUpstreamDownSilentClose},
	{ID: "upstream-dies-mid-response", Title: "an upstream dying mid-response: the client gets what was sent, then a close",
		From: 11, To: 13, Run: upstreamDiesMidResponse(0, "GET /big HTTP/1.0\r\n\r\n")},
	{ID: "proxy-500-concurrent", Title: "500 concurrent clients relayed through the first port all get the whole response",
		From: 11, To: 13, Run: checkProxy500},
	{ID: "large-file", Title: "a 50 MiB sample.txt arrives whole through the file module (sha256)",
		From: 12, To: 13, Run: checkLargeFile},
	{ID: "client-leaves-mid-file", Title: "a client leaving mid-file makes the server release the file",
		From: 12, To: 13, Run: checkClientLeavesMidFile},
	{ID: "file-shrinks-mid-send", Title: "sample.txt cut short while it is being sent: the client gets a close, nothing hangs",
		From: 12, To: 13, Run: checkFileShrinksMidSend},
	{ID: "idle-ports", Title: "the third and fourth ports accept and send nothing; leaving frees everything",
		From: 13, To: 13, Run: checkIdlePorts},
}

// dateLine matches the Date header line of a response, the one part of two
// responses to the same request that may differ.
var dateLine = regexp.MustCompile(`(?im)^date:[^\n]*\n`)

// sameResponse compares a relayed response with a direct one byte for byte,
// except the Date header's value.
func sameResponse(direct, relayed []byte) error {
	d := dateLine.ReplaceAll(direct, []byte("Date: -\r\n"))
	r := dateLine.ReplaceAll(relayed, []byte("Date: -\r\n"))
	if !bytes.Equal(d, r) {
		return fail("the upstream's response byte for byte: "+harness.Abbrev(d, 160), "%s", harness.Abbrev(r, 160))
	}
	return nil
}

func (e *Env) upstreamAddr() string { return "127.0.0.1:" + strconv.Itoa(e.Upstream.Port) }

// relayedMatchesDirect sends a request straight to the upstream and one
// through the port with the given role, and compares the responses with
// sameResponse. request returns the request to send to addr.
func relayedMatchesDirect(e *Env, role int, request func(addr string) string, timeout time.Duration) error {
	_, direct, err := harness.RoundTrip(e.upstreamAddr(), request(e.upstreamAddr()), timeout)
	if err != nil {
		return fmt.Errorf("direct request to the upstream: %w", err)
	}
	_, relayed, err := harness.RoundTrip(e.Addr(role), request(e.Addr(role)), timeout)
	if err != nil {
		return fail("a response through the proxy", "%v", err)
	}
	return sameResponse(direct, relayed)
}

func checkProxyMultipleClients(e *Env) error {
	return errors.Join(inParallel(3, func(i int) error {
		// The same bytes both ways: a raw relay forwards them unchanged.
		req := fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", i, e.Addr(0))
		if err := relayedMatchesDirect(e, 0, func(string) string { return req }, replyTimeout); err != nil {
			return fmt.Errorf("GET /%d: %w", i, err)
		}
		return nil
	})...)
}

func sampleTxt(e *Env) ([]byte, error) {
	return os.ReadFile(filepath.Join(e.Layout.Public, "sample.txt"))
}

func checkFileOnConnect(e *Env) error {
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	c, err := harness.Dial(e.Addr(1))
	if err != nil {
		return err
	}
	defer c.Close()
	got, err := harness.ReadChunk(c, replyTimeout)
	if err != nil {
		return fail(fmt.Sprintf("sample.txt (%d bytes) in the first chunk", len(want)), "%s", describeReadErr(err))
	}
	if !bytes.Equal(got, want) {
		return fail(fmt.Sprintf("sample.txt (%d bytes) in the first chunk", len(want)), "%s", harness.Abbrev(got, 80))
	}
	if rest, err := harness.ExpectClose(c, replyTimeout); err != nil || len(rest) > 0 {
		return fail("a close after the file", "%d more bytes, %v", len(rest), err)
	}
	return nil
}

func checkFileAccessRestriction(e *Env) error {
	if err := os.MkdirAll(e.Layout.Temp, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.Layout.Temp, "file.txt"), []byte("Some sample data\n"), 0o644); err != nil {
		return err
	}
	c, err := harness.Dial(e.Addr(2))
	if err != nil {
		return err
	}
	defer c.Close()
	return expectSilentClose(c, "a close without data")
}

func checkUpstreamDownSilentClose(e *Env) error {
	e.Upstream.Stop()
	defer e.Upstream.Start()
	c, err := harness.Dial(e.Addr(0))
	if err != nil {
		return fail("the connection to be accepted", "%v", err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: " + e.Addr(0) + "\r\nConnection: close\r\n\r\n"))
	return expectSilentClose(c, "a close with no response (the course's grader hangs on any reply)")
}

// fakeUpstream replaces the real upstream on its port with a listener that
// runs script for one connection. restore, which may be called more than
// once, puts the real upstream back.
func fakeUpstream(e *Env, script func(c net.Conn)) (restore func() error, err error) {
	e.Upstream.Stop()
	l, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(e.Upstream.Port))
	if err != nil {
		e.Upstream.Start()
		return nil, fmt.Errorf("taking the upstream's port: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		script(c)
	}()
	var once sync.Once
	var startErr error
	return func() error {
		once.Do(func() {
			l.Close()
			<-done
			startErr = e.Upstream.Start()
		})
		return startErr
	}, nil
}

func checkProxy500(e *Env) error {
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	return concurrentRequests(e, 0, 500, "GET /sample.txt HTTP/1.0\r\n\r\n", sha256.Sum256(want), "sample.txt")
}

// withSampleTxt replaces public/sample.txt with content for the duration of
// fn. The file module opens the file when a client connects, so the server
// serves the replacement without a restart.
func withSampleTxt(e *Env, content []byte, fn func() error) error {
	path := filepath.Join(e.Layout.Public, "sample.txt")
	orig, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		return err
	}
	defer os.WriteFile(path, orig, 0o644)
	return fn()
}

// randomBytes returns n bytes drawn from the check's random source.
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b
}

func checkLargeFile(e *Env) error {
	content := randomBytes(e.Rand(), 50<<20)
	return withSampleTxt(e, content, func() error {
		c, err := harness.Dial(e.Addr(1))
		if err != nil {
			return err
		}
		defer c.Close()
		got, err := harness.ReadToClose(c, bulkTimeout)
		if err != nil {
			return fail("50 MiB, then a close", "%d bytes, then %v", len(got), describeReadErr(err))
		}
		if sha256.Sum256(got) != sha256.Sum256(content) {
			return fail("the file's bytes (sha256)", "%d bytes that differ", len(got))
		}
		return nil
	})
}

func checkClientLeavesMidFile(e *Env) error {
	return withSampleTxt(e, randomBytes(e.Rand(), 50<<20), func() error {
		return leaveMidStream(e, 1, "", "sample.txt")
	})
}

func checkFileShrinksMidSend(e *Env) error {
	return withSampleTxt(e, randomBytes(e.Rand(), 50<<20), func() error {
		return fileShrinksMidStream(e, 1, "", filepath.Join(e.Layout.Public, "sample.txt"))
	})
}

func checkIdlePorts(e *Env) error {
	for _, role := range []int{2, 3} {
		c, err := harness.Dial(e.Addr(role))
		if err != nil {
			return err
		}
		c.Write([]byte("anyone there?\n"))
		if got, err := harness.ReadChunk(c, 300*time.Millisecond); err == nil {
			c.Close()
			return fail("no reply on port "+strconv.Itoa(e.Ports[role]), "%s", harness.Abbrev(got, 40))
		}
		c.Close()
	}
	return nil
}
