package upstream

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// mode is how the server treats its connections besides answering them:
// two behaviours that let a test see what a proxy does to its upstream.
type mode struct {
	// silent reads what each connection sends and never answers, nor
	// closes it while the server runs: an upstream that took the request
	// and hangs.
	silent bool
	// record is a folder where the bytes received on each connection are
	// written, once it has ended, to N.raw (N counting connections from 1 in
	// the order they were accepted), so a test can compare them with what
	// the proxy was sent.
	record string
}

// apply returns the connection to handle, the accepted-th, and what to
// handle it with: handle, or, when the mode is silent, a function that
// holds it until stopped is closed.
func (m mode) apply(c net.Conn, accepted int, handle func(net.Conn), stopped <-chan struct{}) (net.Conn, func(net.Conn)) {
	if m.record != "" {
		c = &recorder{Conn: c, path: filepath.Join(m.record, strconv.Itoa(accepted)+".raw")}
	}
	if m.silent {
		return c, func(c net.Conn) {
			defer c.Close()
			// Reading keeps a sender from blocking; the end of what the
			// client sends changes nothing, as in a server that hangs.
			io.Copy(io.Discard, c)
			<-stopped
		}
	}
	return c, handle
}

// recorder is a connection that keeps every byte read from it and writes
// them to path when it is closed. The file appears whole: it is written
// under another name and renamed.
type recorder struct {
	net.Conn
	path string
	mu   sync.Mutex
	got  []byte
	once sync.Once
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.got = append(r.got, p[:n]...)
	r.mu.Unlock()
	return n, err
}

// CloseWrite half-closes the connection, as the server does before it
// lingers.
func (r *recorder) CloseWrite() error {
	if tc, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return tc.CloseWrite()
	}
	return nil
}

func (r *recorder) Close() error {
	err := r.Conn.Close()
	r.once.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		tmp := r.path + ".part"
		if os.WriteFile(tmp, r.got, 0o644) == nil {
			os.Rename(tmp, r.path)
		}
	})
	return err
}
