// Stagediff prints what changed from stage N-1 to stage N as a unified
// diff, over the same files stagecheck compares; keeps each stage's
// generated CHANGES.diff and the summary block of its README up to date;
// starts a CHANGES manifest; and carries a fix made in one stage into the
// later stages that still hold the code it fixed.
//
// Usage:
//
//	go run ./tools/stagediff N               unified diff of stage N-1 → N
//	go run ./tools/stagediff -stat N         per-file summary and a total
//	go run ./tools/stagediff -write [N]      regenerate CHANGES.diff and the README block (all stages without N)
//	go run ./tools/stagediff -check [N]      exit 1 if CHANGES.diff or the README block is stale
//	go run ./tools/stagediff -manifest [-n] [N]
//	                                         rewrite the declaration lines of CHANGES from the tree
//	go run ./tools/stagediff -carry [-n] [-base REV] [-only NAMES] N
//	                                         carry the uncommitted edits of stage N into later stages
//
// N is the stage number without zero padding (6…17). The first stage has no
// predecessor, so it has no diff, no manifest and no README block. -n prints
// what -manifest or -carry would write without writing it.
//
// -manifest is a way to start a manifest or to bring its declaration lines
// up to date after an edit that is meant; it is not a way to silence
// stagecheck. It keeps the # prose and the file lines as written and
// regenerates only the declaration lines, which must then be read: each one
// is a claim that the stage changes that declaration on purpose.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

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
	t := &tool{root: root, stdout: os.Stdout, stderr: os.Stderr, base: func(rev string) baseTree { return gitTree{root, rev} }}
	os.Exit(t.run(os.Args[1:]))
}

// tool is stagediff with its world passed in, so tests can run it on a
// fake repository.
type tool struct {
	root           string
	stdout, stderr io.Writer
	// base returns the committed tree -carry compares stage N with: git's
	// revision rev, or a fake in tests.
	base func(rev string) baseTree
}

const usage = "usage: stagediff [-stat] N | stagediff -write [N] | stagediff -check [N] | stagediff -manifest [-n] [N] | stagediff -carry [-n] [-base REV] [-only NAMES] N"

// mode is what stagediff was asked to do.
type mode int

const (
	modeDiff mode = iota
	modeStat
	modeWrite
	modeCheck
	modeManifest
	modeCarry
)

// run runs the tool with the command-line arguments args and returns the
// exit status.
func (t *tool) run(args []string) int {
	fl := cli.NewFlagSet("stagediff", t.stderr, usage)
	stat := fl.Bool("stat", false, "print only a per-file summary and a total")
	write := fl.Bool("write", false, "rewrite CHANGES.diff and the stagediff block of the stage README (every stage if N is omitted)")
	check := fl.Bool("check", false, "exit 1 if CHANGES.diff or the README block is stale (every stage if N is omitted)")
	manifest := fl.Bool("manifest", false, "rewrite the declaration lines of the stage's CHANGES from the tree, keeping its prose and file lines (every stage if N is omitted)")
	carry := fl.Bool("carry", false, "carry the uncommitted edits of stage N into every later stage that still has the code they replace")
	dryRun := fl.Bool("n", false, "with -manifest or -carry: print what would be written, write nothing")
	rev := fl.String("base", "HEAD", "with -carry: the git revision holding stage N before its edits")
	only := fl.String("only", "", "with -carry: carry only these files and declarations, comma-separated (pipe.go,(*session).check)")
	if err := cli.Parse(fl, args, nil); err != nil {
		return cli.Status(err)
	}
	m, chosen := modeDiff, 0
	for flagMode, on := range map[mode]bool{modeStat: *stat, modeWrite: *write, modeCheck: *check, modeManifest: *manifest, modeCarry: *carry} {
		if on {
			m = flagMode
			chosen++
		}
	}
	allowed := m == modeWrite || m == modeCheck || m == modeManifest
	carryFlagSet := false
	fl.Visit(func(f *flag.Flag) { carryFlagSet = carryFlagSet || f.Name == "base" || f.Name == "only" })
	if chosen > 1 || fl.NArg() > 1 || (fl.NArg() == 0 && !allowed) ||
		(*dryRun && m != modeManifest && m != modeCarry) || (carryFlagSet && m != modeCarry) {
		fl.Usage()
		return 2
	}

	stages, err := stagefs.Stages(t.root)
	if err != nil {
		fmt.Fprintln(t.stderr, "stagediff:", err)
		return 1
	}
	var targets []stagefs.Stage
	if fl.NArg() == 1 {
		n, err := strconv.Atoi(fl.Arg(0))
		if err != nil || n < 0 {
			fmt.Fprintf(t.stderr, "stagediff: %q is not a stage number; give it without padding, such as 10\n", fl.Arg(0))
			return 2
		}
		s, ok := stagefs.Find(stages, n)
		if !ok {
			fmt.Fprintf(t.stderr, "stagediff: no stage %d folder in %s/\n", n, stagefs.StagesDir)
			return 1
		}
		if m == modeCarry {
			var names []string
			if *only != "" {
				names = strings.Split(*only, ",")
			}
			return t.carry(stages, s, t.base(*rev), names, *dryRun)
		}
		if n <= stagefs.FirstStage {
			fmt.Fprintf(t.stderr, "stagediff: stage %d is the first stage; it has no previous stage to diff against\n", n)
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
		if err := t.runStage(stages, s, m, *dryRun); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintln(t.stderr, "stagediff:", line)
			}
			status = 1
		}
	}
	return status
}

// runStage does mode m for stage s.
func (t *tool) runStage(stages []stagefs.Stage, s stagefs.Stage, m mode, dryRun bool) error {
	prev, err := stagefs.Previous(stages, s)
	if err != nil {
		return err
	}
	if m == modeManifest {
		return t.writeManifest(prev, s, dryRun)
	}
	d, err := loadStageDiff(t.root, prev, s)
	if err != nil {
		return err
	}
	switch m {
	case modeStat:
		_, err = io.WriteString(t.stdout, d.stat())
		return err
	case modeDiff:
		_, err = io.WriteString(t.stdout, d.unified())
		return err
	}
	return t.generated(d, m == modeCheck)
}
