package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"expserver-go/common/mime"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// file is an open file exposed as a pipe source: its bytes flow into
// whatever pipe its source is attached to. Mirrors xps_file_t.
type file struct {
	core     *core
	path     string // the real path
	fd       int
	size     int64
	mimeType string
	source   *pipeSource
	closed   bool
}

// newFile opens the file at path for reading, after checking, in order:
//
//  1. that it exists (its real path, symbolic links resolved, can be found);
//  2. that its real path is root or lies below it — compared
//     whole path segment by segment, so "/srv/public2" is not inside
//     "/srv/public", and a symbolic link pointing out of the folder is
//     refused;
//  3. that others may read it (the course's rule for what is public);
//  4. that it opens.
//
// A missing file gives an error wrapping fs.ErrNotExist and a refused one
// fs.ErrPermission; callers tell them apart with errors.Is.
// Mirrors xps_file_create.
func newFile(c *core, path, root string) (*file, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("file %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	if !within(root, real) {
		return nil, fmt.Errorf("file %s: outside %s: %w", path, root, fs.ErrPermission)
	}
	fd, err := unix.Open(real, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			err = fs.ErrNotExist
		case errors.Is(err, unix.EACCES):
			err = fs.ErrPermission
		}
		return nil, fmt.Errorf("file %s: open: %w", path, err)
	}
	// Stat the open file, not the path, so the checks apply to exactly the
	// file that will be read.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("file %s: %w", path, os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("file %s: not a regular file: %w", path, fs.ErrNotExist)
	}
	if st.Mode&0o004 == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("file %s: not readable by others: %w", path, fs.ErrPermission)
	}
	f := &file{core: c, path: real, fd: fd, size: st.Size, mimeType: mime.TypeByPath(real)}
	f.source = newPipeSource(f.read, f.close)
	// A file always has data until its end, so its source starts ready.
	f.source.ready = true
	xlog.Debugf("opened %s (%d bytes, %s)", real, f.size, f.mimeType)
	return f, nil
}

// within reports whether path is root or lies below it. Both must be clean
// absolute paths.
func within(root, path string) bool {
	if root == "/" {
		return true
	}
	return path == root || strings.HasPrefix(path, root+"/")
}

// read is the source's handler: it reads the next chunk of the file into the
// pipe. At the end of the file, or on a read error, the file is destroyed;
// its source detaches and the reader is told, once the pipe has drained,
// that the stream is over. Regular files never block, so an ordinary read is
// right here. Mirrors file_source_handler.
func (f *file) read() {
	n, err := unix.Read(f.fd, readBuf[:bufferSize])
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return
		}
		xlog.Errorf("read %s: %v", f.path, err)
		f.close()
		return
	}
	if n == 0 {
		f.close()
		return
	}
	if err := f.source.write(readBuf[:n]); err != nil {
		xlog.Errorf("%v", err)
		f.close()
	}
}

// close closes the file and destroys its source. It is also the source's
// close callback: when the reader goes away, the file goes too.
// Mirrors xps_file_destroy.
func (f *file) close() {
	if f.closed {
		return
	}
	f.closed = true
	unix.Close(f.fd)
	f.source.close()
	xlog.Debugf("closed %s", f.path)
}
