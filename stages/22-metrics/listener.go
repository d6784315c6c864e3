package main

import (
	"errors"
	"os"
	"slices"

	"expserver-go/common/netaddr"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// listener is one listening TCP socket. Mirrors xps_listener_t.
type listener struct {
	core *core
	host string
	port int
	sock int
	// starved is set while clients may be waiting in the accept queue that
	// the listener could not take for want of a descriptor (see starve).
	starved bool
	// startSession is l.createSession, made once: every connection of this
	// listener shares it rather than allocating its own.
	startSession func(*connection)
	// metrics marks the metrics listener, whose requests the metrics
	// module answers instead of a server of the config (see serveMetrics).
	metrics bool
}

// newListener opens a non-blocking IPv4 socket bound to host:port, starts
// listening, attaches it to the loop and adds it to the core. On failure it
// releases what it acquired. Mirrors xps_listener_create.
func newListener(c *core, host string, port int) (*listener, error) {
	if err := netaddr.CheckPort(port); err != nil {
		return nil, err
	}
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// Address reuse lets a restarted server bind at once although old
	// connections on the port are still in TIME_WAIT.
	if err := unix.SetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(sock)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	addr, err := netaddr.ResolveIPv4(host, port)
	if err != nil {
		unix.Close(sock)
		return nil, err
	}
	if err := unix.Bind(sock, addr); err != nil {
		unix.Close(sock)
		return nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(sock, listenBacklog); err != nil {
		unix.Close(sock)
		return nil, os.NewSyscallError("listen", err)
	}
	l := &listener{core: c, host: host, port: port, sock: sock}
	l.startSession = l.createSession
	if err := c.loop.attach(sock, unix.EPOLLIN|unix.EPOLLET, handlers{read: l.accept}); err != nil {
		unix.Close(sock)
		return nil, err
	}
	c.listeners = append(c.listeners, l)
	xlog.Debugf("created listener on %s:%d", host, port)
	return l, nil
}

// close detaches the listener, removes it from the core and closes its
// socket. Mirrors xps_listener_destroy.
func (l *listener) close() {
	if err := l.core.loop.detach(l.sock); err != nil {
		xlog.Errorf("%v", err)
	}
	l.core.listeners = slices.DeleteFunc(l.core.listeners, func(x *listener) bool { return x == l })
	unix.Close(l.sock)
	xlog.Debugf("destroyed listener on port %d", l.port)
}

// accept takes every waiting client off the listening socket and creates
// their connections. Edge-triggered epoll reports new clients once, however
// many arrived together, so accept loops until the socket has none left
// (EAGAIN); otherwise clients would wait for the next arrival to be noticed.
// Running out of descriptors or memory stops it (see starve); any other
// failure concerns only that client: it is logged and the server carries
// on. Mirrors listener_connection_handler.
func (l *listener) accept() {
	// A server that holds no client reads its descriptor limit again
	// before it takes the first: an operator may have lowered the limit of
	// the running server while it was idle. A busy server pays nothing.
	if l.core.clients == 0 {
		l.core.setClientBudget()
	}
	for {
		// Take no more clients than the server has descriptors for (see
		// core.setClientBudget); the rest wait in the accept queue, and
		// the loop tries again when a client leaves.
		if l.core.full() {
			if l.queued() {
				l.core.slot.set(mConnAcceptError, 1)
			}
			l.starve(nil)
			return
		}
		// SOCK_NONBLOCK makes the new socket non-blocking in the same system
		// call; the course's make_socket_non_blocking does it with fcntl after.
		sock, peerIP, err := netaddr.Accept(l.sock, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch {
			case errors.Is(err, unix.EAGAIN):
				l.starved = false
				return
			case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
				continue
			case outOfDescriptors(err), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
				l.core.slot.set(mConnAcceptError, 1)
				l.starve(err)
				return
			}
			l.core.slot.set(mConnAcceptError, 1)
			xlog.Errorf("accept() failed: %v", err)
			return
		}
		c, err := newConnection(l.core, sock, peerIP)
		if err != nil {
			l.core.slot.set(mConnAcceptError, 1)
			xlog.Errorf("%v", err)
			unix.Close(sock)
			continue
		}
		c.listener = l
		l.core.clients++
		l.core.slot.set(mConnAccept, 1)
		// The whole head must arrive within client_header_timeout of the
		// accept, however the client paces it: a deadline, which no byte
		// pushes back, so a client trickling bytes cannot hold the
		// connection for ever (slowloris). Sends to the client are under
		// send_timeout. This loop takes every client in the queue, so one
		// may have arrived after the clock was read for this iteration —
		// while the loop ran, or while the server was not scheduled: the
		// clock is read again, so that no deadline starts before its
		// client came.
		l.core.updateTime()
		c.readTimer.update(l.core.config.timeouts.clientHeader)
		c.writeIdle = l.core.config.timeouts.send
		// An HTTP client speaks first, so its session is created when it
		// first sends something. Until then an idle connection costs no
		// more than the connection itself.
		c.onFirstData = l.startSession
		xlog.Infof("new connection")
	}
}

// createSession creates the session of a client that has started sending.
// If it fails, the client is closed.
func (l *listener) createSession(c *connection) {
	if _, err := newSession(l.core, c); err != nil {
		xlog.Errorf("%v", err)
		c.close(false)
	}
}

// outOfDescriptors reports whether err says that the process, or the whole
// system, has no descriptor left: the server's condition rather than the
// client's, and one that passes as soon as the server closes a descriptor.
func outOfDescriptors(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE)
}

// starve stops the listener while clients may still be waiting in its
// accept queue: the server holds as many clients as its descriptors allow
// (err is nil), or an accept failed for want of a descriptor or of memory.
// Those clients will not be announced again — the listener is
// edge-triggered, and only a new arrival would make another edge — so the
// listener marks itself starved, and the loop gives it another accept as
// soon as the server closes a descriptor of its own (see
// loop.retryStarved). Until then it makes no system call, so it cannot spin.
//
// Running out of descriptors all the same means the limit is lower than the
// client budget assumed, so the limit is read again. And a server that holds
// no connection will never close one: then the queue is shed instead, so no
// client is left waiting for ever on a server that cannot serve it.
func (l *listener) starve(err error) {
	if !l.starved {
		if err == nil {
			xlog.Warnf("%d clients, as many as the descriptor limit allows: the rest wait to be accepted", l.core.clients)
		} else {
			xlog.Errorf("accept() failed: %v; retrying once a descriptor is closed", err)
		}
	}
	l.starved = true
	if err == nil {
		return
	}
	// A descriptor closed before this failure has been used up already.
	l.core.loop.freed = false
	if outOfDescriptors(err) {
		l.core.setClientBudget()
	}
	if len(l.core.connections) == 0 {
		l.shed()
	}
}

// queued reports whether clients wait in the listening socket's accept
// queue: poll finds the socket readable exactly when one does. The server
// asks only when it holds all the clients it can; each time it then leaves
// clients waiting, that counts as one accept error, as a failed accept()
// would have without the client budget.
func (l *listener) queued() bool {
	fds := []unix.PollFd{{Fd: int32(l.sock), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
}

// shed accepts every client left in the accept queue and closes it at
// once, so each learns straight away that it will not be served. The
// descriptor each accept needs is the core's spare one, given up for the
// moment and taken back after each client.
func (l *listener) shed() {
	closed := 0
	for l.core.spareFD >= 0 {
		unix.Close(l.core.spareFD)
		sock, _, err := netaddr.Accept(l.sock, unix.SOCK_CLOEXEC)
		if err == nil {
			unix.Close(sock)
			closed++
			l.core.slot.set(mConnAcceptError, 1) // accepted, but not served
		}
		l.core.spareFD = openSpare()
		if errors.Is(err, unix.EAGAIN) {
			l.starved = false
		}
		if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.ECONNABORTED) {
			break
		}
	}
	if closed > 0 {
		xlog.Errorf("closed %d clients on port %d unserved: no descriptor left", closed, l.port)
	}
}

// openSpare opens the descriptor the core keeps in reserve for shed, or
// returns -1 when it cannot; the server then does without.
func openSpare() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		xlog.Warnf("no spare descriptor: %v", err)
		return -1
	}
	return fd
}
