package main

import (
	"fmt"
	"os"
	"path/filepath"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// core is one instance of the server: it owns the loop and every listener,
// connection and pipe, so destroying the core releases everything.
// Mirrors xps_core_t.
type core struct {
	loop        *loop
	listeners   []*listener
	connections map[*connection]struct{}
	pipes       map[*pipe]struct{}

	// work is the pipe pass's work list: the pipes that may have work.
	// spareWork keeps the previous list's storage for reuse.
	work, spareWork []*pipe

	// Where the first port's clients are relayed to.
	upstreamHost string
	upstreamPort int

	// publicRoot is the real path of the public folder: no file outside it
	// is ever served.
	publicRoot string
	// dirFDs holds an open descriptor of each folder files are served from,
	// so the kernel can resolve paths inside it (see openBeneath).
	dirFDs map[string]int
}

// newCore creates the loop and the empty lists. Mirrors xps_core_create.
func newCore() (*core, error) {
	c := &core{connections: make(map[*connection]struct{}), pipes: make(map[*pipe]struct{})}
	lp, err := newLoop(c)
	if err != nil {
		return nil, err
	}
	c.loop = lp
	return c, nil
}

// setPublicRoot resolves dir, relative to the working directory, to the real
// path every file must lie under.
func (c *core) setPublicRoot(dir string) error {
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return fmt.Errorf("public folder %s: %w", dir, err)
	}
	c.publicRoot = root
	_, err = c.dirFD(root)
	return err
}

// dirFD returns an open descriptor of the folder root, opening it on first
// use; the core closes it.
func (c *core) dirFD(root string) (int, error) {
	if fd, ok := c.dirFDs[root]; ok {
		return fd, nil
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("folder %s: %w", root, os.NewSyscallError("open", err))
	}
	if c.dirFDs == nil {
		c.dirFDs = make(map[string]int)
	}
	c.dirFDs[root] = fd
	return fd, nil
}

// start creates one listener per port and runs the loop until it is stopped.
// A listener's role is its position in ports. Mirrors xps_core_start.
func (c *core) start(host string, ports []int) error {
	for role, port := range ports {
		if _, err := newListener(c, host, port, role); err != nil {
			return fmt.Errorf("port %d: %w", port, err)
		}
		xlog.Infof("Server listening on port %d", port)
	}
	c.loop.run()
	return nil
}

// close destroys every connection (which detaches their pipe ends), then
// every listener, then the pipes, then the loop. Mirrors xps_core_destroy.
func (c *core) close() {
	for conn := range c.connections {
		conn.close(false)
	}
	for len(c.listeners) > 0 {
		c.listeners[0].close()
	}
	for p := range c.pipes {
		p.close()
	}
	for _, fd := range c.dirFDs {
		unix.Close(fd)
	}
	c.loop.close()
	xlog.Debugf("destroyed core")
}
