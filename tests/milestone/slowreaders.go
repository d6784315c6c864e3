package milestone

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"expserver-go/tests/harness"
)

// slowReaderMilestones are the checks of memory held for clients that do
// not read what they asked for.
var slowReaderMilestones = []Milestone{
	{ID: "listing-slow-readers", Title: "30 clients that never read a 4 MB listing cost the server under 96 MiB of memory",
		From: 17, To: 23, Run: checkListingSlowReaders},
}

// checkListingSlowReaders lists a folder of 40,000 entries (a page of about
// 4 MB) for one client that reads it, then for 30 that never read. The
// server must produce a listing as the client takes it, as it sends a file,
// rather than hold each whole page: its resident memory may grow by less
// than 96 MiB (about 3 MiB a client), and the page a slow reader gets once
// it reads is the same.
func checkListingSlowReaders(e *Env) error {
	const entries, readers, limit = 40_000, 30, 96 << 20
	dir := filepath.Join(e.Layout.Public, "many")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Hard links to one empty file: the cheapest entries to make.
	first := filepath.Join(dir, "entry-00000.txt")
	if err := os.WriteFile(first, nil, 0o644); err != nil {
		return err
	}
	for i := 1; i < entries; i++ {
		if err := os.Link(first, filepath.Join(dir, fmt.Sprintf("entry-%05d.txt", i))); err != nil {
			return err
		}
	}
	request := "GET /many/ HTTP/1.1\r\nHost: " + e.Addr(0) + "\r\n\r\n"
	r, raw, err := harness.RoundTrip(e.Addr(0), request, bulkTimeout)
	if err != nil {
		return fail("the listing of /many/", "%v", err)
	}
	if r.Status != 200 || r.Get("Content-Length") != strconv.Itoa(len(r.Body)) {
		return fail("200 with the listing, as long as its Content-Length", "%d, Content-Length %q, %d bytes", r.Status, r.Get("Content-Length"), len(r.Body))
	}
	if n := strings.Count(string(r.Body), `href="/many/entry-`); n != entries {
		return fail(fmt.Sprintf("a link to each of the %d entries", entries), "%d links", n)
	}
	want := sha256.Sum256(raw[r.HeadLen:])
	e.logf("the listing is %d bytes", len(r.Body))

	pid := e.Server.PID()
	base, err := harness.RSS(pid)
	if err != nil {
		return err
	}
	release, err := harness.ReserveFDs(readers)
	if err != nil {
		return err
	}
	defer release()
	peak := harness.SampleRSS(pid, 20*time.Millisecond)
	conns := make([]*net.TCPConn, 0, readers)
	defer func() { closeAll(conns) }()
	// A small receive buffer, so the kernel holds little of the page and
	// the rest is the server's to keep or not to make yet.
	d := net.Dialer{Timeout: replyTimeout, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	for range readers {
		c, err := d.Dial("tcp", e.Addr(0))
		if err != nil {
			peak()
			return fail(fmt.Sprintf("%d connections", readers), "%v", err)
		}
		conns = append(conns, c.(*net.TCPConn))
		c.Write([]byte(request))
	}
	// The server has done what it will once it stops using the CPU.
	if err := cpuSettles(pid, 300*time.Millisecond, bulkTimeout); err != nil {
		peak()
		return err
	}
	grown := peak() - base
	e.logf("RSS grew by %.1f MiB for %d clients that do not read", float64(grown)/(1<<20), readers)
	if grown > limit {
		return fail(fmt.Sprintf("RSS to grow by less than %d MiB for %d clients that do not read a %.1f MB listing", limit>>20, readers, float64(len(r.Body))/1e6),
			"it grew by %.0f MiB", float64(grown)/(1<<20))
	}
	for i, c := range conns[:2] {
		got, err := harness.ReadToClose(c, bulkTimeout)
		if err != nil || len(got) < r.HeadLen || sha256.Sum256(got[r.HeadLen:]) != want {
			return fail("the same listing for a client that reads late", "client %d: %d bytes, %v", i+1, len(got), err)
		}
	}
	return nil
}

// cpuSettles waits until the process has used no CPU for quiet, or fails
// after timeout.
func cpuSettles(pid int, quiet, timeout time.Duration) error {
	last, since := time.Duration(-1), time.Now()
	return harness.WaitFor(timeout, func() error {
		cpu, err := harness.CPUTime(pid)
		if err != nil {
			return harness.Permanent(err)
		}
		if cpu != last {
			last, since = cpu, time.Now()
		}
		if time.Since(since) < quiet {
			return fmt.Errorf("the server still works: %v of CPU so far", cpu)
		}
		return nil
	})
}
