package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a started server (or upstream) process whose output is
// captured.
type Process struct {
	cmd  *exec.Cmd
	out  LockedBuffer
	done chan struct{}
	err  error // the result of Wait, valid once done is closed
}

// LockedBuffer is a bytes.Buffer that several goroutines may write while
// another reads it: a process's output, a server's log.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs bin with args in dir, with env added to the environment, and
// captures its output. The process gets its own process group, so stopping
// it never signals the test itself.
func Start(bin string, args []string, dir string, env ...string) (*Process, error) {
	p := &Process{done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start %s: %w", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output returns everything the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Alive returns nil while the process runs, and how it ended once it has:
// an exit that reported no error still reads "exit status 0".
func (p *Process) Alive() error {
	if done, err := p.Exited(); done {
		if err == nil {
			return errors.New("exit status 0")
		}
		return err
	}
	return nil
}

// Wait waits up to timeout for the process to end and returns its exit code.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("harness: process %d still running after %v", p.PID(), timeout)
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		return -1, p.err
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGINT, waits up to timeout for the process to exit and returns
// its exit code. If it does not exit in time it is killed and Stop returns an
// error saying so.
func (p *Process) Stop(timeout time.Duration) (int, error) {
	if ok, _ := p.Exited(); ok {
		return p.Wait(0)
	}
	_ = p.Signal(syscall.SIGINT)
	code, err := p.Wait(timeout)
	if err != nil {
		p.Kill()
		return -1, fmt.Errorf("harness: process %d ignored SIGINT for %v and was killed", p.PID(), timeout)
	}
	return code, nil
}

// Kill ends the process and its process group at once and waits for it.
// A process that has already ended is left alone: its pid, and so its
// group id, may already belong to another process.
func (p *Process) Kill() {
	if p.Alive() != nil {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
	<-p.done
}
