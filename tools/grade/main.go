// Grade runs one stage's milestone checks against any server binary, in any
// language, laid out the way the eXpServer course's grader lays it out:
//
//	TMP/app/BIN                  the binary, started as ./BIN ../public/xps_config.json in TMP/app
//	TMP/public/                  the course's fixtures (cat.jpg, sample.pdf, sample.txt, test/, …)
//	TMP/public/xps_config.json   the course's config (stage 16 on)
//	TMP/temp/                    where the stage 12 confinement check writes file.txt
//
// on the course's ports 8001–8004, with an upstream on port 3000 serving
// public/: the repository's tools/upstream, which answers as
// python3 -m http.server does, or with -upstream python the Python server
// itself, as in the course's grader. The checks are the same code the
// repository's own tests run against its stages.
//
// The binary carries everything it needs — the fixtures, the config, the
// upstream — so it runs from any folder, on a machine without Go or this
// repository.
//
// Usage:
//
//	grade -stage N -bin PATH [flags]     grade one binary
//	grade -stage N -class DIR [flags]    grade every student folder in DIR
//	grade -version
//
// Every run prints its seed; -seed repeats a run's random inputs. Exit
// status for one binary: 0 every case passed, 1 a case failed, 3 the server
// never came up (it could not be run, crashed or exited at start, or hung),
// 2 a usage error or a machine that cannot grade (a port in use). With
// -class: 0 every submission passed every case, 1 otherwise, 2 as above.
// It never leaves a process behind.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"expserver-go/tests/harness"
	"expserver-go/tests/milestone"
	"expserver-go/tools/internal/cli"
	"expserver-go/tools/internal/upstream"
)

// Exit statuses.
const (
	exitPassed   = 0
	exitFailed   = 1
	exitUsage    = 2
	exitNotStart = 3
)

// The course's fixed ports.
var (
	coursePorts  = [4]int{8001, 8002, 8003, 8004}
	upstreamPort = 3000
)

type options struct {
	args      []string // the command line, for the report
	stage     int
	bin       string
	class     string
	build     string
	binName   string
	out       string
	jobs      int
	match     string
	long      bool
	jsonOut   string
	junitOut  string
	upstream  string
	seed      uint64
	points    string
	weights   milestone.Weights
	timeout   time.Duration
	caseLimit time.Duration
	version   bool
}

func main() {
	if code, ok := hidden(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(command(os.Args[1:], os.Stdout, os.Stderr))
}

// command is main for the visible command line.
func command(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return cli.Status(err)
	}
	if opts.version {
		fmt.Fprintln(stdout, readBuildInfo())
		return exitPassed
	}
	var code int
	if opts.class != "" {
		code, err = runClass(opts, stdout)
	} else {
		code, err = run(opts, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "grade: %v\n", err)
	}
	return code
}

// Hidden subcommands: the grading tool starts copies of itself to run the
// upstream (so it needs no other program) and, with -class, to grade a
// submission inside a private network namespace.
const (
	upstreamCommand = "__upstream"
	netnsCommand    = "__netns"
)

// hidden runs a hidden subcommand if args name one.
func hidden(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case upstreamCommand:
		return upstream.Main(args[1:], os.Stdout, os.Stderr), true
	case netnsCommand:
		if err := loopbackUp(); err != nil {
			fmt.Fprintf(os.Stderr, "grade: private network namespace: %v\n", err)
			return exitUsage, true
		}
		if len(args) == 1 { // a probe: can a namespace be made here?
			return 0, true
		}
		return command(args[1:], os.Stdout, os.Stderr), true
	}
	return 0, false
}

// useOwnUpstream makes the harness start this binary as the Go upstream.
func useOwnUpstream() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	harness.UpstreamCommand = func() (string, []string, error) {
		return self, []string{upstreamCommand}, nil
	}
	return nil
}

const usage = `usage: grade -stage N -bin PATH [flags]     grade one binary
       grade -stage N -class DIR [flags]    grade every student folder in DIR
       grade -version`

