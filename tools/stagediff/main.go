// Stagediff prints what changed from stage N-1 to stage N as a unified
// diff, over the same files stagecheck compares, and keeps the generated
// "What changed" block of each stage README up to date.
//
// Usage:
//
//	go run ./tools/stagediff N          unified diff of stage N-1 → N
//	go run ./tools/stagediff -stat N    per-file summary and a total
//	go run ./tools/stagediff -write [N] regenerate the README block (all stages without N)
//	go run ./tools/stagediff -check [N] exit 1 if a README block is stale
//
// N is the stage number without zero padding (6…17). The first stage has no
// predecessor, so it has no diff and no README block.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"expserver-go/tests/harness"
	"expserver-go/tools/internal/cli"
	"expserver-go/tools/internal/stagefs"
)

func main() {
	root, err := harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stagediff:", err)
		os.Exit(1)
	}
	os.Exit(run(root, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole tool with its world passed in, so tests can run it on
// a fake repository; it returns the exit status.
func run(root string, args []string, stdout, stderr io.Writer) int {
	fl := cli.NewFlagSet("stagediff", stderr, "usage: stagediff [-stat] N | stagediff -write [N] | stagediff -check [N]")
	stat := fl.Bool("stat", false, "print only a per-file summary and a total")
	write := fl.Bool("write", false, "rewrite the stagediff block of the stage README (every stage if N is omitted)")
	check := fl.Bool("check", false, "exit 1 if the stagediff block of the stage README is stale (every stage if N is omitted)")
	if err := cli.Parse(fl, args, nil); err != nil {
		return cli.Status(err)
	}
	m, chosen := modeDiff, 0
	for flagMode, on := range map[mode]bool{modeStat: *stat, modeWrite: *write, modeCheck: *check} {
		if on {
			m = flagMode
			chosen++
		}
	}
	readmeMode := m == modeWrite || m == modeCheck
	if chosen > 1 || fl.NArg() > 1 || (fl.NArg() == 0 && !readmeMode) {
		fl.Usage()
		return 2
	}

	stages, err := stagefs.Stages(root)
	if err != nil {
		fmt.Fprintln(stderr, "stagediff:", err)
		return 1
	}
	var targets []stagefs.Stage
	if fl.NArg() == 1 {
		n, err := strconv.Atoi(fl.Arg(0))
		if err != nil || n < 0 {
			fmt.Fprintf(stderr, "stagediff: %q is not a stage number; give it without padding, such as 10\n", fl.Arg(0))
			return 2
		}
		s, ok := stagefs.Find(stages, n)
		if !ok {
			fmt.Fprintf(stderr, "stagediff: no stage %d folder in %s/\n", n, stagefs.StagesDir)
			return 1
		}
		if n <= stagefs.FirstStage {
			fmt.Fprintf(stderr, "stagediff: stage %d is the first stage; it has no previous stage to diff against\n", n)
			return 0
		}
		targets = []stagefs.Stage{s}
	} else {
		for _, s := range stages {
			if s.Num > stagefs.FirstStage {
				targets = append(targets, s)
			}
		}
	}

	status := 0
	for _, s := range targets {
		if err := runStage(root, stages, s, m, stdout); err != nil {
			fmt.Fprintln(stderr, "stagediff:", err)
			status = 1
		}
	}
	return status
}

// mode is what stagediff was asked to do.
type mode int

const (
	modeDiff mode = iota
	modeStat
	modeWrite
	modeCheck
)

// runStage does mode m for stage s.
func runStage(root string, stages []stagefs.Stage, s stagefs.Stage, m mode, stdout io.Writer) error {
	prev, err := stagefs.Previous(stages, s)
	if err != nil {
		return err
	}
	d, err := loadStageDiff(root, prev, s)
	if err != nil {
		return err
	}
	switch m {
	case modeStat:
		_, err = io.WriteString(stdout, d.stat())
		return err
	case modeDiff:
		_, err = io.WriteString(stdout, d.unified())
		return err
	}

	name := path.Join(s.Dir(), stagefs.ReadmeName)
	file := filepath.Join(root, filepath.FromSlash(name))
	info, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: missing; create it with %s and %s lines where the generated diff belongs", name, beginMarker, endMarker)
	}
	if err != nil {
		return err
	}
	old, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	updated, err := replaceBlock(name, string(old), d.readmeBlock())
	if err != nil {
		return err
	}
	if updated == string(old) {
		return nil
	}
	if m == modeCheck {
		return fmt.Errorf("%s: the stagediff block is stale; run go run ./tools/stagediff -write %d", name, s.Num)
	}
	if err := os.WriteFile(file, []byte(updated), info.Mode().Perm()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stagediff: wrote %s\n", name)
	return nil
}
