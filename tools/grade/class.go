package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"expserver-go/tests/milestone"
)

// classTimeout is a submission's time limit with -class when -timeout is
// not given: far more than any stage takes against a correct server, and
// still bounded for a server that hangs case after case.
const classTimeout = 10 * time.Minute

// childGrace is how much longer than its own time limit a grading child
// may take to write its reports before it is killed.
const childGrace = milestone.StartTimeout + 30*time.Second

// submission is one student folder and its result.
type submission struct {
	Student string `json:"student"`
	Folder  string `json:"folder"`
	Report  string `json:"report"` // the JSON report, relative to -out
	rep     *report
}

// runClass grades every student folder in o.class and writes the reports
// and a summary into o.out.
func runClass(o options, out io.Writer) (int, error) {
	entries, err := os.ReadDir(o.class)
	if err != nil {
		return exitUsage, fmt.Errorf("-class: %w", err)
	}
	var subs []*submission
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			subs = append(subs, &submission{Student: e.Name(), Folder: filepath.Join(o.class, e.Name())})
		}
	}
	if len(subs) == 0 {
		return exitUsage, fmt.Errorf("-class %s: no student folders in it", o.class)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return exitUsage, err
	}
	self, err := os.Executable()
	if err != nil {
		return exitUsage, err
	}
	if o.seed == 0 {
		o.seed = newSeed()
	}
	if o.timeout == 0 {
		o.timeout = classTimeout
	}
	iso := findIsolation(self)
	jobs := 1
	if iso.attr != nil {
		jobs = o.jobs
		if jobs == 0 {
			jobs = runtime.NumCPU()
		}
	}
	start := time.Now()
	fmt.Fprintf(out, "%s\ngrading %s in %s as stage %d; seed %d (repeat with -seed %d)\n"+
		"isolation: %s; %d at a time; each within %v; reports in %s\n\n",
		readBuildInfo(), plural(len(subs), "submission"), o.class, o.stage, o.seed, o.seed, iso.name, jobs, o.timeout, o.out)

	// On Ctrl-C the gradings under way are asked to stop, so that each
	// stops its server and upstream and removes its layout.
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(interrupted)
	go func() {
		if _, ok := <-interrupted; ok {
			fmt.Fprintln(os.Stderr, "grade: interrupted; stopping the gradings under way")
			running.stop()
		}
	}()

	var mu sync.Mutex // guards out
	work := make(chan *submission)
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			for s := range work {
				s.rep = gradeSubmission(o, iso, self, s)
				mu.Lock()
				fmt.Fprintf(out, "%-20s %s\n", s.Student, s.rep.oneLine())
				mu.Unlock()
			}
		})
	}
	for _, s := range subs {
		work <- s
	}
	close(work)
	wg.Wait()
	if running.isStopped() {
		return 130, errors.New("interrupted: no summary written")
	}

	fmt.Fprintln(out)
	printClassTable(out, subs)
	if err := writeClassSummary(o, subs, iso.name, start); err != nil {
		return exitUsage, err
	}
	fmt.Fprintf(out, "\nsummary: %s, %s; %d submissions in %s\n",
		filepath.Join(o.out, "summary.csv"), filepath.Join(o.out, "summary.json"), len(subs), time.Since(start).Round(time.Second))
	for _, s := range subs {
		if s.rep.ExitCode != exitPassed {
			return exitFailed, nil
		}
	}
	return exitPassed, nil
}

