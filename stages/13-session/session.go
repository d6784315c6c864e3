package main

import (
	"fmt"
	"path/filepath"

	"expserver-go/common/buffer"
	"expserver-go/common/xlog"
)

// session orchestrates one client: it owns pipe ends facing the client, the
// upstream and the file, and relays bytes between them through two one-slot
// buffers, one for each direction. Mirrors xps_session_t.
//
//	client.source ──▶ clientSink   [fromClient] upstreamSource ──▶ upstream.sink
//	client.sink   ◀── clientSource [toClient]   upstreamSink   ◀── upstream.source
//	                                            fileSink       ◀── file.source
//
// A slot holds what one sink handler took from its pipe until a source
// handler has passed it on. While a slot is full, the sinks that fill it are
// not ready, so the session never holds more than one pipe's worth of bytes
// in each direction: the backpressure of the pipes reaches through it.
type session struct {
	core     *core
	client   *connection
	upstream *connection
	file     *file

	clientSource, upstreamSource       *pipeSource
	clientSink, upstreamSink, fileSink *pipeSink

	toClient, fromClient buffer.List // the one-slot buffers; full when non-empty

	upstreamConnected   bool // the upstream has consumed or produced bytes
	upstreamErrorResSet bool // the upstream failed before connecting; noted once
	upstreamWriteBytes  int  // bytes handed to the upstream's pipe so far
	closed              bool
	index               int // in core.sessions
}

// slot is where the session's index in core.sessions is kept.
func (s *session) slot() *int { return &s.index }

// newSession creates the session's ends, adds it to the core, pipes the
// client to it in both directions, and connects it to what the client's
// port serves: the upstream on the first port, sample.txt on the second,
// nothing on the others. If the upstream or the file cannot be created the
// session is destroyed and an error returned; the caller closes the client.
// Mirrors xps_session_create.
//
// The session comes from the core's free list if it can. Its ends are made
// with it, their callbacks bound to it once, and it keeps them: a reused
// session resets them and costs no allocation.
func newSession(c *core, client *connection) (*session, error) {
	s := c.freeSessions.get()
	if s == nil {
		s = &session{}
		s.clientSource = newPipeSource(s.sendToClient, s.check)
		s.upstreamSource = newPipeSource(s.sendToUpstream, s.onUpstreamClosed)
		s.clientSink = newPipeSink(s.takeFromClient, s.check)
		s.upstreamSink = newPipeSink(s.takeFromUpstream, s.onUpstreamClosed)
		s.fileSink = newPipeSink(s.takeFromFile, s.check)
	}
	*s = session{core: c, client: client,
		clientSource: s.clientSource, upstreamSource: s.upstreamSource,
		clientSink: s.clientSink, upstreamSink: s.upstreamSink, fileSink: s.fileSink}
	client.hold() // see connection.hold
	s.clientSource.reset()
	s.upstreamSource.reset()
	s.clientSink.reset()
	s.upstreamSink.reset()
	s.fileSink.reset()
	// The sinks are ready from the start: the slots they fill are empty.
	s.clientSink.ready, s.upstreamSink.ready, s.fileSink.ready = true, true, true
	c.sessions.add(s)

	if err := s.connect(client.listener.role); err != nil {
		s.close()
		return nil, fmt.Errorf("session: %w", err)
	}
	return s, nil
}

// connect makes the session's pipes for the client's port.
func (s *session) connect(role int) error {
	c := s.core
	if _, err := newPipe(c, pipeThreshold, s.client.source, s.clientSink); err != nil {
		return err
	}
	if _, err := newPipe(c, pipeThreshold, s.clientSource, s.client.sink); err != nil {
		return err
	}
	switch role {
	case 0:
		up, err := newUpstream(c, c.upstreamAddr)
		if err != nil {
			return err
		}
		s.upstream = up
		up.hold()
		if _, err := newPipe(c, pipeThreshold, s.upstreamSource, up.sink); err != nil {
			return err
		}
		if _, err := newPipe(c, pipeThreshold, up.source, s.upstreamSink); err != nil {
			return err
		}
	case 1:
		f, err := newFile(c, filepath.Join(c.publicRoot, "sample.txt"))
		if err != nil {
			return err
		}
		s.file = f
		if _, err := newPipe(c, pipeThreshold, f.source, s.fileSink); err != nil {
			return err
		}
	}
	return nil
}

