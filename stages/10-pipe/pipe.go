package main

import (
	"errors"

	"expserver-go/common/buffer"
)

// pipeThreshold is the capacity of every pipe: a source is not asked for
// more data while this many bytes wait in its pipe.
const pipeThreshold = 1000000

// Errors from pipe operations. They mean a module used a pipe wrongly and are
// logged; none of them reaches a client.
var (
	errEndTaken    = errors.New("pipe: that end is already attached")
	errNotAttached = errors.New("pipe: end is not attached")
	errPipeFull    = errors.New("pipe: not writable")
)

// pipe is a bounded one-way byte channel from a source (the writer end) to a
// sink (the reader end). Mirrors xps_pipe_t.
//
// Modules never destroy pipes: they detach their ends, and the loop's pipe
// pass frees a pipe once it has neither end.
type pipe struct {
	core   *core
	src    *pipeSource
	snk    *pipeSink
	buf    buffer.List
	thresh int
	queued bool // on the core's work list
	index  int  // in core.pipes
}

// slot is where the pipe's index in core.pipes is kept.
func (p *pipe) slot() *int { return &p.index }

// pipeEnd is what a source and a sink have in common: the pipe they are
// attached to (nil when detached), whether the loop should call their handler
// (ready), whether they still expect a close notification (active), and the
// owner's callbacks.
type pipeEnd struct {
	pipe    *pipe
	ready   bool
	active  bool
	handler func() // called by the pipe pass when there is work (handler_cb)
	onClose func() // called once when the other end is gone for good (close_cb)
}

// setReady sets whether the end has work for its handler. Becoming ready
// wakes its pipe.
func (e *pipeEnd) setReady(ready bool) {
	e.ready = ready
	if ready && e.pipe != nil {
		e.pipe.wake()
	}
}

// pipeSource is the writer end of a pipe. Mirrors xps_pipe_source_t.
type pipeSource struct{ pipeEnd }

// pipeSink is the reader end of a pipe. Mirrors xps_pipe_sink_t.
type pipeSink struct{ pipeEnd }

// newPipe takes a pipe from the core's free list, or makes one, between src
// and snk, adds it to the core and marks both ends active.
// Mirrors xps_pipe_create.
func newPipe(c *core, thresh int, src *pipeSource, snk *pipeSink) (*pipe, error) {
	p := c.freePipes.get()
	if p == nil {
		p = &pipe{}
	}
	*p = pipe{core: c, thresh: thresh}
	if err := src.attach(p); err != nil {
		return nil, err
	}
	if err := snk.attach(p); err != nil {
		src.detach()
		return nil, err
	}
	src.active, snk.active = true, true
	c.pipes.add(p)
	p.wake()
	return p, nil
}

// close drops the pipe's bytes, removes it from the core and puts it on the
// core's free list. Only the pipe pass and the core's shutdown call it, once
// the pipe has no ends, so nothing points to it any more.
// Mirrors xps_pipe_destroy.
func (p *pipe) close() {
	p.buf.Reset()
	if p.core.pipes.remove(p) {
		p.core.freePipes.put(p)
	}
}

// wake puts the pipe on the work list of the next pipe pass. Everything
// that can give a pipe work calls it: an end becoming ready, bytes written
// or cleared, an end attaching or detaching.
func (p *pipe) wake() {
	if !p.queued {
		p.queued = true
		p.core.work = append(p.core.work, p)
	}
}

// readable reports whether the pipe holds bytes for its sink.
func (p *pipe) readable() bool { return p.buf.Len() > 0 }

// writable reports whether the pipe takes more bytes from its source. A
// single write may take the pipe past its threshold; sources limit
// themselves to the room left.
func (p *pipe) writable() bool { return p.buf.Len() < p.thresh }

// room is how many more bytes fit below the threshold.
func (p *pipe) room() int { return max(p.thresh-p.buf.Len(), 0) }

