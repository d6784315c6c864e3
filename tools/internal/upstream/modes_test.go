package upstream

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"expserver-go/tests/harness"
)

// startMode runs the server in-process with mode m on a free port.
func startMode(t *testing.T, dir string, m mode) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveMode(ln, dir, io.Discard, m) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("serveMode returned %v, want net.ErrClosed", err)
		}
	})
	return ln.Addr().String()
}

func TestSilent(t *testing.T) {
	dir, _ := fixture(t)
	addr := startMode(t, dir, mode{silent: true})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /hello.txt HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 100)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent upstream answered: %d bytes, %v", n, err)
	}
	// Nor does it close its end when the client has closed its own.
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 100)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the client's end of input: %d bytes, %v; want nothing", n, err)
	}
}

func TestRecord(t *testing.T) {
	dir, _ := fixture(t)
	rec := t.TempDir()
	addr := startMode(t, dir, mode{record: rec})
	requests := []string{
		"GET /hello.txt HTTP/1.0\r\n\r\n",
		// What follows the body is recorded too: the server drains it
		// while it lingers.
		"POST /echo HTTP/1.0\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES",
	}
	for i, req := range requests {
		if _, err := roundTrip(addr, req); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(rec, []string{"1.raw", "2.raw"}[i])
		var got []byte
		err := harness.WaitFor(5*time.Second, func() (err error) {
			got, err = os.ReadFile(path)
			return err
		})
		if err != nil || string(got) != req {
			t.Errorf("connection %d recorded %q (%v), want %q", i+1, got, err, req)
		}
	}
	if entries, _ := os.ReadDir(rec); len(entries) != 2 {
		t.Errorf("the record folder holds %d files, want 2", len(entries))
	}
}

func TestRecordNeedsAFolder(t *testing.T) {
	var out, errOut strings.Builder
	args := []string{"-record", filepath.Join(t.TempDir(), "absent"), "-port", "0"}
	if code := Main(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "-record") {
		t.Errorf("Main(%q) = %d, stderr %q; want 2 naming -record", args, code, errOut.String())
	}
}
