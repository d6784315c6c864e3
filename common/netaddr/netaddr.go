package netaddr

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// CheckPort reports whether port is a valid TCP port number (0–65535).
// Mirrors is_valid_port.
func CheckPort(port int) error {
	if port < 0 || port > 65535 {
		return fmt.Errorf("invalid port %d: must be 0–65535", port)
	}
	return nil
}

// ResolveIPv4 resolves host to an IPv4 socket address with the given port,
// as getaddrinfo with AF_INET and SOCK_STREAM would. host may be a dotted
// quad or a name such as "localhost". Looking a name up can wait seconds
// for a name server that does not answer, so a server resolves its names
// before its event loop runs, never inside it. Mirrors xps_getaddrinfo.
func ResolveIPv4(host string, port int) (*unix.SockaddrInet4, error) {
	if err := CheckPort(port); err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: port}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return nil, fmt.Errorf("cannot resolve %q: not an IPv4 address", host)
		}
		sa.Addr = a.As4()
		return sa, nil
	}
	ipa, err := net.ResolveIPAddr("ip4", host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %q: %w", host, err)
	}
	copy(sa.Addr[:], ipa.IP.To4())
	return sa, nil
}

// SplitHostPort splits "host:port" at the last colon and checks the port.
func SplitHostPort(hostport string) (host string, port int, err error) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("%q: want host:port", hostport)
	}
	host = hostport[:i]
	port, err = strconv.Atoi(hostport[i+1:])
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("%q: want host:port", hostport)
	}
	if err := CheckPort(port); err != nil {
		return "", 0, fmt.Errorf("%q: %w", hostport, err)
	}
	return host, port, nil
}

// Accept accepts one connection on the listening socket fd — accept4(2)
// with flags such as SOCK_NONBLOCK|SOCK_CLOEXEC — and returns the new
// socket and the peer's IP address as text. It goes through package
// syscall rather than unix.Accept4, which asks the kernel for the socket's
// protocol after every accept (to tell L2TP from TCP): a system call a busy
// server would make once per client for nothing.
func Accept(fd, flags int) (nfd int, peerIP string, err error) {
	nfd, sa, err := syscall.Accept4(fd, flags)
	if err != nil {
		return -1, "", err
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		peerIP = netip.AddrFrom4(a.Addr).String()
	case *syscall.SockaddrInet6:
		peerIP = netip.AddrFrom16(a.Addr).String()
	}
	return nfd, peerIP, nil
}

// PeerIP returns the IP address of a socket address as text, such as
// "127.0.0.1", or "" for an address family it does not know.
// Mirrors get_remote_ip.
func PeerIP(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr).String()
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).String()
	}
	return ""
}

// String formats a socket address as "ip:port".
func String(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return "?"
}

// SetNonblocking puts fd into non-blocking mode. Mirrors make_socket_non_blocking.
func SetNonblocking(fd int) error {
	return os.NewSyscallError("fcntl", unix.SetNonblock(fd, true))
}
