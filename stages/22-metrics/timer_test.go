package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// timerRig is a core with nothing but a clock and timers, each of which
// records its name when it fires.
type timerRig struct {
	c     *core
	fired []string
}

func newTimerRig() *timerRig { return &timerRig{c: testCore()} }

func (r *timerRig) timer(name string) *timer {
	t := newTimer(r.c, func() { r.fired = append(r.fired, name) })
	return &t
}

// advance moves the clock to at and runs the timers that are due, returning
// the names that fired.
func (r *timerRig) advance(at time.Duration) []string {
	r.c.now = at
	r.fired = nil
	r.c.loop.handleTimers()
	return r.fired
}

// checkHeap fails unless every timer in the heap knows its index and no key
// is smaller than its parent's.
func checkHeap(t *testing.T, h timerHeap) {
	t.Helper()
	for i, x := range h {
		if x.index != i {
			t.Fatalf("heap[%d] thinks it is at %d", i, x.index)
		}
		if p := (i - 1) / 2; i > 0 && h[p].key > x.key {
			t.Fatalf("heap[%d].key %v < its parent's %v", i, x.key, h[p].key)
		}
	}
}

func TestTimersFireInOrderOnce(t *testing.T) {
	r := newTimerRig()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]time.Duration{}
	for i := range 500 {
		name := string(rune('a'+i%26)) + time.Duration(i).String()
		d := time.Duration(1+rng.IntN(10000)) * time.Millisecond
		r.timer(name).update(d)
		want[name] = d
	}
	checkHeap(t, r.c.timers)
	var got []string
	last := time.Duration(0)
	for at := time.Duration(0); at < 10*time.Second+7*time.Millisecond; at += 7 * time.Millisecond {
		for _, name := range r.advance(at) {
			if d := want[name]; d > at || d <= last {
				t.Fatalf("%s (due at %v) fired at %v", name, d, at)
			}
			got = append(got, name)
		}
		last = at
		checkHeap(t, r.c.timers)
	}
	if len(got) != len(want) || len(r.c.timers) != 0 {
		t.Fatalf("%d of %d timers fired, %d left in the heap", len(got), len(want), len(r.c.timers))
	}
	slices.Sort(got)
	if len(slices.Compact(got)) != len(want) {
		t.Fatal("a timer fired twice")
	}
}

func TestTimerPushedBackFiresAtItsNewDeadline(t *testing.T) {
	r := newTimerRig()
	a := r.timer("a")
	a.update(time.Second)
	r.c.now = 800 * time.Millisecond
	a.update(time.Second) // a byte arrived: due at 1.8 s now
	if a.key != time.Second {
		t.Fatalf("pushing back moved the heap: key %v, want the old 1s", a.key)
	}
	if got := r.advance(time.Second); len(got) != 0 {
		t.Fatalf("fired at the old deadline: %v", got)
	}
	if a.key != 1800*time.Millisecond || r.c.timers[0] != a {
		t.Fatalf("at its old key the timer should take its new place: key %v", a.key)
	}
	if got := r.advance(1799 * time.Millisecond); len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	if got := r.advance(1800 * time.Millisecond); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("fired %v at 1.8s, want a", got)
	}
	if a.armed() || a.index != -1 {
		t.Fatal("a timer that fired is still armed or in the heap")
	}
}

func TestTimerBroughtForward(t *testing.T) {
	r := newTimerRig()
	a, b := r.timer("a"), r.timer("b")
	a.update(60 * time.Second)
	b.update(10 * time.Second)
	a.update(5 * time.Second) // the drain deadline replaces the head's
	checkHeap(t, r.c.timers)
	if got := r.advance(5 * time.Second); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("fired %v at 5s, want a", got)
	}
}

