package main

import (
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
	if err := c.loop.attach(sock, unix.EPOLLIN, l.accept); err != nil {
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

// accept takes one waiting client off the listening socket and creates its
// connection. A failure concerns only that client: it is logged and the
// server carries on. Mirrors listener_connection_handler.
func (l *listener) accept() {
	// No SOCK_NONBLOCK: connected sockets block in this stage.
	sock, peerIP, err := netaddr.Accept(l.sock, unix.SOCK_CLOEXEC)
	if err != nil {
		xlog.Errorf("accept() failed: %v", err)
		return
	}
	c, err := newConnection(l.core, sock, peerIP)
	if err != nil {
		xlog.Errorf("%v", err)
		unix.Close(sock)
		return
	}
	c.listener = l
	xlog.Infof("new connection")
}
