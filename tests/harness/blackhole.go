package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Blackhole is an address where a TCP connect neither succeeds nor fails:
// a socket that listens with a backlog of 0 and never accepts, with one
// connection already waiting in its queue. The kernel drops every further
// SYN to a listener whose accept queue is full, so the connecting side
// retransmits and waits until it gives up — a connect timeout, on loopback.
type Blackhole struct {
	Addr   string // 127.0.0.1:PORT
	fd     int
	queued *net.TCPConn
}

// StartBlackhole makes a blackhole on a free port of 127.0.0.1. It checks
// that a connect to it does hang: on a kernel that behaves otherwise the
// checks that need one could not mean what they say.
func StartBlackhole() (*Blackhole, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	b := &Blackhole{fd: fd}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Close()
		return nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		b.Close()
		return nil, os.NewSyscallError("listen", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		b.Close()
		return nil, os.NewSyscallError("getsockname", err)
	}
	b.Addr = "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
	if b.queued, err = Dial(b.Addr); err != nil {
		b.Close()
		return nil, fmt.Errorf("harness: blackhole: the connection that fills its queue: %w", err)
	}
	if c, err := net.DialTimeout("tcp4", b.Addr, 200*time.Millisecond); err == nil || !dialTimedOut(err) {
		if c != nil {
			c.Close()
		}
		b.Close()
		return nil, fmt.Errorf("harness: blackhole: a connect to a full accept queue did not hang here (%v)", err)
	}
	return b, nil
}

// dialTimedOut reports whether a dial failed for want of an answer in time.
func dialTimedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Close releases the socket and the queued connection.
func (b *Blackhole) Close() {
	if b.queued != nil {
		b.queued.Close()
	}
	unix.Close(b.fd)
}
