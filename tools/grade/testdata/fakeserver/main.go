// Fakeserver is a stage 6 server (it reverses what each client sends, on
// ports 8001–8004) with the faults the grading tool's tests need. The
// fault is chosen by the name the binary is started under, because the
// grader passes no flags:
//
//	crashes-once      on the first connection reset it sees, it dies of a signal; started again, it works
//	crashes-for-good  the same, but once it has crashed it never starts again
//	stops-answering   it never answers a chunk of more than 1,000 bytes
//
// Under any other name it has no fault.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// marker is left in the working directory by a crash, so that the next
// start knows.
const marker = "crashed"

func main() {
	mode := filepath.Base(os.Args[0])
	if _, err := os.Stat(marker); err == nil && mode == "crashes-for-good" {
		fmt.Println("refusing to start after a crash")
		os.Exit(1)
	}
	for _, port := range []int{8001, 8002, 8003, 8004} {
		l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		go accept(l, mode)
	}
	fmt.Println("fakeserver", mode, "listening on 8001–8004")
	select {}
}

func accept(l net.Listener, mode string) {
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c, mode)
	}
}

func serve(c net.Conn, mode string) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for first := true; ; first = false {
		n, err := c.Read(buf)
		if err != nil {
			crashOnReset(err, mode)
			return
		}
		if mode == "stops-answering" && n > 1000 {
			continue
		}
		if first && crashPending(mode) {
			// Each connection has its own goroutine, so a reset is seen
			// only when its connection's goroutine runs, and a client that
			// asks right after resetting another could be answered first: the
			// crash would then land in the next case. A C server crashes
			// inside its one loop, before it answers anyone else; the pause
			// before a connection's first reply gives the goroutine of the
			// reset connection, blocked in a write, the time to do the same.
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := c.Write(reverse(buf[:n])); err != nil {
			crashOnReset(err, mode)
			return
		}
	}
}

// crashPending reports whether mode crashes on a reset and has not yet.
func crashPending(mode string) bool {
	if mode != "crashes-once" && mode != "crashes-for-good" {
		return false
	}
	_, err := os.Stat(marker)
	return err != nil
}

// crashOnReset crashes a crashing mode on the first reset by a client.
func crashOnReset(err error, mode string) {
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		return
	}
	if crashPending(mode) {
		crash()
	}
}

// crash dies at once, by a signal, as a C server does on a bad pointer.
// (Go's runtime turns a SIGSEGV into a report and exit status 2; SIGKILL
// cannot be caught.)
func crash() {
	os.WriteFile(marker, nil, 0o644)
	fmt.Println("about to crash")
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// reverse reverses a chunk, keeping a final newline last.
func reverse(in []byte) []byte {
	out := make([]byte, len(in))
	n := len(in)
	if n > 0 && in[n-1] == '\n' {
		out[n-1] = '\n'
		n--
	}
	for i := range n {
		out[i] = in[n-1-i]
	}
	return out
}
