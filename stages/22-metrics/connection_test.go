package main

import (
	"testing"
	"time"
)

// TestReadTimerFollowsThePipe: an inactivity timeout on reads runs while the
// connection waits with room for more, is pushed back by each read, and
// stops while the pipe is full — back-pressure is not silence.
func TestReadTimerFollowsThePipe(t *testing.T) {
	c := testCore()
	conn := testClient(c, nil)
	sink := newPipeSink(func() {}, func() {})
	if _, err := newPipe(c, 10, conn.source, sink); err != nil {
		t.Fatal(err)
	}
	conn.setReadIdle(time.Second)
	if conn.readTimer.deadline != time.Second {
		t.Fatalf("deadline %v, want 1s from now", conn.readTimer.deadline)
	}
	c.now = 500 * time.Millisecond
	conn.source.write([]byte("12345"))
	conn.watchInput(true)
	if conn.readTimer.deadline != 1500*time.Millisecond {
		t.Fatalf("after a read: deadline %v, want 1.5s", conn.readTimer.deadline)
	}
	c.now = 700 * time.Millisecond
	conn.watchInput(false) // EAGAIN: the deadline stands
	if conn.readTimer.deadline != 1500*time.Millisecond {
		t.Fatalf("EAGAIN moved the deadline to %v", conn.readTimer.deadline)
	}
	conn.source.write([]byte("67890"))
	conn.watchInput(true)
	if conn.readTimer.armed() {
		t.Fatal("the read timer runs while the pipe is full")
	}
	c.now = 5 * time.Second
	sink.clear(10)
	conn.watchInput(false)
	if conn.readTimer.deadline != 6*time.Second {
		t.Fatalf("room again and waiting: deadline %v, want 6s", conn.readTimer.deadline)
	}

	// A deadline the owner set is not pushed back by reads.
	conn.setReadIdle(0)
	conn.readTimer.update(2 * time.Second)
	c.now = 6 * time.Second
	conn.source.write([]byte("x"))
	conn.watchInput(true)
	if conn.readTimer.deadline != 7*time.Second {
		t.Fatalf("a read moved the head's deadline to %v", conn.readTimer.deadline)
	}
}

// TestWriteTimerFollowsThePipe: an inactivity timeout on sends runs while
// bytes wait, is pushed back by each send that makes progress, stops once
// nothing is left, and leaves a connect's deadline alone.
func TestWriteTimerFollowsThePipe(t *testing.T) {
	c := testCore()
	conn := testClient(c, nil)
	src := newPipeSource(func() {}, func() {})
	if _, err := newPipe(c, 100, src, conn.sink); err != nil {
		t.Fatal(err)
	}
	conn.writeIdle = time.Second
	src.write([]byte("pending"))
	conn.watchOutput(false) // EAGAIN with bytes waiting
	if conn.writeTimer.deadline != time.Second {
		t.Fatalf("deadline %v, want 1s", conn.writeTimer.deadline)
	}
	c.now = 900 * time.Millisecond
	conn.watchOutput(false) // EAGAIN again, nothing sent: no reprieve
	if conn.writeTimer.deadline != time.Second {
		t.Fatalf("a send that made no progress moved the deadline to %v", conn.writeTimer.deadline)
	}
	conn.sink.clear(3)
	conn.watchOutput(true)
	if conn.writeTimer.deadline != 1900*time.Millisecond {
		t.Fatalf("after progress: deadline %v, want 1.9s", conn.writeTimer.deadline)
	}
	conn.sink.clear(4)
	conn.watchOutput(true)
	if conn.writeTimer.armed() {
		t.Fatal("the send timer runs with nothing left to send")
	}

	conn.onConnect = func(error) {}
	conn.writeTimer.update(500 * time.Millisecond)
	src.write([]byte("request"))
	conn.watchOutput(true)
	if conn.writeTimer.deadline != 1400*time.Millisecond {
		t.Fatalf("a send moved the connect's deadline to %v", conn.writeTimer.deadline)
	}
}
