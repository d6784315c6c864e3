package harness

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// FreePorts returns n distinct TCP ports that were free a moment ago. All n
// are held open together while they are chosen, so they differ.
//
// They are taken below the kernel's ephemeral range (ip_local_port_range),
// where no outgoing connection is given a local port: a port from inside
// it, free when chosen, could be taken by one of the thousands of client
// connections the tests make before the server under test binds it. No
// port is handed out twice within a minute, so that two checks starting
// servers at the same moment never get the same one; the course's own
// ports (3000, 8001–8004) are never handed out.
func FreePorts(n int) ([]int, error) {
	lo, hi := portRange()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("harness: no free port in %d–%d", lo, hi)
		}
		port := lo + rand.IntN(hi-lo+1)
		if port == 3000 || port >= 8000 && port <= 8010 || !handOut(port) {
			continue
		}
		l, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	return ports, nil
}

// portRange returns the ports FreePorts chooses from: from 10000 to just
// below the ephemeral range, or, where that range starts too low to leave
// room, the ephemeral range itself.
func portRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if first, err := strconv.Atoi(f[0]); err == nil && first > 12000 {
			return 10000, first - 1
		}
	}
	return 32768, 60999
}

// handedOut remembers when each port was last handed out.
var handedOut = struct {
	sync.Mutex
	at map[int]time.Time
}{at: map[int]time.Time{}}

// handOut reports whether port may be handed out now, and if so notes it.
func handOut(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if t, ok := handedOut.at[port]; ok && time.Since(t) < time.Minute {
		return false
	}
	handedOut.at[port] = time.Now()
	return true
}

// PollInterval is how often the harness re-checks a condition it waits for.
const PollInterval = 10 * time.Millisecond

// WaitFor calls check every PollInterval until it returns nil or timeout
// passes, and then returns check's last error. A check that returns an error
// made by Permanent stops the wait at once.
func WaitFor(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(PollInterval)
	}
}

// Permanent wraps err so that WaitFor stops waiting and returns err.
func Permanent(err error) error { return permanent{err} }

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }

// WaitAccepting waits until every address accepts a TCP connection. alive,
// if not nil, is checked between attempts so that a server that exited at
// start-up is reported at once rather than after the timeout.
func WaitAccepting(addrs []string, timeout time.Duration, alive func() error) error {
	return WaitFor(timeout, func() error {
		if alive != nil {
			if err := alive(); err != nil {
				return Permanent(err)
			}
		}
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return fmt.Errorf("harness: %s does not accept connections: %w", a, err)
			}
			c.Close()
		}
		return nil
	})
}

// Dial connects to addr over TCP with a 5-second timeout.
func Dial(addr string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// LoopbackPair returns a listener on an ephemeral port of 127.0.0.1 and a
// client connected to it; the caller closes both. The connection waits in
// the listener's queue: accepting it is the caller's to do, or not.
func LoopbackPair() (*net.TCPListener, *net.TCPConn, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	c, err := Dial(l.Addr().String())
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return l.(*net.TCPListener), c, nil
}

// ChunkSize is the read size of ReadChunk: what a Node.js socket reads at a
// time, so a "first data event" here is what the course's grader sees.
const ChunkSize = 64 * 1024

// ReadChunk returns the bytes of one read call — the first data event a
// client sees. It fails with io.EOF if the peer closed first.
func ReadChunk(c net.Conn, timeout time.Duration) ([]byte, error) {
	buf := make([]byte, ChunkSize)
	c.SetReadDeadline(time.Now().Add(timeout))
	n, err := c.Read(buf)
	if n > 0 {
		return buf[:n], nil
	}
	return nil, err
}

// The reads below that may take many calls bound the silence between two
// arrivals, not the whole transfer: a large reply that keeps flowing is
// never cut short, and a server that has stopped sending fails the read
// after idle, not after the longest a transfer could take.

// ReadFull reads exactly n bytes, failing when nothing arrives for idle.
func ReadFull(c net.Conn, n int, idle time.Duration) ([]byte, error) {
	buf := make([]byte, n)
	k := 0
	for k < n {
		c.SetReadDeadline(time.Now().Add(idle))
		m, err := c.Read(buf[k:])
		k += m
		if err != nil {
			if errors.Is(err, io.EOF) && k > 0 {
				err = io.ErrUnexpectedEOF // as io.ReadFull says it
			}
			return buf[:k], err
		}
	}
	return buf, nil
}

// ReadToClose reads until the peer closes the connection and returns all the
// bytes, failing when nothing arrives for idle. A reset after data counts
// as a close; the error then says so.
func ReadToClose(c net.Conn, idle time.Duration) ([]byte, error) {
	return ReadToCloseAmong(c, idle, NewProgress())
}

// Progress is when a crowd of connections to one server last received
// data. A single-threaded server serves a crowd in turns, so one client's
// silence is not a stall while the others are being served.
type Progress struct{ last atomic.Int64 }

// NewProgress returns a Progress that starts now.
func NewProgress() *Progress {
	p := &Progress{}
	p.touch()
	return p
}

func (p *Progress) touch() { p.last.Store(time.Now().UnixNano()) }

// deadline is when a crowd that received nothing more would have been
// silent for idle.
func (p *Progress) deadline(idle time.Duration) time.Time {
	return time.Unix(0, p.last.Load()).Add(idle)
}

// ReadToCloseAmong is ReadToClose for one client of a crowd that shares p:
// it fails only when no client of the crowd has received anything for
// idle.
func ReadToCloseAmong(c net.Conn, idle time.Duration, p *Progress) ([]byte, error) {
	var out []byte
	buf := make([]byte, ChunkSize)
	for {
		c.SetReadDeadline(p.deadline(idle))
		n, err := c.Read(buf)
		if n > 0 {
			p.touch()
		}
		out = append(out, buf[:n]...)
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case IsTimeout(err) && time.Now().Before(p.deadline(idle)):
			// Another client of the crowd was served meanwhile: wait on.
		case err != nil:
			return out, err
		}
	}
}

// IsTimeout reports whether err is a read or dial deadline expiring.
func IsTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// IsReset reports whether err means the peer reset the connection.
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Reset closes c with SO_LINGER 0, so the peer gets a TCP reset instead of an
// orderly close — what a crashing client or the grader's socket.destroy()
// with unread data looks like.
func Reset(c *net.TCPConn) error {
	if err := c.SetLinger(0); err != nil {
		return err
	}
	return c.Close()
}

// ExpectClose waits for the peer to close c, failing when nothing arrives
// for idle. It returns the bytes that arrived before the close, if any.
func ExpectClose(c net.Conn, idle time.Duration) (got []byte, err error) {
	buf := make([]byte, ChunkSize)
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) || IsReset(err) {
				return got, nil
			}
			return got, err
		}
	}
}