// wantsService reports whether the pipe pass has something to do with this
// pipe — call a handler, or destroy a pipe left with neither end, so that
// what it holds is freed now rather than whenever the next event comes —
// which means the loop must not block in epoll_wait.
func (p *pipe) wantsService() bool {
	return p.src == nil && p.snk == nil ||
		p.src != nil && p.src.ready && p.writable() ||
		p.snk != nil && p.snk.ready && p.readable() ||
		p.src != nil && p.snk == nil && p.src.active ||
		p.snk != nil && p.src == nil && !p.readable() && p.snk.active
}

// newPipeSource returns a detached, inactive, not-ready source whose owner
// produces data in handler and learns in onClose that nobody will read any
// more. Mirrors xps_pipe_source_create.
func newPipeSource(handler, onClose func()) *pipeSource {
	return &pipeSource{pipeEnd{handler: handler, onClose: onClose}}
}

// newPipeSink returns a detached, inactive, not-ready sink whose owner
// consumes data in handler and learns in onClose that the stream has ended
// and been drained. Mirrors xps_pipe_sink_create.
func newPipeSink(handler, onClose func()) *pipeSink {
	return &pipeSink{pipeEnd{handler: handler, onClose: onClose}}
}

// reset makes a destroyed end as new, keeping only its owner's callbacks,
// for an owner that reuses its ends with itself (see freeList).
func (e *pipeEnd) reset() { *e = pipeEnd{handler: e.handler, onClose: e.onClose} }

func (s *pipeSource) attach(p *pipe) error {
	if p.src != nil {
		return errEndTaken
	}
	p.src, s.pipe = s, p
	p.wake()
	return nil
}

// detach unhooks the source from its pipe. The pipe's sink is told, once the
// pipe has drained, that no more data will come.
func (s *pipeSource) detach() error {
	if s.pipe == nil {
		return errNotAttached
	}
	s.pipe.wake()
	s.pipe.src, s.pipe = nil, nil
	return nil
}

// close detaches the source if it is attached. Mirrors xps_pipe_source_destroy.
func (s *pipeSource) close() {
	if s.pipe != nil {
		s.detach()
	}
}

// write appends a copy of b to the pipe. It fails unless the source is
// attached and the pipe is writable. Mirrors xps_pipe_source_write.
func (s *pipeSource) write(b []byte) error {
	if s.pipe == nil {
		return errNotAttached
	}
	if !s.pipe.writable() {
		return errPipeFull
	}
	s.pipe.buf.Write(b)
	s.pipe.wake()
	return nil
}

func (s *pipeSink) attach(p *pipe) error {
	if p.snk != nil {
		return errEndTaken
	}
	p.snk, s.pipe = s, p
	p.wake()
	return nil
}

// detach unhooks the sink from its pipe. The pipe's source is told that
// nobody will read any more.
func (s *pipeSink) detach() error {
	if s.pipe == nil {
		return errNotAttached
	}
	s.pipe.wake()
	s.pipe.snk, s.pipe = nil, nil
	return nil
}

// close detaches the sink if it is attached. Mirrors xps_pipe_sink_destroy.
func (s *pipeSink) close() {
	if s.pipe != nil {
		s.detach()
	}
}

// read returns a copy of the first n buffered bytes without consuming them.
// Mirrors xps_pipe_sink_read.
func (s *pipeSink) read(n int) (*buffer.Buffer, error) {
	if s.pipe == nil {
		return nil, errNotAttached
	}
	return s.pipe.buf.Read(n)
}

// peek returns the buffered bytes as a list of slices, without copying them,
// for a sender that hands them all to one sendmsg call. The slices are valid
// until the pipe is next written or cleared.
func (s *pipeSink) peek(dst [][]byte, max int) [][]byte {
	if s.pipe == nil {
		return dst
	}
	return s.pipe.buf.Slices(dst, max)
}

// clear drops the first n buffered bytes, after the sink has used them.
// Mirrors xps_pipe_sink_clear.
func (s *pipeSink) clear(n int) error {
	if s.pipe == nil {
		return errNotAttached
	}
	s.pipe.wake()
	return s.pipe.buf.Clear(n)
}
