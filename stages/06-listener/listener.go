package main

import (
	"os"

	"expserver-go/common/netaddr"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// listener is one listening TCP socket. Mirrors xps_listener_t.
type listener struct {
	epollFD int
	host    string
	port    int
	sock    int
}

// newListener opens a non-blocking IPv4 socket bound to host:port, starts
// listening, registers it with epoll for read events and adds it to the
// listener list. On failure it releases what it acquired.
// Mirrors xps_listener_create.
func newListener(epollFD int, host string, port int) (*listener, error) {
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
	if err := loopAttach(epollFD, sock, unix.EPOLLIN); err != nil {
		unix.Close(sock)
		return nil, err
	}
	l := &listener{epollFD: epollFD, host: host, port: port, sock: sock}
	listeners = append(listeners, l)
	xlog.Debugf("created listener on %s:%d", host, port)
	return l, nil
}

// accept takes one waiting client off the listening socket and creates its
// connection. A failure concerns only that client: it is logged and the
// server carries on. Mirrors xps_listener_connection_handler.
func (l *listener) accept() {
	// No SOCK_NONBLOCK: connected sockets block in this stage.
	sock, peerIP, err := netaddr.Accept(l.sock, unix.SOCK_CLOEXEC)
	if err != nil {
		xlog.Errorf("accept() failed: %v", err)
		return
	}
	c, err := newConnection(l.epollFD, sock, peerIP)
	if err != nil {
		xlog.Errorf("%v", err)
		unix.Close(sock)
		return
	}
	c.listener = l
	xlog.Infof("new connection")
}
