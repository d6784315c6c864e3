package main

import (
	"fmt"
	"os"

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
	sessions    map[*session]struct{}
	config      *config

	// work is the pipe pass's work list: the pipes that may have work.
	// spareWork keeps the previous list's storage for reuse.
	work, spareWork []*pipe

	// dirFDs holds an open descriptor of each folder files are served from,
	// so the kernel can resolve paths inside it (see openBeneath).
	dirFDs map[string]int
}

// newCore creates the loop and the empty lists for a server configured by
// cfg. Mirrors xps_core_create.
func newCore(cfg *config) (*core, error) {
	c := &core{config: cfg, connections: make(map[*connection]struct{}), sessions: make(map[*session]struct{}), pipes: make(map[*pipe]struct{})}
	lp, err := newLoop(c)
	if err != nil {
		return nil, err
	}
	c.loop = lp
	for _, s := range cfg.servers {
		for _, r := range s.routes {
			if r.typ == routeFileServe {
				if _, err := c.dirFD(r.dirPath); err != nil {
					c.close()
					return nil, err
				}
			}
		}
	}
	return c, nil
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

// start creates one listener for each of the config's listeners, then runs
// the loop until it is stopped. A listener that cannot be created — its port
// taken, its address not local — stops the start, naming the address.
// Mirrors xps_core_start.
func (c *core) start() error {
	for _, l := range c.config.listeners {
		if _, err := newListener(c, l.host, l.port); err != nil {
			return fmt.Errorf("listener %s:%d: %w", l.host, l.port, err)
		}
		xlog.Infof("Server listening on %s:%d", l.host, l.port)
	}
	c.loop.run()
	return nil
}

// close destroys every connection and every session (which detaches their
// pipe ends), then every listener, then the pipes, then the loop.
// Mirrors xps_core_destroy.
func (c *core) close() {
	for conn := range c.connections {
		conn.close(false)
	}
	for s := range c.sessions {
		s.close()
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
