package harness

import (
	"net"
	"testing"
)

// TestAcceptQueue checks that AcceptQueue sees clients that completed their
// handshake and wait for accept(), and no longer sees them once accepted.
func TestAcceptQueue(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	const n = 5
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if waiting, sockets, err := AcceptQueue(port); err != nil || waiting != n || sockets != 1 {
		t.Fatalf("before accepting: %d waiting on %d sockets (%v), want %d on 1", waiting, sockets, err, n)
	}
	for range n {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if waiting, sockets, err := AcceptQueue(port); err != nil || waiting != 0 || sockets != 1 {
		t.Fatalf("after accepting: %d waiting on %d sockets (%v), want 0 on 1", waiting, sockets, err)
	}
	if waiting, sockets, err := AcceptQueue(1); err != nil || waiting != 0 || sockets != 0 {
		t.Fatalf("port 1: %d waiting on %d sockets (%v), want none", waiting, sockets, err)
	}
}
