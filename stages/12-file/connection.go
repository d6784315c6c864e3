package main

import (
	"errors"
	"os"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// maxIovecs caps the buffers handed to one sendmsg call (the kernel's IOV_MAX).
const maxIovecs = 1024

// connection is one TCP connection, seen by the rest of the server as a pipe
// source (the bytes it receives) and a pipe sink (the bytes it must send).
// Mirrors xps_connection_t.
type connection struct {
	connEnds // kept from one client to the next (see newConnection)
	core     *core
	sock     int
	listener *listener
	remoteIP string
	closed   bool
	shutWr   bool // our side has sent its FIN
}

// connEnds is what a connection object keeps from one client to the next: its
// source and sink, and the callbacks the loop and its pipes call, all bound
// to the object once, when it was made, so that no client allocates them.
type connEnds struct {
	source   *pipeSource // received bytes flow out of here
	sink     *pipeSink   // bytes to send flow in here
	handlers handlers    // for the loop
}

// readBuf is the scratch space every receive uses. The server has one
// thread, so one buffer serves every connection; the pipe keeps a copy of
// exactly the bytes received.
var readBuf = make([]byte, bufferSize)

// iovecs is the scratch list of slices handed to sendmsg, reused for the
// same reason.
var iovecs [][]byte

// newConnection takes a connection object from the core's free list, or makes
// one with its source and sink (bind), attaches sock to the loop for
// edge-triggered read and write events and adds the connection to the core.
// Mirrors xps_connection_create.
func newConnection(core *core, sock int, remoteIP string) (*connection, error) {
	c := core.freeConnections.get()
	if c == nil {
		c = &connection{}
		c.bind()
	}
	*c = connection{connEnds: c.connEnds, core: core, sock: sock, remoteIP: remoteIP}
	c.source.reset()
	c.sink.reset()
	if err := core.loop.attach(sock, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLET, c.handlers); err != nil {
		core.freeConnections.put(c)
		return nil, err
	}
	core.connections[c] = struct{}{}
	if xlog.DebugEnabled() {
		xlog.Debugf("created connection from %s", remoteIP)
	}
	return c, nil
}

// bind makes a new connection object's ends and binds the callbacks it
// hands out to the object, once: every client the object serves uses them.
func (c *connection) bind() {
	c.source = newPipeSource(c.receive, c.onSourceClosed)
	c.sink = newPipeSink(c.send, c.onPipeClosed)
	c.handlers = handlers{read: c.onReadable, write: c.onWritable, close: c.onHangup}
}

// close logs why, makes the loop forget the connection, closes the socket,
// destroys the source and sink (detaching them from their pipes, which tells
// the modules at the other ends) and removes the connection from the core.
// Mirrors xps_connection_destroy.
func (c *connection) close(peerClosed bool) {
	if c.closed {
		return
	}
	c.closed = true
	if peerClosed {
		xlog.Infof("peer closed connection")
	} else {
		xlog.Infof("closing connection")
	}
	c.core.loop.forget(c.sock)
	unix.Close(c.sock)
	if c.listener != nil {
		c.core.clients-- // room for a client waiting to be accepted
	}
	c.source.close()
	c.sink.close()
	delete(c.core.connections, c)
	if xlog.DebugEnabled() {
		xlog.Debugf("destroyed connection from %s", c.remoteIP)
	}
	c.core.freeConnections.put(c)
}

// onReadable is the loop's read callback: the socket has something to receive.
func (c *connection) onReadable() { c.source.setReady(true) }

// onWritable is the loop's write callback: the socket has room to send.
func (c *connection) onWritable() { c.sink.setReady(true) }

// onHangup is the loop's close callback: the peer hung up or the socket
// failed. Bytes the peer sent before hanging up may still wait in the socket
// — an upstream that dies right after writing its last bytes resets the
// connection — so while the source is reading, it is marked ready instead:
// the next receive delivers those bytes and then meets the end of the
// stream, or the error (a refused connect shows up there as ECONNREFUSED).
// A connection with nothing to read closes at once.
func (c *connection) onHangup() {
	if c.source.pipe != nil && c.source.active {
		c.source.setReady(true)
		c.sink.setReady(true) // a send now fails at once if the peer is gone
		return
	}
	c.close(true)
}

// receive is the source's handler. The pipe pass calls it only while the
// pipe is writable, so it receives at most the room left below the pipe's
// threshold: that is the backpressure. Only EAGAIN clears readiness.
func (c *connection) receive() {
	n, err := unix.Read(c.sock, readBuf[:min(bufferSize, c.source.pipe.room())])
	if err != nil {
		if errors.Is(err, unix.EAGAIN) {
			c.source.setReady(false)
			return
		}
		if errors.Is(err, unix.EINTR) {
			return
		}
		xlog.Errorf("recv() failed: %v", err)
		c.close(false)
		return
	}
	if n == 0 {
		c.endOfInput()
		return
	}
	if err := c.source.write(readBuf[:n]); err != nil {
		xlog.Errorf("%v", err)
		c.close(false)
	}
}

// send is the sink's handler: it sends everything buffered in the pipe.
// Bytes in memory go in one sendmsg call over the pipe's buffers, without a
// copy; a file region goes with sendfile, straight from the file to the
// socket. When bytes come right before a region, they are sent with
// MSG_MORE, so a response head and a small file leave in one segment. It
// keeps sending while the socket takes everything; a partial send keeps the
// sink ready, so the next pass sends the rest, and only EAGAIN clears
// readiness.
func (c *connection) send() {
	for c.sink.pipe != nil && c.sink.pipe.readable() {
		var n, want int
		var err error
		if fd, off, ok := c.sink.pipe.buf.Head().FileRegion(); ok {
			want = c.sink.pipe.buf.Head().Len()
			n, err = unix.Sendfile(c.sock, fd, &off, want)
			if n == 0 && err == nil {
				// The file ends before the region does: it was truncated
				// after it was opened. The reply can never be finished,
				// and trying again would spin, so the connection ends.
				xlog.Errorf("sendfile: file shrank while it was being sent")
				c.close(false)
				return
			}
		} else {
			iovecs = c.sink.peek(iovecs[:0], maxIovecs)
			flags := unix.MSG_NOSIGNAL
			for _, p := range iovecs {
				want += len(p)
			}
			if want < c.sink.pipe.buf.Len() {
				flags |= unix.MSG_MORE
			}
			n, err = unix.SendmsgBuffers(c.sock, iovecs, nil, nil, flags)
			clear(iovecs) // drop references to pipe buffers until the next send
		}
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				c.sink.setReady(false)
				return
			}
			if errors.Is(err, unix.EINTR) {
				return
			}
			xlog.Errorf("%v", os.NewSyscallError("send", err))
			c.close(false)
			return
		}
		c.sink.clear(n)
		if n < want {
			return
		}
	}
}

