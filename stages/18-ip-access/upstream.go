package main

import (
	"errors"
	"fmt"
	"os"

	"expserver-go/common/netaddr"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// newUpstream opens a non-blocking TCP connection to addr and returns it as
// an ordinary connection, with a source and a sink like a client's. The
// address was resolved before the loop started: looking a name up waits for
// the name server, and here, inside the loop, that wait would stall every
// client. The connect completes in the background: epoll reports the socket
// writable once it is established, or an error if it is refused.
// Mirrors xps_upstream_create.
func newUpstream(c *core, addr *unix.SockaddrInet4) (*connection, error) {
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", os.NewSyscallError("socket", err))
	}
	// EINPROGRESS is the normal answer of a non-blocking connect.
	if err := unix.Connect(sock, addr); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(sock)
		return nil, fmt.Errorf("upstream: connect %s: %w", netaddr.String(addr), err)
	}
	up, err := newConnection(c, sock, netaddr.PeerIP(addr))
	if err != nil {
		unix.Close(sock)
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if xlog.DebugEnabled() {
		xlog.Debugf("connecting to upstream %s", netaddr.String(addr))
	}
	return up, nil
}