func parseFlags(args []string, out io.Writer) (options, error) {
	o := options{args: args}
	fs := cli.NewFlagSet("grade", out, usage,
		"\nRuns stage N's milestone checks against the binary, laid out as the course's grader lays it out.",
		"Exit status: 0 all passed, 1 a case failed, 3 the server never came up, 2 usage.\n")
	fs.IntVar(&o.stage, "stage", 0, "the `stage` to grade (6–23)")
	fs.StringVar(&o.bin, "bin", "", "the server `binary` to grade")
	fs.StringVar(&o.class, "class", "", "grade every student folder in `dir` (one binary per folder)")
	fs.StringVar(&o.build, "build", "", "with -class: run `command` (with sh -c) in each student folder first")
	fs.StringVar(&o.binName, "binname", "", "with -class: the binary's `name` in each folder (default: the folder's one executable file)")
	fs.StringVar(&o.out, "out", "grade-reports", "with -class: the `folder` for the reports and the summary")
	fs.IntVar(&o.jobs, "jobs", 0, "with -class: submissions graded at once when private network namespaces work (default: the number of CPUs)")
	fs.StringVar(&o.match, "case", "", "run only the cases whose name or title contains `substring` (several: a,b)")
	fs.BoolVar(&o.long, "long", false, "use the official grader's full sizes (4 GiB floods, 30 s CPU windows)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to `file`")
	fs.StringVar(&o.junitOut, "junit", "", "also write the results as JUnit XML to `file`")
	fs.StringVar(&o.upstream, "upstream", "go", "the upstream on port 3000: go (built in; answers as python3 -m http.server does) or python (python3 -m http.server itself, as in the course's grader; its listen backlog of 5 makes the 500-client check slow)")
	seed := fs.String("seed", "", "the random inputs' `seed`, to repeat a run (default: a new one, printed)")
	fs.StringVar(&o.points, "points", "", "a JSON `file` of case IDs and points that override the default weights")
	fs.DurationVar(&o.timeout, "timeout", 0, "the most one submission's grading may take (default: none for -bin, 10m for -class)")
	fs.DurationVar(&o.caseLimit, "case-timeout", 0, "the most one case may take (default: each case's own limit)")
	fs.BoolVar(&o.version, "version", false, "print the version and the commit it was built from")
	err := cli.Parse(fs, args, func() error {
		if o.version {
			return nil
		}
		switch {
		case fs.NArg() > 0:
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		case o.stage < milestone.FirstStage || o.stage > milestone.LastStage:
			return fmt.Errorf("-stage: want %d–%d, got %d", milestone.FirstStage, milestone.LastStage, o.stage)
		case o.bin == "" && o.class == "":
			return errors.New("-bin or -class: the binary to grade, or a folder of submissions, is required")
		case o.bin != "" && o.class != "":
			return errors.New("-bin and -class: give one or the other")
		case o.class == "" && (o.build != "" || o.binName != "" || o.jobs != 0 || setFlag(fs, "out")):
			return errors.New("-build, -binname, -jobs and -out go with -class")
		case o.class != "" && (o.jsonOut != "" || o.junitOut != ""):
			return errors.New("-json and -junit go with -bin; -class writes them for each submission into -out")
		case o.upstream != "python" && o.upstream != "go":
			return fmt.Errorf("-upstream: want go or python, got %q", o.upstream)
		case o.jobs < 0 || o.timeout < 0 || o.caseLimit < 0:
			return errors.New("-jobs, -timeout and -case-timeout cannot be negative")
		}
		if *seed != "" {
			s, err := strconv.ParseUint(*seed, 10, 64)
			if err != nil || s == 0 {
				return fmt.Errorf("-seed: want a positive integer, got %q", *seed)
			}
			o.seed = s
		}
		if o.points != "" {
			w, err := milestone.ReadWeights(o.points)
			if err != nil {
				return fmt.Errorf("-points: %w", err)
			}
			o.weights = w
		}
		if len(cases(o.stage, o.match)) == 0 {
			return fmt.Errorf("-case: no case of stage %d matches %q", o.stage, o.match)
		}
		return nil
	})
	return o, err
}

