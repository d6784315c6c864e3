package main

import (
	"errors"
	"os"
	"slices"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// connection is one connected TCP client. Mirrors xps_connection_t.
type connection struct {
	epollFD  int
	sock     int
	listener *listener
	remoteIP string
}

// readBuf is the scratch space every receive uses. The server has one
// thread, so one buffer serves every connection.
var readBuf = make([]byte, bufferSize)

// newConnection registers sock with epoll for read events and adds the
// connection to the list. Mirrors xps_connection_create.
func newConnection(epollFD, sock int, remoteIP string) (*connection, error) {
	if err := loopAttach(epollFD, sock, unix.EPOLLIN); err != nil {
		return nil, err
	}
	c := &connection{epollFD: epollFD, sock: sock, remoteIP: remoteIP}
	connections = append(connections, c)
	if xlog.DebugEnabled() {
		xlog.Debugf("created connection from %s", remoteIP)
	}
	return c, nil
}

// close removes the connection from the list, detaches it from epoll and
// closes the socket. Mirrors xps_connection_destroy.
func (c *connection) close() {
	connections = slices.DeleteFunc(connections, func(x *connection) bool { return x == c })
	if err := loopDetach(c.epollFD, c.sock); err != nil {
		xlog.Errorf("%v", err)
	}
	unix.Close(c.sock)
	if xlog.DebugEnabled() {
		xlog.Debugf("destroyed connection from %s", c.remoteIP)
	}
}

// read receives one chunk, reverses it and sends all of it back. Mirrors
// xps_connection_read_handler.
func (c *connection) read() {
	n, err := unix.Read(c.sock, readBuf)
	if err != nil {
		// A reset from the peer lands here; only this connection ends.
		xlog.Errorf("recv() failed: %v", err)
		c.close()
		return
	}
	if n == 0 {
		xlog.Infof("peer closed connection")
		c.close()
		return
	}
	reply := readBuf[:n]
	reverseChunk(reply)

	// The socket blocks, so each send waits for room in the kernel's send
	// buffer. A client that never reads stalls the whole server here: the
	// weakness the next stages remove.
	for len(reply) > 0 {
		sent, err := unix.SendmsgN(c.sock, reply, nil, nil, unix.MSG_NOSIGNAL)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			xlog.Errorf("%v", os.NewSyscallError("send", err))
			c.close()
			return
		}
		reply = reply[sent:]
	}
}

// reverseChunk reverses b in place, except that a final newline stays last:
// "hello\n" becomes "olleh\n". Each chunk is reversed on its own; no lines
// are reassembled across chunks.
func reverseChunk(b []byte) {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	slices.Reverse(b)
}
