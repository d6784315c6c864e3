package harness

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestReserveFDs(t *testing.T) {
	limit, err := FDLimit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReserveFDs(limit); err == nil || !strings.Contains(err.Error(), "ulimit -Hn") {
		t.Fatalf("reserving the whole limit: %v; want an error saying how to raise it", err)
	}
	all, err := ReserveFDs(limit / 2)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		release, err := ReserveFDs(1)
		if err != nil {
			t.Error(err)
		}
		got <- release
	}()
	select {
	case <-got:
		t.Fatal("a reservation went through while the budget was spent")
	case <-time.After(50 * time.Millisecond):
	}
	all()
	all() // a second release gives nothing back twice
	select {
	case release := <-got:
		release()
	case <-time.After(5 * time.Second):
		t.Fatal("a reservation still waits after the budget was released")
	}
	if fdBudget.used != 0 {
		t.Errorf("%d descriptors still reserved after every release", fdBudget.used)
	}
}

func TestLowestFreeFD(t *testing.T) {
	// A child with standard input, output and error, and nothing else.
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if got, err := LowestFreeFD(cmd.Process.Pid); err != nil || got != 3 {
		t.Errorf("LowestFreeFD of a process holding fds 0–2 = %d, %v; want 3", got, err)
	}
}

func TestTCPInfoAndStates(t *testing.T) {
	l, c, err := LoopbackPair()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	defer c.Close()
	if n, err := Retransmits(c); err != nil || n != 0 {
		t.Errorf("Retransmits of a fresh loopback connection = %d, %v; want 0", n, err)
	}
	s, err := l.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, err := ProcessTCPStates(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // the accepted end now waits for its owner to close: CLOSE-WAIT
	err = WaitFor(5*time.Second, func() error {
		states, err := ProcessTCPStates(os.Getpid())
		if err != nil {
			return Permanent(err)
		}
		if states["CLOSE-WAIT"] != before["CLOSE-WAIT"]+1 {
			return os.ErrNotExist
		}
		return nil
	})
	if err != nil {
		t.Errorf("the accepted end of a connection its peer closed is not seen in CLOSE-WAIT: %v", err)
	}
}
