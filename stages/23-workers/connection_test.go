package main

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// testSock returns one end of a new socket pair; the other end is closed
// when the test ends.
func testSock(t *testing.T) int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[1]) })
	return fds[0]
}

// TestConnectionReuse checks the connection free list: a closed
// connection's object serves another client from the loop's next iteration
// on, as new but for what it keeps — its ends and the callbacks bound to it.
func TestConnectionReuse(t *testing.T) {
	c, _, _ := testListener(t)
	first, err := newConnection(c, testSock(t), "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	source, sink := first.source, first.sink
	first.close(false)
	same, err := newConnection(c, testSock(t), "192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	if same == first {
		t.Fatal("a connection was reused in the loop iteration that closed it")
	}
	same.close(false)
	c.recycle() // as the loop does at the top of its next iteration
	next, err := newConnection(c, testSock(t), "192.0.2.3")
	if err != nil {
		t.Fatal(err)
	}
	defer next.close(false)
	if next != first && next != same {
		t.Fatal("a closed connection was not reused")
	}
	if next == first && (next.source != source || next.sink != sink) {
		t.Error("the reused connection made new ends")
	}
	if next.closed || next.remoteIP != "192.0.2.3" || next.source.pipe != nil || next.source.ready || next.sink.ready {
		t.Errorf("the reused connection kept its last client's state: closed %v, %s, source %+v, sink %+v",
			next.closed, next.remoteIP, next.source.pipeEnd, next.sink.pipeEnd)
	}
}

// TestHeldConnectionNotReused checks hold: a closed connection that a
// session still holds goes to the free list only once it is released.
func TestHeldConnectionNotReused(t *testing.T) {
	c, _, _ := testListener(t)
	held, err := newConnection(c, testSock(t), "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	held.hold()
	held.close(false)
	c.recycle()
	other, err := newConnection(c, testSock(t), "192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	if other == held {
		t.Fatal("a held connection was reused")
	}
	other.close(false)
	held.release()
	c.recycle()
	for _, want := range []*connection{held, other} { // last in, first out
		got, err := newConnection(c, testSock(t), "192.0.2.3")
		if err != nil {
			t.Fatal(err)
		}
		defer got.close(false)
		if got != want {
			t.Fatalf("reused %p, want %p", got, want)
		}
	}
}
