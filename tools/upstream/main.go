// Upstream is a small HTTP file server that stands in for
// `python3 -m http.server`, the upstream the eXpServer grader runs on port
// 3000 beside every stage from 11 on. Tests and users get the same wire
// behaviour without needing Python on the machine.
//
// Usage:
//
//	upstream [-port 3000] [-bind 127.0.0.1] [-d DIR] [-backlog 1024] [PORT]
//
// A positional PORT overrides -port, so `upstream 3000` reads like
// `python3 -m http.server 3000`.
//
// Like Python's server it answers every request with HTTP/1.0 and closes the
// connection after one response; accepts CRLF or bare-LF line endings; serves
// files under DIR with the headers Server, Date, Content-type (lower-case t,
// as Python writes it), Content-Length and Last-Modified, in that order;
// honours If-Modified-Since on files; redirects a directory asked for without
// a trailing slash (301, Location with the slash added); serves index.html or
// index.htm in a directory, or else an HTML listing; percent-decodes the path,
// drops the query and removes dot segments; answers errors with Python's
// status lines ("404 File not found", "501 Unsupported method ('PUT')") and
// error-page headers (Connection: close, Content-Type: text/html;charset=utf-8);
// and logs each request to stderr in Python's format.
//
// Where it differs, on purpose:
//
//   - The Server header is "expserver-upstream/1.0": this is not Python and
//     does not claim to be.
//   - POST to any path answers 200 with Content-Type: application/octet-stream
//     and a body equal to the request body (Content-Length required; chunked
//     bodies get 411, bodies over 64 MiB get 413), so a test can check that a
//     proxy forwards a body intact. Python answers 501 to POST.
//   - A request body announced by Content-Length is read before answering,
//     and the connection lingers briefly after the response to drain what the
//     client still sends. Python closes with the body unread, which can make
//     the kernel reset the connection and destroy the response in flight.
//   - The listen backlog defaults to 1024 (Python's is 5), so hundreds of
//     concurrent connects do not fall into SYN retries.
//   - Media types come from the course's table (package common/mime), not
//     from Python's mimetypes module; for the course's files they agree.
//   - Bad request lines get a full HTTP/1.0 error response; Python, not yet
//     knowing the version, sends the error page with no status line at all.
//     A request line of two words is an error rather than HTTP/0.9.
//   - Paths never leave DIR, not even through a symbolic link; Python follows
//     links wherever they point.
//   - Error pages say "Error code" and "Message" as Python's do, without
//     Python's longer explanation line.
//   - It binds IPv4 only, as every eXpServer stage does.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"expserver-go/common/netaddr"
	"expserver-go/tools/internal/cli"

	"golang.org/x/sys/unix"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process around it, so a test can drive the flag
// handling and read the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("upstream", stderr, "usage: upstream [-port 3000] [-bind 127.0.0.1] [-d DIR] [-backlog 1024] [PORT]")
	port := fs.Int("port", 3000, "TCP `port` to listen on")
	bind := fs.String("bind", "127.0.0.1", "IPv4 `address` or host name to bind")
	dir := fs.String("d", ".", "`directory` to serve")
	backlog := fs.Int("backlog", 1024, "listen queue `length`")
	err := cli.Parse(fs, args, func() error {
		switch fs.NArg() {
		case 0:
		case 1:
			p, err := strconv.Atoi(fs.Arg(0))
			if err != nil {
				return fmt.Errorf("port %q: not a number", fs.Arg(0))
			}
			*port = p
		default:
			return fmt.Errorf("unexpected arguments %q", fs.Args()[1:])
		}
		if err := netaddr.CheckPort(*port); err != nil {
			return err
		}
		if *backlog < 1 {
			return fmt.Errorf("-backlog %d: must be at least 1", *backlog)
		}
		if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
			return fmt.Errorf("-d %s: not a directory", *dir)
		}
		return nil
	})
	if err != nil {
		return cli.Status(err)
	}

	ln, err := listen(*bind, *port, *backlog)
	if err != nil {
		fmt.Fprintf(stderr, "upstream: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	stopped := make(chan os.Signal, 1)
	go func() {
		sig := <-sigs
		stopped <- sig
		ln.Close()
	}()

	a := ln.Addr().(*net.TCPAddr)
	fmt.Fprintf(stdout, "Serving HTTP on %s port %d (http://%s/) ...\n", a.IP, a.Port, a)
	err = serve(ln, *dir, stderr)
	select {
	case sig := <-stopped:
		fmt.Fprintf(stderr, "upstream: %v received, exiting\n", sig)
		return 0
	default:
		fmt.Fprintf(stderr, "upstream: %v\n", err)
		return 1
	}
}

// listen builds the listening socket by hand because package net always
// asks for a backlog of net.core.somaxconn and offers no way to choose it.
func listen(host string, port, backlog int) (net.Listener, error) {
	sa, err := netaddr.ResolveIPv4(host, port)
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", host, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// Python's HTTPServer sets SO_REUSEADDR too: a test that restarts the
	// upstream on the same port must not trip over TIME_WAIT.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s port %d: %w", host, port, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	f := os.NewFile(uintptr(fd), "upstream-listener")
	defer f.Close() // FileListener works on its own duplicate
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	return ln, nil
}
