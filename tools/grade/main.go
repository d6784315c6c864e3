// Grade runs one stage's milestone checks against any server binary, in any
// language, laid out the way the eXpServer course's grader lays it out:
//
//	TMP/app/BIN                  the binary, started as ./BIN ../public/xps_config.json in TMP/app
//	TMP/public/                  the course's fixtures (cat.jpg, sample.pdf, sample.txt, test/, …)
//	TMP/public/xps_config.json   the course's stage 16–17 config
//	TMP/temp/                    where the stage 12 confinement check writes file.txt
//
// on the course's ports 8001–8004, with an upstream on port 3000 serving
// public/: tools/upstream, which answers as python3 -m http.server does, or
// with -upstream python the Python server itself, as in the course's grader.
// The checks are the same code the repository's own tests run against its
// stages.
//
// Usage:
//
//	grade -stage N -bin PATH [-case SUBSTRING] [-long] [-json FILE] [-junit FILE] [-upstream go|python]
//
// It prints a table of cases, ends with "N passed, M failed", and exits 1 if
// any case failed (2 for a usage error). It never leaves a process behind.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"expserver-go/tests/harness"
	"expserver-go/tests/milestone"
	"expserver-go/tools/internal/cli"
)

// The course's fixed ports.
var (
	coursePorts  = [4]int{8001, 8002, 8003, 8004}
	upstreamPort = 3000
)

type options struct {
	stage    int
	bin      string
	match    string
	long     bool
	jsonOut  string
	junitOut string
	upstream string
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(cli.Status(err))
	}
	code, err := run(opts, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "grade: %v\n", err)
	}
	os.Exit(code)
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := cli.NewFlagSet("grade", out,
		"usage: grade -stage N -bin PATH [-case SUBSTRING] [-long] [-json FILE] [-junit FILE] [-upstream go|python]",
		"\nRuns stage N's milestone checks against the binary, laid out as the course's grader lays it out.")
	fs.IntVar(&o.stage, "stage", 0, "the `stage` to grade (6–17)")
	fs.StringVar(&o.bin, "bin", "", "the server `binary` to grade")
	fs.StringVar(&o.match, "case", "", "run only the cases whose name contains `substring`")
	fs.BoolVar(&o.long, "long", false, "use the official grader's full sizes (4 GiB floods, 30 s CPU windows)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to `file`")
	fs.StringVar(&o.junitOut, "junit", "", "also write the results as JUnit XML to `file`")
	fs.StringVar(&o.upstream, "upstream", "go", "the upstream on port 3000: go (tools/upstream, which answers as python3 -m http.server does) or python (python3 -m http.server itself, as in the course's grader; its listen backlog of 5 makes the 500-client check slow)")
	err := cli.Parse(fs, args, func() error {
		switch {
		case fs.NArg() > 0:
			return fmt.Errorf("unexpected argument %q", fs.Arg(0))
		case o.stage < milestone.FirstStage || o.stage > milestone.LastStage:
			return fmt.Errorf("-stage: want %d–%d, got %d", milestone.FirstStage, milestone.LastStage, o.stage)
		case o.bin == "":
			return errors.New("-bin: the binary to grade is required")
		case o.upstream != "python" && o.upstream != "go":
			return fmt.Errorf("-upstream: want go or python, got %q", o.upstream)
		}
		return nil
	})
	return o, err
}

