package main

import (
	"errors"
	"os"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// registration is what the loop knows about one watched fd: the callback to
// run when it is readable. Stage 8 adds write and close callbacks.
type registration struct {
	fd   int
	gen  uint32
	read func()
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

// attach watches fd for the given events and calls read when it is readable.
// Mirrors xps_loop_attach.
func (l *loop) attach(fd int, events uint32, read func()) error {
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
	l.regs[fd] = registration{fd: fd, gen: l.nextGen, read: read}
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
}

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

// run waits for events and runs the callback of each until stop is called.
// Mirrors xps_loop_run.
func (l *loop) run() {
	for !l.stopping {
		n, err := unix.EpollWait(l.epollFD, l.events, -1)
		if err != nil {
			// EINTR means a signal arrived while waiting; nothing is wrong.
			if !errors.Is(err, unix.EINTR) {
				xlog.Errorf("epoll_wait() failed: %v", err)
			}
			continue
		}
		for i := range l.events[:n] {
			ev := &l.events[i]
			r := l.lookup(ev)
			if r == nil {
				continue
			}
			// An error or hang-up is reported without being asked for. The
			// read callback handles it: its recv returns the error or 0.
			if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				r.read()
			}
		}
	}
}