// gradeSubmission builds and grades one student's folder in a child
// process and returns its report. Whatever happens — no binary, a build
// that fails, a grading that runs out of time — the student gets a report,
// written to the -out folder like any other.
func gradeSubmission(o options, iso isolation, self string, s *submission) *report {
	base := filepath.Join(o.out, fileName(s.Student))
	s.Report = filepath.Base(base) + ".json"
	sub := o
	sub.jsonOut, sub.junitOut = base+".json", base+".xml"
	os.Remove(sub.jsonOut) // a report left from an earlier run must not pass for this one
	deadline := time.Now().Add(o.timeout)
	failed := func(bin, how, detail, log string) *report {
		sub.args = []string{"-class", o.class, "-stage", strconv.Itoa(o.stage)}
		rep := newReport(sub, bin, cases(o.stage, o.match))
		rep.startFailed(&milestone.StartError{How: how, Detail: detail, Log: log})
		rep.finish()
		if err := rep.write(sub); err != nil {
			rep.Start.Detail += "; writing the report: " + err.Error()
		}
		return rep
	}

	if running.isStopped() {
		return failed(s.Folder, "was not graded", "the class run was interrupted", "")
	}
	if o.build != "" {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		cmd := exec.CommandContext(ctx, "sh", "-c", o.build)
		cmd.Dir = s.Folder
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		logOut, err := cmd.CombinedOutput()
		cancel()
		os.WriteFile(base+".build.log", logOut, 0o644)
		if err != nil {
			return failed(s.Folder, "did not build", fmt.Sprintf("%q in %s: %v", o.build, s.Folder, err), lastLines(string(logOut), 20))
		}
	}
	bin, err := findBinary(s.Folder, o.binName)
	if err != nil {
		return failed(s.Folder, "could not be run", err.Error(), "")
	}

	args := []string{"-stage", strconv.Itoa(o.stage), "-bin", bin, "-json", sub.jsonOut, "-junit", sub.junitOut,
		"-seed", strconv.FormatUint(o.seed, 10), "-timeout", time.Until(deadline).Round(time.Second).String(), "-upstream", o.upstream}
	if o.match != "" {
		args = append(args, "-case", o.match)
	}
	if o.points != "" {
		args = append(args, "-points", o.points)
	}
	if o.long {
		args = append(args, "-long")
	}
	if o.caseLimit > 0 {
		args = append(args, "-case-timeout", o.caseLimit.String())
	}
	logFile, err := os.Create(base + ".txt")
	if err != nil {
		return failed(bin, "could not be run", "the grading log: "+err.Error(), "")
	}
	defer logFile.Close()
	cmd := iso.command(self, args)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return failed(bin, "could not be run", "starting the grader: "+err.Error(), "")
	}
	if !running.add(cmd.Process.Pid) { // interrupted while it started
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	defer running.remove(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-time.After(time.Until(deadline) + childGrace):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return failed(bin, "timed out", fmt.Sprintf("grading was stopped after %v", o.timeout), "")
	}
	rep, err := readReport(sub.jsonOut)
	if err != nil {
		log, _ := os.ReadFile(base + ".txt")
		return failed(bin, "could not be graded", fmt.Sprintf("the grader ended (%v) without a report", waitErr), lastLines(string(log), 20))
	}
	return rep
}

// running holds the process groups of the gradings under way.
var running = &children{pids: map[int]bool{}}

type children struct {
	mu      sync.Mutex
	pids    map[int]bool
	stopped bool
}

// add records a grading under way; it returns false if the run is being
// stopped, and the grading must stop too.
func (c *children) add(pid int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pids[pid] = true
	return !c.stopped
}

func (c *children) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

func (c *children) remove(pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pids, pid)
}

// stop asks every grading under way to stop, with SIGTERM, so that each
// stops its server and removes its layout, and starts no more. A grading
// whose server is starting stops once it is up or has failed to come up;
// one still running after that is killed.
func (c *children) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.signal(syscall.SIGTERM)
	time.AfterFunc(milestone.StartTimeout+5*time.Second, func() { c.signal(syscall.SIGKILL) })
}

func (c *children) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid := range c.pids {
		syscall.Kill(-pid, sig)
	}
}

// findBinary returns the submission's binary in folder: the file called
// name, or else the folder's one executable file — or, when it has none,
// its one regular file, which then fails to run and says why.
func findBinary(folder, name string) (string, error) {
	if name != "" {
		p := filepath.Join(folder, name)
		if info, err := os.Stat(p); err != nil || !info.Mode().IsRegular() {
			return "", fmt.Errorf("no file %s in %s", name, folder)
		}
		return p, nil
	}
	entries, err := os.ReadDir(folder)
	if err != nil {
		return "", err
	}
	var executable, regular []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		regular = append(regular, e.Name())
		if info.Mode()&0o111 != 0 {
			executable = append(executable, e.Name())
		}
	}
	switch {
	case len(executable) == 1:
		return filepath.Join(folder, executable[0]), nil
	case len(executable) > 1:
		return "", fmt.Errorf("%s has several executable files (%s); name the binary with -binname", folder, strings.Join(executable, ", "))
	case len(regular) == 1:
		return filepath.Join(folder, regular[0]), nil
	}
	return "", fmt.Errorf("%s has no executable file", folder)
}

func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// fileName makes a student's folder name safe as the start of a file name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r < ' ' {
			return '_'
		}
		return r
	}, s)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// oneLine is a submission's line in the class run's progress.
