package main

import "time"

// timer is a deadline kept by the core: once the core's clock passes it, the
// loop runs cb, once. Every connection owns two timers for its whole life
// and arms, pushes back and stops them as it goes, so keeping time costs no
// allocation per request, let alone per byte. Mirrors xps_timer_s.
//
// The core keeps its armed timers in a binary min-heap ordered by key. An
// armed timer's key is never after its deadline, and usually equal to it.
// Pushing a deadline later — the common case: another byte arrived, so the
// inactivity timeout starts again — only writes the new deadline, in O(1);
// the heap learns of it when the old key comes up (see handleTimers), which
// happens at most once per timeout. Stopping is lazy in the same way.
// Arming a timer that is not in the heap, or bringing a deadline forward,
// costs O(log n); removing a timer for good (close) too.
type timer struct {
	core *core
	// deadline is when the timer is due, on the core's clock (see
	// core.updateTime); zero while it is not armed. The clock starts at
	// zero and every duration is positive, so no armed deadline is zero.
	// Mirrors expiry_time_msec.
	deadline time.Duration
	key      time.Duration // where the timer sits in the heap
	index    int           // its position in core.timers; -1 when not there
	cb       func()        // what expiry does. Mirrors `cb`.
}

// newTimer returns a timer that runs cb when it expires, not yet armed: an
// owner keeps its timer from birth to death and arms it with update when
// there is something to wait for. Mirrors xps_timer_create.
func newTimer(c *core, cb func()) timer {
	return timer{core: c, index: -1, cb: cb}
}

// update arms the timer to expire d from now, whether or not it was armed.
// Mirrors xps_timer_update.
func (t *timer) update(d time.Duration) {
	t.deadline = t.core.now + d
	switch {
	case t.index < 0:
		t.key = t.deadline
		t.core.timers.push(t)
	case t.deadline < t.key:
		t.key = t.deadline
		t.core.timers.up(t.index)
	}
	// Otherwise the deadline moved later: the heap is fixed lazily.
}

// stop disarms the timer. It stays in the heap until its key comes up, so
// that stopping it and arming it again, as a connection that sends in
// bursts does, costs nothing.
func (t *timer) stop() { t.deadline = 0 }

// armed reports whether the timer will expire.
func (t *timer) armed() bool { return t.deadline != 0 }

// close disarms the timer and takes it out of the heap, for an owner that
// is going away: the heap must not keep it, or what it belongs to, alive.
// Mirrors xps_timer_destroy.
func (t *timer) close() {
	t.deadline = 0
	if t.index >= 0 {
		t.core.timers.remove(t.index)
	}
}

// timerHeap is a binary min-heap of timers by key, each timer knowing its
// index. It is written out rather than built on container/heap, whose
// interface would cost a dynamic call per comparison.
type timerHeap []*timer

func (h *timerHeap) push(t *timer) {
	t.index = len(*h)
	*h = append(*h, t)
	h.up(t.index)
}

// remove takes out the timer at index i.
func (h *timerHeap) remove(i int) {
	s := *h
	last := len(s) - 1
	t := s[i]
	if i != last {
		s[i] = s[last]
		s[i].index = i
	}
	s[last] = nil
	*h = s[:last]
	t.index = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

// up moves the timer at index i towards the root while its key is smaller
// than its parent's.
func (h timerHeap) up(i int) {
	t := h[i]
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key <= t.key {
			break
		}
		h[i] = h[p]
		h[i].index = i
		i = p
	}
	h[i] = t
	t.index = i
}

// down moves the timer at index i towards the leaves while a child's key
// is smaller than its own.
func (h timerHeap) down(i int) {
	t := h[i]
	for {
		c := 2*i + 1
		if c >= len(h) {
			break
		}
		if r := c + 1; r < len(h) && h[r].key < h[c].key {
			c = r
		}
		if t.key <= h[c].key {
			break
		}
		h[i] = h[c]
		h[i].index = i
		i = c
	}
	h[i] = t
	t.index = i
}