// endOfInput handles the peer's FIN: it will send nothing more, but it may
// still read. The source stops and detaches, which tells the module at the
// pipe's other end, once the pipe drains, that this stream is over; the sink
// keeps sending whatever is still on its way to the peer. Closing at once
// instead would cut off a reply that is still in flight.
func (c *connection) endOfInput() {
	if xlog.DebugEnabled() {
		xlog.Debugf("peer %s finished sending", c.remoteIP)
	}
	c.source.setReady(false)
	c.source.active = false
	c.source.close()
	c.onPipeClosed()
}

// onSourceClosed is the source's close callback: nobody reads what the peer
// sends any more. The connection stops receiving — its source detaches, so
// no read is spent on input nobody wants — and ends once its output is done
// too.
func (c *connection) onSourceClosed() {
	c.source.close()
	c.onPipeClosed()
}

// onPipeClosed is the close callback of the sink, and runs after endOfInput
// and onSourceClosed. The connection ends when both directions are
// finished: nothing more will be sent to the peer, and nobody reads what
// the peer sends — its source is done, or the pipe it feeds has lost its
// reader, which the pipe pass would report on its next round anyway. When
// only the outgoing direction is finished, the socket's write side is shut
// down, so the peer sees the end of the stream while it may still be
// sending: that is how a relay passes an upstream's close on to its client.
func (c *connection) onPipeClosed() {
	inputRead := c.source.active && c.source.pipe != nil && c.source.pipe.snk != nil
	switch {
	case !inputRead && !c.sink.active:
		c.close(false)
	case !c.sink.active && !c.shutWr:
		c.shutWr = true
		if err := unix.Shutdown(c.sock, unix.SHUT_WR); err != nil {
			if xlog.DebugEnabled() {
				xlog.Debugf("shutdown: %v", err)
			}
		}
	}
}
