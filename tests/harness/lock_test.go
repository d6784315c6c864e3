package harness

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLockCPUExclusiveGoesNext checks the turnstile: while a check that
// needs the machine alone waits for a running one, a check that comes
// later does not start before it.
func TestLockCPUExclusiveGoesNext(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // locks of this test's own
	running, err := LockCPU(false)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	releaseAlone := make(chan struct{})
	go func() {
		release, err := LockCPU(true)
		if err != nil {
			t.Error(err)
			return
		}
		got <- "alone"
		<-releaseAlone
		release()
	}()
	// The exclusive check waits: it holds the turnstile.
	deadline := time.Now().Add(5 * time.Second)
	for !turnstileHeld(t) {
		if time.Now().After(deadline) {
			t.Fatal("the exclusive check never took the turnstile")
		}
		time.Sleep(5 * time.Millisecond)
	}
	go func() {
		release, err := LockCPU(false)
		if err != nil {
			t.Error(err)
			return
		}
		got <- "later"
		release()
	}()
	// Without the turnstile, flock grants the later shared lock at once.
	select {
	case who := <-got:
		t.Fatalf("%q started while a check ran and an exclusive one waited", who)
	case <-time.After(300 * time.Millisecond):
	}
	running()
	if who := <-got; who != "alone" {
		t.Fatalf("%q went first; want the exclusive check", who)
	}
	close(releaseAlone)
	if who := <-got; who != "later" {
		t.Fatalf("got %q; want the later check", who)
	}
}

// turnstileHeld reports whether someone holds the CPU lock's turnstile.
func turnstileHeld(t *testing.T) bool {
	release, err := flockFile(filepath.Join(os.TempDir(), "expserver-go-cpu-turnstile.lock"), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	release()
	return false
}
