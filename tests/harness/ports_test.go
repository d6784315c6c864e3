package harness

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestListeningSockets(t *testing.T) {
	for _, tc := range []struct{ bind, want string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"0.0.0.0:0", "0.0.0.0"},
	} {
		l, err := net.Listen("tcp4", tc.bind)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		sockets, err := ListeningSockets()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range sockets {
			if s.Port == port {
				got = append(got, s.Addr)
			}
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("listening on %s (port %d): sockets %q, want exactly [%q]", tc.bind, port, got, tc.want)
		}
		holder := PortHolder(port)
		if !strings.HasPrefix(holder, "pid "+strconv.Itoa(os.Getpid())+" ") {
			t.Errorf("PortHolder(%d) = %q, want this process, pid %d", port, holder, os.Getpid())
		}
		if err := PortFree(port); err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
			t.Errorf("PortFree(%d) = %v, want an error naming this process", port, err)
		}
	}
}

func TestTCPSocketsStates(t *testing.T) {
	l, c, err := LoopbackPair()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	defer c.Close()
	// The client's own socket, by inode: its port may also be in use by an
	// older socket in TIME-WAIT.
	var link string
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { link, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd))) })
	if err != nil {
		t.Fatal(err)
	}
	inode := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")
	sockets, err := TCPSockets()
	if err != nil {
		t.Fatal(err)
	}
	var got []TCPSocket
	for _, s := range sockets {
		if s.Inode == inode {
			got = append(got, s)
		}
	}
	want := TCPSocket{Port: c.LocalAddr().(*net.TCPAddr).Port, Addr: "127.0.0.1", State: "ESTABLISHED", Inode: inode}
	if len(got) != 1 || got[0] != want {
		t.Errorf("the client's socket: %+v, want [%+v]", got, want)
	}
}
