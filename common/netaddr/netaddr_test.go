package netaddr

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheckPort(t *testing.T) {
	for _, p := range []int{0, 1, 8001, 65535} {
		if err := CheckPort(p); err != nil {
			t.Errorf("CheckPort(%d) = %v, want nil", p, err)
		}
	}
	for _, p := range []int{-1, 65536, 100000} {
		if err := CheckPort(p); err == nil {
			t.Errorf("CheckPort(%d) = nil, want an error", p)
		}
	}
}

func TestResolveIPv4(t *testing.T) {
	cases := []struct {
		host string
		want [4]byte
	}{
		{"0.0.0.0", [4]byte{0, 0, 0, 0}},
		{"127.0.0.1", [4]byte{127, 0, 0, 1}},
		{"localhost", [4]byte{127, 0, 0, 1}},
	}
	for _, tc := range cases {
		sa, err := ResolveIPv4(tc.host, 8001)
		if err != nil {
			t.Fatalf("ResolveIPv4(%q): %v", tc.host, err)
		}
		if sa.Addr != tc.want || sa.Port != 8001 {
			t.Errorf("ResolveIPv4(%q) = %v:%d, want %v:8001", tc.host, sa.Addr, sa.Port, tc.want)
		}
	}
	if _, err := ResolveIPv4("::1", 80); err == nil {
		t.Error("ResolveIPv4 accepted an IPv6 literal")
	}
	if _, err := ResolveIPv4("127.0.0.1", 70000); err == nil {
		t.Error("ResolveIPv4 accepted port 70000")
	}
}

func TestSplitHostPort(t *testing.T) {
	host, port, err := SplitHostPort("localhost:3000")
	if err != nil || host != "localhost" || port != 3000 {
		t.Fatalf("SplitHostPort = %q, %d, %v", host, port, err)
	}
	for _, bad := range []string{"localhost", ":3000", "h:x", "h:99999", ""} {
		if _, _, err := SplitHostPort(bad); err == nil {
			t.Errorf("SplitHostPort(%q) accepted a bad address", bad)
		}
	}
}

func TestPeerIPAndString(t *testing.T) {
	sa := &unix.SockaddrInet4{Addr: [4]byte{10, 1, 2, 3}, Port: 4242}
	if got := PeerIP(sa); got != "10.1.2.3" {
		t.Errorf("PeerIP = %q", got)
	}
	if got := String(sa); got != "10.1.2.3:4242" {
		t.Errorf("String = %q", got)
	}
	if got := PeerIP(&unix.SockaddrUnix{Name: "/x"}); got != "" {
		t.Errorf("PeerIP(unix) = %q, want empty", got)
	}
}

func TestSetNonblocking(t *testing.T) {
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := SetNonblocking(fds[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Read(fds[0], make([]byte, 1)); err != unix.EAGAIN {
		t.Fatalf("read on an empty non-blocking pipe: %v, want EAGAIN", err)
	}
}

func TestAccept(t *testing.T) {
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, ip, err := Accept(int(f.Fd()), unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if ip != "127.0.0.1" {
		t.Fatalf("peer IP %q, want 127.0.0.1", ip)
	}
}
