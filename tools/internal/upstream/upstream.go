// Package upstream is the HTTP file server behind the upstream command (see
// tools/upstream for what it does and where it differs from
// python3 -m http.server). It is a package so that the grading tool can
// carry the same server inside its own binary.
package upstream

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

// Main is the upstream command without the process around it: it parses
// args, serves until SIGINT or SIGTERM and returns the exit status. The
// upstream command and the grading tool, which carries the upstream inside
// its own binary, both run it.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("upstream", stderr, "usage: upstream [-port 3000] [-bind 127.0.0.1] [-d DIR] [-backlog 1024] [-silent] [-record DIR] [PORT]")
	port := fs.Int("port", 3000, "TCP `port` to listen on")
	bind := fs.String("bind", "127.0.0.1", "IPv4 `address` or host name to bind")
	dir := fs.String("d", ".", "`directory` to serve")
	backlog := fs.Int("backlog", 1024, "listen queue `length`")
	silent := fs.Bool("silent", false, "accept connections and read them, but never answer nor close them (an upstream that hangs)")
	record := fs.String("record", "", "write the bytes received on each connection, once it ends, to `folder`/N.raw (N from 1, in the order accepted)")
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
		if st, err := os.Stat(*record); *record != "" && (err != nil || !st.IsDir()) {
			return fmt.Errorf("-record %s: not a directory", *record)
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
	err = serveMode(ln, *dir, stderr, mode{silent: *silent, record: *record})
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