func (r *report) oneLine() string {
	s := fmt.Sprintf("%-13s %2d/%-2d cases  %3d/%-3d points  %5.0fs", r.Outcome, r.Passed, len(r.Cases), r.Points, r.MaxPoints, r.Seconds)
	if r.Start != nil {
		return s + "  " + r.Start.How + ": " + firstLine(r.Start.Detail)
	}
	var failed []string
	for _, c := range r.Cases {
		if c.Status == statusFail {
			failed = append(failed, c.ID)
		}
	}
	if len(failed) > 0 {
		s += "  failed: " + strings.Join(failed, ", ")
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func printClassTable(out io.Writer, subs []*submission) {
	fmt.Fprintf(out, "%-20s %s\n", "student", "outcome       cases          points   time")
	for _, s := range subs {
		fmt.Fprintf(out, "%-20s %s\n", s.Student, s.rep.oneLine())
	}
}

// caseIDs returns the case IDs of every report, in their order, each once.
func caseIDs(subs []*submission) []string {
	seen := map[string]bool{}
	var ids []string
	for _, s := range subs {
		for _, c := range s.rep.Cases {
			if !seen[c.ID] {
				seen[c.ID] = true
				ids = append(ids, c.ID)
			}
		}
	}
	return ids
}

// writeClassSummary writes summary.csv (a row per student, a column per
// case, the points earned) and summary.json (the same with every case's
// status) into o.out.
func writeClassSummary(o options, subs []*submission, isolation string, start time.Time) error {
	ids := caseIDs(subs)
	f, err := os.Create(filepath.Join(o.out, "summary.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(append([]string{"student", "outcome", "exit_code", "points", "max_points", "passed", "failed", "skipped", "not_run", "seconds", "binary_sha256"}, ids...))
	for _, s := range subs {
		r := s.rep
		row := []string{s.Student, r.Outcome, strconv.Itoa(r.ExitCode), strconv.Itoa(r.Points), strconv.Itoa(r.MaxPoints),
			strconv.Itoa(r.Passed), strconv.Itoa(r.Failed), strconv.Itoa(r.Skipped), strconv.Itoa(r.NotRun),
			strconv.FormatFloat(r.Seconds, 'f', 1, 64), r.SHA256}
		byID := map[string]caseResult{}
		for _, c := range r.Cases {
			byID[c.ID] = c
		}
		for _, id := range ids {
			row = append(row, strconv.Itoa(byID[id].Points))
		}
		w.Write(row)
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		return err
	}

	type caseCell struct {
		Status    string `json:"status"`
		Points    int    `json:"points"`
		MaxPoints int    `json:"max_points"`
	}
	type row struct {
		*submission
		Outcome   string              `json:"outcome"`
		ExitCode  int                 `json:"exit_code"`
		Binary    string              `json:"binary"`
		SHA256    string              `json:"binary_sha256"`
		Points    int                 `json:"points"`
		MaxPoints int                 `json:"max_points"`
		Seconds   float64             `json:"seconds"`
		Start     *startFailure       `json:"start_failure,omitempty"`
		Cases     map[string]caseCell `json:"cases"`
	}
	summary := struct {
		Tool        buildInfo `json:"tool"`
		Stage       int       `json:"stage"`
		Seed        uint64    `json:"seed"`
		Flags       []string  `json:"flags"`
		Started     string    `json:"started"`
		Seconds     float64   `json:"seconds"`
		Isolation   string    `json:"isolation"`
		Cases       []string  `json:"cases"`
		Submissions []row     `json:"submissions"`
	}{readBuildInfo(), o.stage, o.seed, o.args, start.UTC().Format(time.RFC3339), time.Since(start).Seconds(), isolation, ids, nil}
	for _, s := range subs {
		r := s.rep
		cells := map[string]caseCell{}
		for _, c := range r.Cases {
			cells[c.ID] = caseCell{c.Status, c.Points, c.MaxPoints}
		}
		summary.Submissions = append(summary.Submissions, row{s, r.Outcome, r.ExitCode, r.Binary, r.SHA256, r.Points, r.MaxPoints, r.Seconds, r.Start, cells})
	}
	sort.SliceStable(summary.Submissions, func(i, j int) bool { return summary.Submissions[i].Student < summary.Submissions[j].Student })
	b, err := json.MarshalIndent(summary, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.out, "summary.json"), append(b, '\n'), 0o644)
}
