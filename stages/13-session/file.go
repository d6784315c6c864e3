package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"expserver-go/common/buffer"
	"expserver-go/common/mime"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// file is an open file exposed as a pipe source: its bytes flow into
// whatever pipe its source is attached to. Mirrors xps_file_t.
type file struct {
	core     *core
	path     string // as asked for
	fd       int
	size     int64
	mimeType string
	offset   int64 // where the next region starts
	left     int64 // bytes not yet handed on
	source   *pipeSource
	closed   bool
	regions  int    // regions handed on and not yet released
	released func() // f.regionReleased, made once for every region
}

// newFile opens the file at path for reading, and only if:
//
//  1. it exists (a missing file, or a path through a file as if it were a
//     folder, is not found);
//  2. it lies inside the public folder, every symbolic link followed — a ".." or a
//     link that would lead out, "/srv/public2" next to "/srv/public"
//     included, is refused;
//  3. it is a regular file;
//  4. others may read it, and enter every folder between the public folder
//     and it: the course's rule for what is public, applied to the whole
//     way there, because a server run as root could otherwise serve a file
//     from a folder its owner keeps private.
//
// The kernel enforces the second rule while it opens the file: openat2 with
// RESOLVE_BENEATH resolves the path inside the folder and fails if any step
// would leave it. The check and the open are then one system call, and no
// link can be swapped in between them. (It also refuses absolute symbolic
// links, even ones pointing back inside the folder.) A kernel older than
// openat2 gets an open followed by a check of the opened file's real path.
// The folders of the fourth rule are the ones the file really lies in, so a
// symbolic link cannot lead around a private folder.
// A missing file gives an error wrapping fs.ErrNotExist and a refused one
// fs.ErrPermission; callers tell them apart with errors.Is.
// Mirrors xps_file_create.
func newFile(c *core, path string) (*file, error) {
	fd, rel, err := openBeneath(c, c.publicRoot, path)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
			err = fs.ErrNotExist
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.EACCES), errors.Is(err, unix.ELOOP):
			err = fs.ErrPermission
		}
		return nil, fmt.Errorf("file %s: open: %w", path, err)
	}
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
	if err := foldersOpen(c, c.publicRoot, rel); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	// The file comes from the core's free list if it can, with its source
	// and the callbacks bound to it when it was made.
	f := c.freeFiles.get()
	if f == nil {
		f = &file{}
		f.source = newPipeSource(f.read, f.close)
		f.released = f.regionReleased
	}
	*f = file{core: c, path: path, fd: fd, size: st.Size, left: st.Size, mimeType: mime.TypeByPath(path),
		source: f.source, released: f.released}
	f.source.reset()
	// A file always has data until its end, so its source starts ready.
	f.source.ready = true
	if xlog.DebugEnabled() {
		xlog.Debugf("opened %s (%d bytes, %s)", path, f.size, f.mimeType)
	}
	return f, nil
}

// openFlags open a file for reading. O_NONBLOCK keeps the open of a FIFO
// from waiting for a writer, which would stall the whole server; it changes
// nothing for regular files.
const openFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY

// openBeneath opens path, which must lie inside root, for reading. It fails
// with EXDEV when the path leads out of root. It also returns where the
// file really lies, relative to root, with no symbolic link left in it.
func openBeneath(c *core, root, path string) (fd int, rel string, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return -1, "", err
	}
	if rel, err = filepath.Rel(root, abs); err != nil {
		return -1, "", err
	}
	dirFD, err := c.dirFD(root)
	if err != nil {
		return -1, "", err
	}
	// First without following symbolic links: when there is none on the
	// way, which is the common case, the file lies at rel itself.
	how := unix.OpenHow{Flags: openFlags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS}
	fd, err = unix.Openat2(dirFD, rel, &how)
	switch {
	case err == nil:
		return fd, rel, nil
	case errors.Is(err, unix.ELOOP):
		// A link on the way: follow it, still inside root, and ask the
		// kernel where it led.
		how.Resolve &^= unix.RESOLVE_NO_SYMLINKS
		fd, err = unix.Openat2(dirFD, rel, &how)
	case errors.Is(err, unix.ENOSYS):
		// No openat2 (Linux before 5.6): open, then check where the kernel
		// actually opened the file.
		fd, err = unix.Open(abs, openFlags, 0)
	}
	if err != nil {
		return -1, "", err
	}
	if rel, err = openedPath(root, fd); err != nil {
		unix.Close(fd)
		return -1, "", err
	}
	return fd, rel, nil
}

// openedPath returns where the open file fd lies, relative to root, as
// the kernel resolved it; EXDEV when that is outside root.
func openedPath(root string, fd int) (string, error) {
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if !within(root, real) {
		return "", unix.EXDEV
	}
	return filepath.Rel(root, real)
}

// foldersOpen checks that others may enter (o+x) every folder on the way
// from root to rel, which holds no symbolic link; root itself is the
// operator's choice and is not checked. It costs one fstatat per folder:
// none for a file straight inside root.
func foldersOpen(c *core, root, rel string) error {
	dirFD, err := c.dirFD(root)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	for i := range len(rel) {
		if rel[i] != '/' {
			continue
		}
		if err := unix.Fstatat(dirFD, rel[:i], &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return os.NewSyscallError("fstatat", err)
		}
		if st.Mode&0o001 == 0 {
			return fmt.Errorf("folder %s: others may not enter it: %w", rel[:i], fs.ErrPermission)
		}
	}
	return nil
}

// within reports whether path is root or lies below it. Both must be clean
// absolute paths.
func within(root, path string) bool {
	if root == "/" {
		return true
	}
	return path == root || strings.HasPrefix(path, root+"/")
}

// read is the source's handler. It does not read the file: it hands on a
// region of it — the next bytes, as many as fill the pipe to its threshold —
// which the connection that sends it passes to the kernel with sendfile, so
// the bytes go from the page cache to the socket without a copy through
// this program. The pipe counts a region's bytes like any others, so its
// threshold still bounds what is in flight. Once the file's size has been
// handed on, the file is destroyed — its source detaches and the reader is
// told, once the pipe has drained, that the stream is over.
//
// The file is sent as it was when it was opened: bytes appended later are
// not sent. Mirrors file_source_handler.
func (f *file) read() {
	if f.left == 0 {
		f.close()
		return
	}
	n := min(f.left, int64(f.source.pipe.room()))
	region := buffer.NewFileRegion(f.fd, f.offset, int(n), f.released)
	f.regions++
	f.offset += n
	f.left -= n
	if err := f.source.writeBuffer(region); err != nil {
		xlog.Errorf("%v", err)
		f.close()
		return
	}
	if f.left == 0 {
		f.close()
	}
}

// regionReleased is called when a region has been sent, or dropped with the
// pipe or slot that held it. The file's descriptor is closed once the file
// is done and no region needs it any more.
func (f *file) regionReleased() {
	f.regions--
	if f.closed && f.regions == 0 {
		unix.Close(f.fd)
		f.core.loop.released()
		f.core.freeFiles.put(f)
	}
}

// close destroys the file's source and closes the file, or leaves that to
// the last region still in flight. It is also the source's close callback:
// when the reader goes away, the file goes too.
// Mirrors xps_file_destroy.
func (f *file) close() {
	if f.closed {
		return
	}
	f.closed = true
	if f.regions == 0 {
		unix.Close(f.fd)
		f.core.loop.released()
		f.core.freeFiles.put(f)
	}
	f.source.close()
	if xlog.DebugEnabled() {
		xlog.Debugf("closed %s", f.path)
	}
}
