package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// LockCoursePorts takes a lock on the course's fixed ports (8001–8004 and
// 3000) of this network namespace and returns its release. Tests that must
// use those ports — the README transcripts, the grading tool — take it so
// that they never run at the same time, even from different test binaries.
// Ports belong to a network namespace, so the lock does too: its file is
// named after the namespace's inode, and runs in private namespaces (the
// grading tool's -class mode) never wait for one another.
func LockCoursePorts() (release func(), err error) { return LockCoursePortsWaiting(nil) }

// LockCoursePortsWaiting is LockCoursePorts, calling waiting, if not nil,
// before it waits for another run that holds the lock, so that a tool can
// say why it is not starting.
func LockCoursePortsWaiting(waiting func()) (release func(), err error) {
	path := filepath.Join(os.TempDir(), "expserver-go-course-ports.lock")
	if ns, err := os.Stat("/proc/self/ns/net"); err == nil {
		if st, ok := ns.Sys().(*syscall.Stat_t); ok {
			path = filepath.Join(os.TempDir(), fmt.Sprintf("expserver-go-course-ports-netns-%d.lock", st.Ino))
		}
	}
	release, err = flockFile(path, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		if waiting != nil {
			waiting()
		}
		release, err = flockFile(path, unix.LOCK_EX)
	}
	return release, err
}

// flockFile takes a lock of the kind how (flock's LOCK_SH or LOCK_EX, with
// LOCK_NB or not) on the file at path, made if missing, and returns its
// release. Read-only is enough for flock, and lets a user take the lock on
// a file another user created.
func flockFile(path string, how int) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// LockCPU takes the machine's CPU lock and returns its release: shared
// when alone is false, exclusive when it is true. Every milestone check
// takes it shared, and a check that measures how much CPU a server can get
// takes it exclusive, so that it runs while no other check does, from any
// test binary or grading run on this machine: CPUs, unlike ports, are not
// private to a network namespace.
func LockCPU(alone bool) (release func(), err error) {
	how := unix.LOCK_SH
	if alone {
		how = unix.LOCK_EX
	}
	return flockFile(filepath.Join(os.TempDir(), "expserver-go-cpu.lock"), how)
}
