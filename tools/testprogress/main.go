// Testprogress turns the event stream of `go test -json` into the lines a
// person wants while a long run goes on: one line per package as it
// finishes, one line per test matching -progress as it finishes (the stages
// of the milestone suite), and the whole output of every test that fails.
//
// Usage:
//
//	go test -json ./... | testprogress [-progress REGEXP]
//
// `go test -v` over several packages holds each package's output until the
// package ends, so a run whose longest package takes minutes prints nothing
// for minutes; `go test -json` streams every event as it happens, and this
// program only chooses what to show. It exits 1 if any test or package
// failed, so the pipeline fails even without `set -o pipefail`.
package main

import (
	"fmt"
	"io"
	"os"
	"regexp"

	"expserver-go/tools/internal/cli"
)

func main() {
	fs := cli.NewFlagSet("testprogress", os.Stderr, "usage: go test -json ./... | testprogress [-progress REGEXP]",
		"\nPrints a line per package and per test matching -progress as each finishes, and the output of every failure.")
	progress := fs.String("progress", "", "print a line when a test whose name matches this `regexp` finishes")
	var re *regexp.Regexp
	err := cli.Parse(fs, os.Args[1:], func() error {
		if fs.NArg() != 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		if *progress == "" {
			return nil
		}
		var err error
		re, err = regexp.Compile(*progress)
		return err
	})
	if err != nil {
		os.Exit(cli.Status(err))
	}
	if failed, err := run(os.Stdin, os.Stdout, re); err != nil {
		fmt.Fprintln(os.Stderr, "testprogress:", err)
		os.Exit(1)
	} else if failed {
		os.Exit(1)
	}
}

// run is main without the process: it reads events from in and writes the
// report to out, and says whether anything failed.
func run(in io.Reader, out io.Writer, progress *regexp.Regexp) (failed bool, err error) {
	r := newReport(out, progress)
	if err := r.read(in); err != nil {
		return true, err
	}
	return r.finish(), nil
}
