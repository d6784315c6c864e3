package main

import (
	"errors"
	"os"
	"slices"

	"expserver-go/common/buffer"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// maxIovecs caps the buffers handed to one sendmsg call (the kernel's IOV_MAX).
const maxIovecs = 1024

// connection is one connected TCP client. Mirrors xps_connection_t.
type connection struct {
	core     *core
	sock     int
	listener *listener
	remoteIP string
	pending  *buffer.List // replies waiting to be sent

	// Readiness as epoll last reported it. Edge-triggered epoll says "ready"
	// once; only EAGAIN from the socket says "not ready any more".
	readReady, writeReady bool
	closed                bool
}

// readBuf is the scratch space every receive uses. The server has one
// thread, so one buffer serves every connection.
var readBuf = make([]byte, bufferSize)

// newConnection attaches sock to the loop for edge-triggered read and write
// events and adds the connection to the core. Mirrors xps_connection_create.
func newConnection(core *core, sock int, remoteIP string) (*connection, error) {
	c := &connection{core: core, sock: sock, remoteIP: remoteIP, pending: buffer.NewList()}
	h := handlers{read: c.onReadable, write: c.onWritable, close: c.close}
	if err := core.loop.attach(sock, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLET, h); err != nil {
		return nil, err
	}
	core.connections[c] = struct{}{}
	if xlog.DebugEnabled() {
		xlog.Debugf("created connection from %s", remoteIP)
	}
	return c, nil
}

// close removes the connection from the core, makes the loop forget it,
// closes the socket and drops any reply not yet sent.
// Mirrors xps_connection_destroy.
func (c *connection) close() {
	if c.closed {
		return
	}
	c.closed = true
	delete(c.core.connections, c)
	c.core.loop.forget(c.sock)
	unix.Close(c.sock)
	c.pending.Reset()
	if xlog.DebugEnabled() {
		xlog.Debugf("destroyed connection from %s", c.remoteIP)
	}
}

// onReadable records that the socket has data (or an EOF) to receive.
func (c *connection) onReadable() { c.readReady = true }

// onWritable records that the socket has room to send.
func (c *connection) onWritable() { c.writeReady = true }

// receive receives one chunk and queues its reversal. Only EAGAIN clears
// readReady: a short read does not mean the socket is empty. Receiving once
// per loop iteration, not until EAGAIN, keeps a fast sender from starving the
// other connections. Mirrors connection_read_handler.
func (c *connection) receive() {
	n, err := unix.Read(c.sock, readBuf)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) {
			c.readReady = false
			return
		}
		if errors.Is(err, unix.EINTR) {
			return
		}
		xlog.Errorf("recv() failed: %v", err)
		c.close()
		return
	}
	if n == 0 {
		xlog.Infof("peer closed connection")
		c.close()
		return
	}
	reverseChunk(readBuf[:n])
	// Nothing limits this queue: a client that sends without reading makes
	// it grow for as long as it sends. Stage 10's pipes bound it.
	c.pending.Write(readBuf[:n])
}

// send sends as much of the queued replies as the socket takes, in one
// sendmsg call over all queued buffers, and drops what was sent. Only EAGAIN
// clears writeReady: after a partial send the socket may take more, and the
// next write edge comes only once it has been full.
// Mirrors connection_write_handler.
func (c *connection) send() {
	n, err := unix.SendmsgBuffers(c.sock, c.pending.Slices(nil, maxIovecs), nil, nil, unix.MSG_NOSIGNAL)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) {
			c.writeReady = false
			return
		}
		if errors.Is(err, unix.EINTR) {
			return
		}
		xlog.Errorf("%v", os.NewSyscallError("send", err))
		c.close()
		return
	}
	c.pending.Clear(n)
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