func TestTimerStopAndClose(t *testing.T) {
	r := newTimerRig()
	a, b, c := r.timer("a"), r.timer("b"), r.timer("c")
	a.update(time.Second)
	b.update(time.Second)
	c.update(2 * time.Second)
	a.stop()
	if a.index < 0 {
		t.Fatal("stop should leave the timer in the heap until its key comes up")
	}
	b.close()
	if b.index != -1 || len(r.c.timers) != 2 {
		t.Fatalf("close left the timer in the heap (%d timers)", len(r.c.timers))
	}
	checkHeap(t, r.c.timers)
	if got := r.advance(time.Second); len(got) != 0 {
		t.Fatalf("a stopped or closed timer fired: %v", got)
	}
	if a.index != -1 || len(r.c.timers) != 1 {
		t.Fatal("a stopped timer whose key came up is still in the heap")
	}
	// Stopped and armed again before its key comes up: it fires once, at
	// the deadline it was armed with last.
	c.stop()
	r.c.now = 1500 * time.Millisecond
	c.update(time.Second)
	if got := r.advance(2 * time.Second); len(got) != 0 {
		t.Fatalf("fired at the key it had before it was stopped: %v", got)
	}
	if got := r.advance(2500 * time.Millisecond); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("fired %v, want c", got)
	}
	c.close() // a timer that is not in the heap may be closed too
}

func TestTimerCallbacksMayChangeTimers(t *testing.T) {
	r := newTimerRig()
	var a, b, c *timer
	a = &timer{}
	*a = newTimer(r.c, func() {
		r.fired = append(r.fired, "a")
		b.close()                  // another one due now
		a.update(time.Second)      // itself, again
		c.update(time.Millisecond) // brought forward, due after this pass
	})
	b, c = r.timer("b"), r.timer("c")
	a.update(time.Second)
	b.update(time.Second)
	c.update(time.Hour)
	if got := r.advance(time.Second); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("fired %v, want a alone", got)
	}
	if got := r.advance(time.Second + time.Millisecond); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("fired %v, want c", got)
	}
	if got := r.advance(2 * time.Second); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("fired %v, want a once more", got)
	}
}

func TestTimerWait(t *testing.T) {
	r := newTimerRig()
	if got := r.c.loop.timerWait(); got != -1 {
		t.Fatalf("no timer: wait %d, want -1 (for ever)", got)
	}
	a := r.timer("a")
	a.update(1500*time.Microsecond + 1)
	if got := r.c.loop.timerWait(); got != 2 {
		t.Fatalf("wait %d ms for a timer 1.500001 ms away, want 2 (rounded up)", got)
	}
	r.c.now = 1500*time.Microsecond + 1
	if got := r.c.loop.timerWait(); got != 0 {
		t.Fatalf("wait %d for a timer that is due, want 0", got)
	}
}

// TestTimerResetDoesNotAllocate: pushing a deadline back, which a
// connection does with every byte it reads, allocates nothing and leaves
// the heap alone.
func TestTimerResetDoesNotAllocate(t *testing.T) {
	r := newTimerRig()
	a := r.timer("a")
	a.update(time.Minute)
	allocs := testing.AllocsPerRun(1000, func() {
		r.c.now += time.Microsecond
		a.update(time.Minute)
		a.stop()
		a.update(time.Minute)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per reset", allocs)
	}
}

// BenchmarkTimerReset measures what a read costs its connection's timer,
// among ten thousand armed timers.
func BenchmarkTimerReset(b *testing.B) {
	r := newTimerRig()
	timers := make([]*timer, 10000)
	for i := range timers {
		timers[i] = r.timer("")
		timers[i].update(time.Duration(1+i) * time.Millisecond)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.c.now += time.Microsecond
		timers[i%len(timers)].update(time.Minute)
		i++
	}
}

// BenchmarkTimerArmStop measures a timer armed and stopped again, as a
// client's send timer is around each burst it cannot take at once.
func BenchmarkTimerArmStop(b *testing.B) {
	r := newTimerRig()
	for i := range 10000 {
		r.timer("").update(time.Duration(1+i) * time.Millisecond)
	}
	a := r.timer("a")
	b.ReportAllocs()
	for b.Loop() {
		a.update(time.Minute)
		a.stop()
	}
}
