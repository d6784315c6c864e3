package main

import (
	"errors"
	"math"
	"os"
	"slices"
	"time"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// handlers are the callbacks a registration runs: read when the fd is
// readable, write when it is writable, close on an error or hang-up. Each is
// a method value bound to its owner, so no owner pointer is needed. A nil
// handler is not called.
type handlers struct {
	read, write, close func()
}

// registration is what the loop knows about one watched fd.
type registration struct {
	fd  int
	gen uint32
	h   handlers
}

// loop is the event loop: one epoll instance and the registrations of every
// fd attached to it. Mirrors xps_loop_t.
//
// epoll hands back 64 bits of user data with each event. The loop stores the
// fd in the low half and a generation number in the high half. regs is
// indexed by fd, so finding an event's registration costs one slice index,
// and the generation tells a live registration from a stale event: if an
// earlier callback in the same batch closed an fd and an accept reused the
// number, the old event's generation no longer matches and it is skipped.
type loop struct {
	core     *core
	epollFD  int
	events   []unix.EpollEvent
	regs     []registration // indexed by fd, by value; gen 0 when the fd is not attached
	nextGen  uint32
	stopping bool
	// freed is set when the server closes a descriptor of its own, which a
	// starved listener may be waiting for (see retryStarved).
	freed bool
}

// newLoop opens the epoll instance. Mirrors xps_loop_create.
func newLoop(c *core) (*loop, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &loop{core: c, epollFD: fd, events: make([]unix.EpollEvent, maxEpollEvents)}, nil
}

// close forgets every registration and closes the epoll instance.
// Mirrors xps_loop_destroy.
func (l *loop) close() {
	clear(l.regs)
	unix.Close(l.epollFD)
}

// attach watches fd for the given events and runs h when they occur.
// Mirrors xps_loop_attach.
func (l *loop) attach(fd int, events uint32, h handlers) error {
	// Generation 0 marks a free slot; a counter that wraps skips it.
	if l.nextGen++; l.nextGen == 0 {
		l.nextGen++
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(l.nextGen)}
	if err := unix.EpollCtl(l.epollFD, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	for fd >= len(l.regs) {
		l.regs = append(l.regs, registration{})
	}
	l.regs[fd] = registration{fd: fd, gen: l.nextGen, h: h}
	return nil
}

// detach stops watching fd and invalidates its registration, so events for
// it still waiting in the current batch are skipped. Mirrors xps_loop_detach.
func (l *loop) detach(fd int) error {
	if fd < 0 || fd >= len(l.regs) || l.regs[fd].gen == 0 {
		return errors.New("loop: detach of an fd that is not attached")
	}
	l.regs[fd] = registration{}
	return os.NewSyscallError("epoll_ctl", unix.EpollCtl(l.epollFD, unix.EPOLL_CTL_DEL, fd, nil))
}

// forget drops fd's registration without telling epoll, for an fd that is
// about to be closed: closing it takes it out of epoll, so an EPOLL_CTL_DEL
// first would be a system call for nothing. Events for it still waiting in
// the current batch are skipped, as after detach.
func (l *loop) forget(fd int) {
	if fd >= 0 && fd < len(l.regs) {
		l.regs[fd] = registration{}
	}
	l.released()
}

// released notes that the server has closed a descriptor of its own, which
// a starved listener may be waiting for (see retryStarved).
func (l *loop) released() { l.freed = true }

// lookup returns the live registration an event belongs to, or nil if the
// event is stale.
func (l *loop) lookup(ev *unix.EpollEvent) *registration {
	fd := int(ev.Fd)
	if fd < 0 || fd >= len(l.regs) {
		return nil
	}
	r := &l.regs[fd]
	if r.gen == 0 || r.gen != uint32(ev.Pad) {
		return nil
	}
	return r
}

// stop makes run return after the current batch of events.
func (l *loop) stop() { l.stopping = true }

// run, until stop is called, first retries starved listeners, then runs the
// pipe pass, then the timers that are due, then waits for events — without
// blocking if a pipe still wants service, a timer has just fired or a retry
// is due, and otherwise no longer than until the next timer is due — and
// runs the callbacks of each: close, then read, then write.
// Before each callback the registration is looked up again, because the
// callback before it (for this event or an earlier one in the batch) may have
// destroyed its owner. Mirrors xps_loop_run.
//
// The clock is read once per iteration, right after the wait: every
// deadline armed in the iteration counts from the moment the events that
// caused it were known. The pipe pass runs before the timers, so bytes that
// arrived in time are taken, and reset their timers, before a timer that is
// due is asked whether they came too late.
func (l *loop) run() {
	// Nothing in the loop blocks but epoll_wait, so log lines can be held
	// and written in one go just before it: one write per batch of events
	// instead of several per connection.
	xlog.Buffer()
	defer xlog.Unbuffer()
	l.core.updateTime()
	for !l.stopping {
		l.core.recycle() // what the last iteration destroyed can be reused
		l.retryStarved()
		busy := l.handlePipes()
		if l.handleTimers() || l.retryPending() {
			busy = true
		}
		timeout := l.timerWait()
		if busy {
			timeout = 0
		}
		// Log lines of this batch go out now, before the wait can block.
		xlog.Flush()
		n, err := unix.EpollWait(l.epollFD, l.events, timeout)
		l.core.updateTime()
		if err != nil {
			// EINTR means a signal arrived while waiting; nothing is wrong.
			if !errors.Is(err, unix.EINTR) {
				xlog.Errorf("epoll_wait() failed: %v", err)
			}
			continue
		}
		for i := range l.events[:n] {
			l.dispatch(&l.events[i])
		}
	}
}

// retryStarved gives every starved listener another accept, once the
// server has closed a descriptor of its own since the last iteration. So
// the clients a listener could not take are taken as soon as there is room,
// without waiting for another client to arrive; and a listener still out of
// descriptors costs one failed accept per descriptor closed, never a spin.
func (l *loop) retryStarved() {
	if !l.freed {
		return
	}
	l.freed = false
	for _, ln := range l.core.listeners {
		if ln.starved {
			ln.accept()
		}
	}
}

// retryPending reports whether a descriptor was closed while a listener is
// starved, so the loop must not block before retryStarved has run.
func (l *loop) retryPending() bool {
	return l.freed && slices.ContainsFunc(l.core.listeners, func(ln *listener) bool { return ln.starved })
}

// handleTimers runs the callback of every timer whose deadline has passed,
// and reports whether it ran any: what a callback did (a 408 queued, a
// connection closed) may give the pipes work before the loop may block.
// A timer leaves the heap before its callback runs, so it fires once, and
// a callback may arm, stop or close any timer, its own included.
// Mirrors handle_timers.
func (l *loop) handleTimers() (fired bool) {
	h := &l.core.timers
	now := l.core.now
	for len(*h) > 0 && (*h)[0].key <= now {
		t := (*h)[0]
		switch {
		case t.deadline == 0: // stopped since it was pushed
			h.remove(0)
		case t.deadline > now: // pushed back since: now it takes its place
			t.key = t.deadline
			h.down(0)
		default:
			h.remove(0)
			t.deadline = 0
			t.cb()
			fired = true
		}
	}
	return fired
}

// timerWait is the epoll_wait timeout the timers allow: the time until the
// first key comes up, rounded up to a whole millisecond so the loop never
// wakes just before it, or -1 (wait for ever) with no timer in the heap.
// A key that comes up early — its deadline was pushed back — costs one
// wake, after which the timer sits at its real deadline.
func (l *loop) timerWait() int {
	h := l.core.timers
	if len(h) == 0 {
		return -1
	}
	d := max(h[0].key-l.core.now, 0)
	return int(min((d+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
}

// handlePipes is the pipe pass, run once at the top of every loop iteration.
// For each pipe that may have work, in the order it was put on the work
// list:
//
//  1. a pipe with neither end is destroyed — the only place a live pipe is freed;
//  2. a ready source of a writable pipe is asked to produce;
//  3. a ready sink of a readable pipe is asked to consume;
//  4. a source whose sink is gone is told nobody will read (once);
//  5. a sink whose source is gone is told the stream ended (once), but only
//     after the pipe has drained, so no byte is lost when a producer leaves.
//
// A pipe goes on the work list whenever something happens that could give
// it work: an end becomes ready, bytes are written or cleared, an end
// attaches or detaches (see wake). A pipe that still has work after its
// turn stays on the list. So the pass costs in proportion to the pipes that
// are doing something, not to every pipe of every idle connection: with ten
// thousand idle clients the loop does not crawl.
//
// It returns true if any pipe still wants service, in which case the loop
// polls instead of blocking. That can only be decided after the whole pass,
// because a handler of one pipe can make an earlier pipe ready.
// Mirrors handle_pipes.
func (l *loop) handlePipes() (busy bool) {
	c := l.core
	// Pipes woken during the pass, by handlers or by pipes created during
	// the pass, are served from the next pass.
	work := c.work
	c.work = c.spareWork[:0]
	for _, p := range work {
		p.queued = false
		if p.src == nil && p.snk == nil {
			p.close()
			continue
		}
		if p.src != nil && p.src.ready && p.writable() {
			p.src.handler()
		}
		if p.snk != nil && p.snk.ready && p.readable() {
			p.snk.handler()
		}
		if p.src != nil && p.snk == nil && p.src.active {
			p.src.active = false
			p.src.onClose()
		}
		if p.snk != nil && p.src == nil && !p.readable() && p.snk.active {
			p.snk.active = false
			p.snk.onClose()
		}
		if p.wantsService() {
			p.wake()
		}
	}
	clear(work)
	c.spareWork = work
	for _, p := range c.work {
		if p.wantsService() {
			return true
		}
	}
	return false
}

// dispatch runs the callbacks for one event.
func (l *loop) dispatch(ev *unix.EpollEvent) {
	if r := l.lookup(ev); r != nil && r.h.close != nil && ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		r.h.close()
	}
	if r := l.lookup(ev); r != nil && r.h.read != nil && ev.Events&unix.EPOLLIN != 0 {
		r.h.read()
	}
	if r := l.lookup(ev); r != nil && r.h.write != nil && ev.Events&unix.EPOLLOUT != 0 {
		r.h.write()
	}
}
