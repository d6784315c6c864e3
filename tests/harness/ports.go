package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// PortFree reports whether a TCP port can be bound on every interface; if
// not, the error names the process holding it when /proc shows one.
func PortFree(port int) error {
	l, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(port))
	if err == nil {
		l.Close()
		return nil
	}
	if holder := PortHolder(port); holder != "" {
		return fmt.Errorf("port %d is in use by %s", port, holder)
	}
	return fmt.Errorf("port %d is in use: %v", port, err)
}

// TCPSocket is a TCP socket as /proc/net/tcp and /proc/net/tcp6 show it.
type TCPSocket struct {
	Port  int    // the local port
	Addr  string // the local address: "0.0.0.0", "::", "127.0.0.1" or "other"
	State string // "LISTEN", "ESTABLISHED", "CLOSE-WAIT", …
	Inode string // the socket's inode: /proc/PID/fd links it as "socket:[Inode]"
}

// tcpStates names the states of /proc/net/tcp, which it writes in hex.
var tcpStates = map[string]string{
	"01": "ESTABLISHED", "02": "SYN-SENT", "03": "SYN-RECV", "04": "FIN-WAIT-1", "05": "FIN-WAIT-2",
	"06": "TIME-WAIT", "07": "CLOSE", "08": "CLOSE-WAIT", "09": "LAST-ACK", "0A": "LISTEN", "0B": "CLOSING",
}

// TCPSockets returns every TCP socket of this network namespace. A file
// the kernel does not have (no IPv6) is skipped.
func TCPSockets() ([]TCPSocket, error) {
	var out []TCPSocket
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			hexAddr, hexPort, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil {
				continue
			}
			s := TCPSocket{Port: int(port), Addr: "other", State: tcpStates[f[3]], Inode: f[9]}
			// The address is in hex, in the kernel's byte order.
			switch strings.Trim(hexAddr, "0") {
			case "":
				s.Addr = map[bool]string{true: "0.0.0.0", false: "::"}[len(hexAddr) == 8]
			case "100007F":
				s.Addr = "127.0.0.1"
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// ListeningSockets returns the TCP sockets in LISTEN state.
func ListeningSockets() ([]TCPSocket, error) {
	all, err := TCPSockets()
	return slices.DeleteFunc(all, func(s TCPSocket) bool { return s.State != "LISTEN" }), err
}

// PortHolder returns "pid N (command line)" for the process with a socket
// listening on port, or "" if none can be found.
func PortHolder(port int) string {
	sockets, _ := ListeningSockets()
	inodes := map[string]bool{}
	for _, s := range sockets {
		if s.Port == port {
			inodes["socket:["+s.Inode+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		fds, _ := os.ReadDir(proc + "/fd")
		for _, fd := range fds {
			if target, err := os.Readlink(proc + "/fd/" + fd.Name()); err == nil && inodes[target] {
				cmd, _ := os.ReadFile(proc + "/cmdline")
				return fmt.Sprintf("pid %s (%s)", filepath.Base(proc), strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
			}
		}
	}
	return ""
}
