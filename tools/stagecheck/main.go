// Stagecheck keeps the stage snapshots honest. It checks that every stage's
// CHANGES manifest lists exactly what differs from the stage before, file
// by file and, in Go source, declaration by declaration (so a fix made in
// one stage and not carried into the next is caught), that stages and
// common/ import only what they may, and that the stage folders match the
// table in docs/roadmap.md. It prints one problem per line and exits 1 if
// there are any. docs/testing.md describes the manifest format.
//
// Usage: go run ./tools/stagecheck
//
// The same checks run under go test ./..., so a drifted copy fails the
// build rather than waiting for someone to remember this tool.
package main

import (
	"fmt"
	"os"

	"expserver-go/tests/harness"
	"expserver-go/tools/internal/cli"
)

// checks is the list both main and TestRepository run, so the test cannot
// check less than the tool.
var checks = []struct {
	name string
	run  func(root string) []string
}{
	{"manifests", checkManifests},
	{"imports", checkImports},
	{"roadmap", checkRoadmap},
	{"mirrors", checkMirrors},
}

func main() {
	fs := cli.NewFlagSet("stagecheck", os.Stderr, "usage: go run ./tools/stagecheck",
		"\nChecks CHANGES manifests, import rules and docs/roadmap.md; prints one problem per line.")
	err := cli.Parse(fs, os.Args[1:], func() error {
		if fs.NArg() != 0 {
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		return nil
	})
	if err != nil {
		os.Exit(cli.Status(err))
	}
	root, err := harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stagecheck:", err)
		os.Exit(1)
	}
	failed := false
	for _, c := range checks {
		for _, p := range c.run(root) {
			fmt.Println(p)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// problemf formats one line of stagecheck's report.
func problemf(format string, args ...any) string {
	return "stagecheck: " + fmt.Sprintf(format, args...)
}