func setFlag(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// cases returns the stage's graded milestones (lessons are not graded)
// whose ID or title contains one of the comma-separated parts of match.
func cases(stage int, match string) []milestone.Milestone {
	var out []milestone.Milestone
	for _, m := range milestone.ForStage(stage) {
		if m.Lesson {
			continue
		}
		if match != "" && !matches(m, match) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func matches(m milestone.Milestone, match string) bool {
	for _, part := range strings.Split(match, ",") {
		if part != "" && (strings.Contains(m.ID, part) || strings.Contains(m.Title, part)) {
			return true
		}
	}
	return false
}

// plural is "1 case", "2 cases".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// newSeed is a seed for a run that was given none.
func newSeed() uint64 { return rand.Uint64()>>1 | 1 }

// fileSHA256 returns the hex sha256 of the file, or "" if it cannot be read.
func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// run grades one binary and writes its reports.
func run(o options, out io.Writer) (int, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return exitUsage, err
	}
	info, err := os.Stat(bin)
	switch {
	case err != nil:
		return exitUsage, fmt.Errorf("-bin %s: %v", o.bin, errors.Unwrap(err))
	case !info.Mode().IsRegular():
		return exitUsage, fmt.Errorf("-bin %s: not a file", o.bin)
	}
	todo := cases(o.stage, o.match)
	python := o.upstream == "python"
	if python && !harness.PythonAvailable() {
		return exitUsage, errors.New("-upstream python: python3 is not installed")
	}
	if err := useOwnUpstream(); err != nil {
		return exitUsage, err
	}
	if o.seed == 0 {
		o.seed = newSeed()
	}
	rep := newReport(o, bin, todo)

	fmt.Fprintf(out, "%s\ngrading %s (sha256 %.16s…) as stage %d: %s; seed %d (repeat with -seed %d)\n\n",
		readBuildInfo(), o.bin, rep.SHA256, o.stage, plural(len(todo), "case"), o.seed, o.seed)
	// A binary without execute permission is the student's, not a usage
	// error: it gets a report like any server that does not start, without
	// waiting for the ports.
	var env *milestone.Env
	closeEnv := func() {}
	// Whatever happens from here on, including a Ctrl-C or a SIGTERM from
	// -class, the processes started for the grading are stopped and the
	// layout removed; a server being started is stopped once Prepare has
	// it, within its start-up time.
	prepared := make(chan struct{})
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-interrupted
		fmt.Fprintln(os.Stderr, "grade: interrupted")
		<-prepared
		closeEnv()
		os.Exit(130)
	}()
	if info.Mode()&0o111 == 0 {
		err = &milestone.StartError{How: "could not be run", Detail: fmt.Sprintf("%s is not executable (mode %v)", filepath.Base(bin), info.Mode().Perm())}
	} else {
		release, err := harness.LockCoursePortsWaiting(func() {
			fmt.Fprintln(out, "waiting for another run on this machine to free ports 8001–8004 and 3000 …")
		})
		if err != nil {
			return exitUsage, err
		}
		defer release()
		for _, p := range append(coursePorts[:], upstreamPort) {
			if err := harness.PortFree(p); err != nil {
				return exitUsage, fmt.Errorf("%v; the grader needs ports 8001–8004 and 3000", err)
			}
		}
	}
	if err == nil {
		env, closeEnv, err = milestone.Prepare(milestone.Target{
			Stage: o.stage, Bin: bin, CopyBin: true, Args: []string{"../public/xps_config.json"},
			Host: "127.0.0.1", Ports: coursePorts, UpstreamPort: upstreamPort, Python: python, Long: o.long,
		})
	}
	close(prepared)
	defer closeEnv()
	var se *milestone.StartError
	switch {
	case errors.As(err, &se):
		rep.startFailed(se)
		rep.printHeader(out)
		for i := range rep.Cases {
			rep.printRow(out, i)
		}
	case err != nil:
		return exitUsage, fmt.Errorf("preparing the course layout: %w", err)
	default:
		env.Seed = o.seed
		env.CaseLimit = o.caseLimit
		if o.timeout > 0 {
			env.Deadline = rep.started.Add(o.timeout)
		}
		gradeCases(env, rep, todo, out)
	}
	rep.finish()
	rep.printSummary(out)
	if err := rep.write(o); err != nil {
		return exitUsage, err
	}
	return rep.ExitCode, nil
}

// gradeCases runs the cases one after another against the prepared server,
// printing a row as each finishes.
func gradeCases(env *milestone.Env, rep *report, todo []milestone.Milestone, out io.Writer) {
	rep.printHeader(out)
	rep.printRow(out, 0)
	browser := harness.ChromiumPath() != ""
	for i, m := range todo {
		c := &rep.Cases[i+1]
		if m.Browser && !browser {
			c.skip("needs chromium, which is not installed")
		} else {
			c.record(env.Run(m))
		}
		rep.printRow(out, i+1)
	}
}