// cases returns the stage's graded milestones (lessons are not graded)
// whose ID or title contains match.
func cases(stage int, match string) []milestone.Milestone {
	var out []milestone.Milestone
	for _, m := range milestone.ForStage(stage) {
		if m.Lesson {
			continue
		}
		if match != "" && !strings.Contains(m.ID, match) && !strings.Contains(m.Title, match) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func run(o options, out io.Writer) (int, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return 2, err
	}
	if info, err := os.Stat(bin); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return 2, fmt.Errorf("-bin %s: not an executable file", o.bin)
	}
	todo := cases(o.stage, o.match)
	if len(todo) == 0 {
		return 2, fmt.Errorf("no case of stage %d matches %q", o.stage, o.match)
	}
	python := o.upstream == "python"
	if python && !harness.PythonAvailable() {
		return 2, errors.New("-upstream python: python3 is not installed")
	}

	release, err := harness.LockCoursePorts()
	if err != nil {
		return 2, err
	}
	defer release()
	ports := append(coursePorts[:], upstreamPort)
	for _, p := range ports {
		if err := harness.PortFree(p); err != nil {
			return 2, fmt.Errorf("%v; the grader needs ports 8001–8004 and 3000", err)
		}
	}

	fmt.Fprintf(out, "grading %s as stage %d: %d cases (grader: yes marks the official grader's own); upstream: %s\n\n",
		o.bin, o.stage, len(todo), map[bool]string{true: "python3 -m http.server", false: "tools/upstream"}[python])
	env, closeEnv, err := milestone.Prepare(milestone.Target{
		Stage: o.stage, Bin: bin, CopyBin: true, Args: []string{"../public/xps_config.json"},
		Host: "127.0.0.1", Ports: coursePorts, UpstreamPort: upstreamPort, Python: python, Long: o.long,
	})
	// Whatever happens from here on, including a Ctrl-C, the processes
	// started for the grading are stopped.
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-interrupted
		closeEnv()
		harness.RemoveBuilds()
		fmt.Fprintln(os.Stderr, "grade: interrupted")
		os.Exit(130)
	}()
	// Prepare builds the Go upstream; its binary goes once the run ends.
	defer harness.RemoveBuilds()
	defer closeEnv()
	if err != nil {
		return 1, fmt.Errorf("the server did not start: %w", err)
	}

	// Rows are printed as each case finishes, so the widths are fixed up
	// front rather than measured over the whole table.
	width := len("case")
	for _, m := range todo {
		width = max(width, len(m.ID))
	}
	start := time.Now()
	var results []milestone.Result
	fmt.Fprintf(out, "%-3s %-*s %-6s %-6s %s\n", "#", width, "case", "grader", "result", "details")
	browser := harness.ChromiumPath() != ""
	skipped := 0
	for i, m := range todo {
		official := ""
		if m.Grader {
			official = "yes"
		}
		if m.Browser && !browser {
			skipped++
			fmt.Fprintf(out, "%-3d %-*s %-6s %-6s %s\n", i+1, width, m.ID, official, "skip", "needs chromium, which is not installed")
			continue
		}
		r := env.Run(m)
		results = append(results, r)
		fmt.Fprintf(out, "%-3d %-*s %-6s %-6s %s\n", i+1, width, m.ID, official, verdict(r), short(r, 100))
	}
	elapsed := time.Since(start)
	report := newReport(o, bin, results, elapsed)
	fmt.Fprintf(out, "\n%d passed, %d failed", report.Passed, report.Failed)
	if skipped > 0 {
		fmt.Fprintf(out, ", %d skipped", skipped)
	}
	fmt.Fprintf(out, " (%s)\n", elapsed.Round(time.Second))
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(out, "\n%s — %s\n%s\n", r.Milestone.ID, r.Milestone.Title, indent(r.Err.Error(), "  "))
			if r.Log != "" {
				fmt.Fprintf(out, "  server log (tail):\n%s\n", indent(r.Log, "    "))
			}
		}
	}
	if o.jsonOut != "" {
		if err := report.writeJSON(o.jsonOut); err != nil {
			return 2, err
		}
	}
	if o.junitOut != "" {
		if err := report.writeJUnit(o.junitOut); err != nil {
			return 2, err
		}
	}
	if report.Failed > 0 {
		return 1, nil
	}
	return 0, nil
}

func verdict(r milestone.Result) string {
	if r.Err == nil {
		return "pass"
	}
	return "FAIL"
}

// short is the details column: expected versus observed, on one line.
func short(r milestone.Result, max int) string {
	if r.Err == nil {
		return r.Milestone.Title
	}
	s := strings.Join(strings.Fields(r.Err.Error()), " ")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}
