// Package cli holds the command-line convention the repository's tools
// share with the stages (DESIGN.md §3): -h prints the usage and exits 0; a
// command line that does not parse, or parses but makes no sense, prints one
// line saying why and exits 2.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// NewFlagSet returns the flag set of the tool name: it reports to out, and
// -h prints the usage lines, then every flag with its default.
func NewFlagSet(name string, out io.Writer, usage ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		for _, line := range usage {
			fmt.Fprintln(out, line)
		}
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args with fs, then runs finish, if any, which completes and
// checks the values the flags were parsed into. The flag package reports
// its own errors (and prints the usage for -h) on fs's output; an error from
// finish is reported there as one line, "name: error". Either way the error
// is returned, for Status to turn into an exit status.
func Parse(fs *flag.FlagSet, args []string, finish func() error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if finish == nil {
		return nil
	}
	if err := finish(); err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
		return err
	}
	return nil
}

// Status is the exit status for an error from Parse: 0 when -h asked for
// the usage, 2 for anything else — what flag.ExitOnError would exit with.
func Status(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