// close destroys the session's ends, which detaches them from their pipes
// and so tells the client, upstream and file that the session is gone, and
// drops whatever the slots still hold. An upstream or file whose pipe was
// never made is closed here. The session goes on the core's free list.
// Mirrors xps_session_destroy.
func (s *session) close() {
	if s.closed {
		return
	}
	s.closed = true
	s.clientSource.close()
	s.upstreamSource.close()
	s.clientSink.close()
	s.upstreamSink.close()
	s.fileSink.close()
	if s.upstream != nil && s.upstream.source.pipe == nil && s.upstream.sink.pipe == nil {
		s.upstream.close(false)
	}
	if s.file != nil && s.file.source.pipe == nil {
		s.file.close()
	}
	s.toClient.Reset()
	s.fromClient.Reset()
	s.core.sessions.remove(s)
	// Done with its connections: they may go to the free list once closed.
	s.client.release()
	if s.upstream != nil {
		s.upstream.release()
	}
	s.core.freeSessions.put(s)
	xlog.Debugf("destroyed session")
}

// Slot rules: filling a slot makes the source that empties it ready and the
// sinks that fill it not ready; emptying it does the reverse.

func (s *session) setToClient(full bool) {
	s.clientSource.setReady(full)
	s.upstreamSink.setReady(!full)
	s.fileSink.setReady(!full)
}

func (s *session) setFromClient(full bool) {
	s.upstreamSource.setReady(full)
	s.clientSink.setReady(!full)
}

// takeFromClient is the client sink's handler: everything the client sent
// moves into fromClient.
func (s *session) takeFromClient() {
	s.clientSink.readAll(&s.fromClient)
	s.setFromClient(true)
}

// sendToUpstream is the upstream source's handler: fromClient moves into the
// upstream's pipe. Once more bytes have been handed over than the pipe still
// holds, the upstream has taken some, so it is connected.
func (s *session) sendToUpstream() {
	n := s.fromClient.Len()
	if err := s.upstreamSource.writeList(&s.fromClient); err != nil {
		xlog.Errorf("session: %v", err)
		return
	}
	s.upstreamWriteBytes += n
	if s.upstreamWriteBytes > s.upstreamSource.pipe.buf.Len() {
		s.upstreamConnected = true
	}
	s.setFromClient(false)
	s.check()
}

// takeFromUpstream is the upstream sink's handler: the upstream's reply
// moves into toClient.
func (s *session) takeFromUpstream() {
	s.upstreamConnected = true
	s.upstreamSink.readAll(&s.toClient)
	s.setToClient(true)
}

// takeFromFile is the file sink's handler: the next part of the file moves
// into toClient.
func (s *session) takeFromFile() {
	s.fileSink.readAll(&s.toClient)
	s.setToClient(true)
}

// sendToClient is the client source's handler: toClient moves into the
// client's pipe.
func (s *session) sendToClient() {
	if err := s.clientSource.writeList(&s.toClient); err != nil {
		xlog.Errorf("session: %v", err)
		return
	}
	s.setToClient(false)
	s.check()
}

// onUpstreamClosed is the close callback of the upstream-facing ends. An
// upstream that goes away before it ever connected has failed; the session
// notes it once (stage 16 answers it with a 502).
func (s *session) onUpstreamClosed() {
	if !s.upstreamConnected && !s.upstreamErrorResSet {
		s.upstreamErrorResSet = true
		xlog.Debugf("upstream failed before connecting")
	}
	s.check()
}

// check is the destroy check, run after every handler that can end a flow.
// A flow is alive while its outgoing end is active and its incoming end is
// still active or its slot still holds bytes:
//
//	client → upstream: upstreamSource active, and clientSink active or fromClient full
//	upstream → client: clientSource active, and upstreamSink active or toClient full
//	file → client:     clientSource active, and fileSink active or toClient full
//
// With no flow alive the session is destroyed. A flow toward one party that
// has ended while the other direction is still alive passes the end on: its
// outgoing end detaches, so that party sees the end of the stream (the
// connection shuts its write side) while the other direction keeps going —
// the session behaves as the plain relay of stage 11 did.
func (s *session) check() {
	if s.closed {
		return
	}
	toUpstream := s.upstreamSource.active && (s.clientSink.active || s.fromClient.Len() > 0)
	fromUpstream := s.clientSource.active && (s.upstreamSink.active || s.toClient.Len() > 0)
	fromFile := s.clientSource.active && (s.fileSink.active || s.toClient.Len() > 0)
	if !toUpstream && !fromUpstream && !fromFile {
		s.close()
		return
	}
	if !toUpstream && s.upstreamSource.pipe != nil {
		s.upstreamSource.close()
	}
	if !fromUpstream && !fromFile && s.clientSource.pipe != nil {
		s.clientSource.close()
	}
}
