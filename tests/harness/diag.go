package harness

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// AcceptQueue returns how many clients wait to be accepted on port, summed
// over the sockets listening on it (several with SO_REUSEPORT), and how
// many sockets listen on it, IPv4 and IPv6.
//
// It asks the kernel with sock_diag (the netlink interface ss uses) for
// listening sockets only: /proc/net/tcp lists every socket of the
// namespace, and with a few thousand connections open reading it takes a
// second, far too slow to poll while clients are being dialled.
func AcceptQueue(port int) (waiting, sockets int, err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
	if err != nil {
		return 0, 0, fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		w, n, err := listenQueues(fd, family, port)
		if err != nil {
			return 0, 0, err
		}
		waiting += w
		sockets += n
	}
	return waiting, sockets, nil
}

// Sizes of the sock_diag structures (linux/inet_diag.h).
const (
	nlmsgHdrLen      = 16 // struct nlmsghdr
	inetDiagReqLen   = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg
	tcpListenState   = 10 // TCP_LISTEN
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
)

// listenQueues dumps the listening TCP sockets of one address family and
// sums the accept queues of those on port.
func listenQueues(fd int, family uint8, port int) (waiting, sockets int, err error) {
	req := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1) // sequence number
	body := req[nlmsgHdrLen:]
	body[0] = family
	body[1] = unix.IPPROTO_TCP
	ne.PutUint32(body[4:], 1<<tcpListenState) // idiag_states: listening only
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, fmt.Errorf("sock_diag: %w", err)
	}
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, 0, fmt.Errorf("sock_diag: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, 0, fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case syscall.NLMSG_DONE:
				return waiting, sockets, nil
			case syscall.NLMSG_ERROR:
				return 0, 0, fmt.Errorf("sock_diag: the kernel refused the request")
			}
			if len(m.Data) < inetDiagMsgLen {
				continue
			}
			// idiag_sport is in network byte order; idiag_rqueue of a
			// listening socket is its accept queue's length.
			if int(binary.BigEndian.Uint16(m.Data[4:])) == port {
				waiting += int(ne.Uint32(m.Data[56:]))
				sockets++
			}
		}
	}
}
