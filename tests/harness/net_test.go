package harness

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, c, err := LoopbackPair()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	return s, c
}

// trickle writes one byte every interval, n times, then closes.
func trickle(c net.Conn, n int, interval time.Duration) {
	for range n {
		time.Sleep(interval) // the pace of a slow server, not a synchronisation
		c.Write([]byte("x"))
	}
	c.Close()
}

// TestReadsTimeOutOnSilence: the long reads bound the silence between
// arrivals, not the transfer, and a crowd's client waits while the crowd
// is served.
func TestReadsTimeOutOnSilence(t *testing.T) {
	const idle = 300 * time.Millisecond

	s, c := pair(t)
	go trickle(s, 8, 100*time.Millisecond) // 800 ms in all, never 300 ms silent
	if got, err := ReadToClose(c, idle); err != nil || !bytes.Equal(got, []byte("xxxxxxxx")) {
		t.Errorf("a reply that keeps flowing: %q, %v", got, err)
	}

	_, c = pair(t)
	start := time.Now()
	if _, err := ReadToClose(c, idle); !IsTimeout(err) || time.Since(start) > 3*idle {
		t.Errorf("a silent server: %v after %v, want a timeout after %v", err, time.Since(start), idle)
	}
	_, c = pair(t)
	if _, err := ReadFull(c, 10, idle); !IsTimeout(err) {
		t.Errorf("ReadFull from a silent server: %v", err)
	}

	// One client of a crowd hears nothing for 800 ms while another is
	// served; it then gets its answer.
	busy, other := pair(t)
	waiting, mine := pair(t)
	p := NewProgress()
	go trickle(busy, 8, 100*time.Millisecond)
	go func() {
		ReadToCloseAmong(other, idle, p)
		waiting.Write([]byte("yours"))
		waiting.Close()
	}()
	if got, err := ReadToCloseAmong(mine, idle, p); err != nil || string(got) != "yours" {
		t.Errorf("a client waiting its turn: %q, %v", got, err)
	}
}
