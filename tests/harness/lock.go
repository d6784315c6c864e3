package harness

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// LockCoursePorts takes a machine-wide lock on the course's fixed ports
// (8001–8004 and 3000) and returns its release. Tests that must use those
// ports — the README transcripts, the grading tool — take it so that they
// never run at the same time, even from different test binaries.
func LockCoursePorts() (release func(), err error) {
	path := filepath.Join(os.TempDir(), "expserver-go-course-ports.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
