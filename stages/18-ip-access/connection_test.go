package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

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
