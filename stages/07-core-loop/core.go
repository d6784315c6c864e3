package main

import (
	"fmt"

	"expserver-go/common/xlog"
)

// core is one instance of the server: it owns the loop and every listener and
// connection, so destroying the core releases everything. Mirrors xps_core_t.
type core struct {
	loop        *loop
	listeners   []*listener
	connections map[*connection]struct{}
}

// newCore creates the loop and the empty lists. Mirrors xps_core_create.
func newCore() (*core, error) {
	c := &core{connections: make(map[*connection]struct{})}
	lp, err := newLoop(c)
	if err != nil {
		return nil, err
	}
	c.loop = lp
	return c, nil
}

// start creates one listener per port and runs the loop until it is stopped.
// Mirrors xps_core_start.
func (c *core) start(host string, ports []int) error {
	for _, port := range ports {
		if _, err := newListener(c, host, port); err != nil {
			return fmt.Errorf("listener %s:%d: %w", host, port, err)
		}
		xlog.Infof("Server listening on port %d", port)
	}
	c.loop.run()
	return nil
}

// close destroys every connection, then every listener, then the loop.
// Mirrors xps_core_destroy.
func (c *core) close() {
	for conn := range c.connections {
		conn.close()
	}
	for len(c.listeners) > 0 {
		c.listeners[0].close()
	}
	c.loop.close()
	xlog.Debugf("destroyed core")
}
