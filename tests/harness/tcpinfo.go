package harness

import (
	"fmt"
	"net"
	"strings"

	"golang.org/x/sys/unix"
)

// Retransmits returns how many segments the kernel has retransmitted on c,
// its SYN included (TCP_INFO's total_retrans). Over loopback nothing is
// lost in transit, so a retransmission means the peer's kernel dropped a
// segment: typically a handshake or a request dropped because the server's
// accept queue was full.
func Retransmits(c *net.TCPConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, fmt.Errorf("harness: TCP_INFO: %w", ierr)
	}
	return int(info.Total_retrans), nil
}

// ProcessTCPStates returns the states of the TCP sockets the process holds
// open, from /proc/PID/fd and /proc/net/tcp: how many in each state, such
// as "ESTABLISHED" or "CLOSE-WAIT".
func ProcessTCPStates(pid int) (map[string]int, error) {
	targets, err := FDTargets(pid)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, t := range targets {
		if inode, ok := strings.CutPrefix(t, "socket:["); ok {
			held[strings.TrimSuffix(inode, "]")] = true
		}
	}
	sockets, err := TCPSockets()
	if err != nil {
		return nil, err
	}
	states := map[string]int{}
	for _, s := range sockets {
		if held[s.Inode] {
			states[s.State]++
		}
	}
	return states, nil
}
