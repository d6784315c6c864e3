package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"expserver-go/tests/milestone"
)

// report is the result of grading one binary: what the table shows, and
// what the JSON and JUnit files carry for a learning management system.
type report struct {
	Tool     buildInfo `json:"tool"`
	Stage    int       `json:"stage"`
	Binary   string    `json:"binary"`
	SHA256   string    `json:"binary_sha256"`
	Seed     uint64    `json:"seed"`
	Flags    []string  `json:"flags"`
	Started  string    `json:"started"` // RFC 3339
	Seconds  float64   `json:"seconds"`
	Outcome  string    `json:"outcome"` // "passed", "failed", "did not start" or, with -class, "not graded"
	ExitCode int       `json:"exit_code"`
	// Start says why the server never came up, when it did not.
	Start  *startFailure      `json:"start_failure,omitempty"`
	totals                    // passed, failed, … over every case
	Groups map[string]*totals `json:"groups"` // by group: "official" and "extra"
	Cases  []caseResult       `json:"cases"`

	started time.Time
}

type startFailure struct {
	How    string `json:"how"` // "could not be run", "did not build", "crashed", "exited", "hung", "timed out", "could not be graded", "was not graded"
	Detail string `json:"detail"`
	Log    string `json:"server_log,omitempty"`
}

// totals add up cases. A skipped case — one the machine or the binary's
// interface cannot run, like a browser check without chromium — is not in
// MaxPoints but in SkippedPoints, so a report neither penalises a student
// for the grader's machine nor reads as full marks; a case that did not
// run because of the server (a crash, the time limit) is in MaxPoints.
type totals struct {
	Passed        int `json:"passed"`
	Failed        int `json:"failed"`
	Skipped       int `json:"skipped"`
	NotRun        int `json:"not_run"`
	Points        int `json:"points"`
	MaxPoints     int `json:"max_points"`
	SkippedPoints int `json:"skipped_points"`
}

// Case statuses.
const (
	statusPass   = "pass"
	statusFail   = "fail"
	statusSkip   = "skip"    // not run on purpose: the machine lacks what it needs
	statusNotRun = "not run" // could not run: no server, or no time left
	statusToDo   = "pending" // not graded yet
)

// Case groups.
const (
	groupOfficial = "official" // one of the official grader's cases
	groupExtra    = "extra"    // a check beyond the official grader
	groupStart    = "start"    // the server-starts case, worth no points
)

type caseResult struct {
	ID        string  `json:"id"`
	Title     string  `json:"title"`
	Group     string  `json:"group"`
	Status    string  `json:"status"`
	Points    int     `json:"points"`
	MaxPoints int     `json:"max_points"`
	Seconds   float64 `json:"seconds"`
	Expected  string  `json:"expected,omitempty"`
	Observed  string  `json:"observed,omitempty"`
	Error     string  `json:"error,omitempty"`
	Hint      string  `json:"hint,omitempty"`
	// Reason says why a case was skipped or did not run.
	Reason string `json:"reason,omitempty"`
	// Crash says how the server ended when it died during this case; it
	// was restarted for the next one.
	Crash string `json:"crash,omitempty"`
	// CrashedBy names the case after which the server died, when that is
	// why this one did not run.
	CrashedBy string `json:"crashed_by,omitempty"`
	TimedOut  bool   `json:"timed_out,omitempty"`
	Inputs    string `json:"inputs,omitempty"` // digest of the random inputs sent
	Log       string `json:"server_log,omitempty"`
}

// startCaseID is the first case of every report: the server starts.
const startCaseID = "server-starts"

// newReport starts the report of a run over todo: every case pending but
// the first, which the server passes by coming up.
func newReport(o options, bin string, todo []milestone.Milestone) *report {
	now := time.Now()
	r := &report{
		Tool: readBuildInfo(), Stage: o.stage, Binary: bin, SHA256: fileSHA256(bin), Seed: o.seed,
		Flags: o.args, Started: now.UTC().Format(time.RFC3339), started: now,
	}
	if r.Flags == nil {
		r.Flags = []string{}
	}
	r.Cases = append(r.Cases, caseResult{
		ID: startCaseID, Title: fmt.Sprintf("the binary starts and accepts on ports 8001–8004 within %v", milestone.StartTimeout),
		Group: groupStart, Status: statusPass,
		Hint: "run it by hand as the grader does (./BIN ../public/xps_config.json, from a folder beside public/) — under gdb, or built with -fsanitize=address, if it crashes: it must keep running and listen on all four ports",
	})
	for _, m := range todo {
		g := groupExtra
		if m.Grader {
			g = groupOfficial
		}
		p := o.weights.Points(m)
		r.Cases = append(r.Cases, caseResult{ID: m.ID, Title: m.Title, Group: g, Status: statusToDo, MaxPoints: p, Hint: milestone.Hint(m.ID)})
	}
	return r
}

// startFailed records a server that never came up: the first case fails
// with the reason, and no other case runs.
func (r *report) startFailed(se *milestone.StartError) {
	r.Start = &startFailure{How: se.How, Detail: se.Detail, Log: se.Log}
	c := &r.Cases[0]
	c.Status, c.Error, c.Log = statusFail, se.Error(), se.Log
	c.Expected = "the server running and accepting on ports 8001–8004"
	c.Observed = "it " + se.How + ": " + se.Detail
	if se.How == "crashed" {
		c.Crash = se.Detail
	}
	reason := "the server never came up"
	if gradingFailed(se.How) {
		reason = se.Detail
	}
	for i := range r.Cases[1:] {
		r.Cases[i+1].notRun(reason)
	}
}

// gradingFailed reports whether a start failure is the grading's own — it
// ran out of time, or ended without a report — rather than the server's.
func gradingFailed(how string) bool {
	return how == "timed out" || how == "could not be graded" || how == "was not graded"
}

// record fills the case in from the milestone's result.
func (c *caseResult) record(res milestone.Result) {
	c.Seconds = res.Elapsed.Seconds()
	c.Inputs, c.Crash, c.TimedOut = res.Inputs, res.Crash, res.TimedOut
	reason, skipped := milestone.IsSkipped(res.Err)
	switch {
	case res.NotRun != "":
		c.notRun(res.NotRun)
		c.CrashedBy = res.CrashedBy
	case skipped && res.Crash == "":
		c.skip(reason)
	case res.Err == nil:
		c.Status, c.Points = statusPass, c.MaxPoints
	default:
		c.Status, c.Error, c.Log = statusFail, res.Err.Error(), res.Log
		var f *milestone.Failure
		if errors.As(res.Err, &f) {
			c.Expected, c.Observed = f.Expected, f.Observed
		}
	}
}

func (c *caseResult) skip(reason string) { c.Status, c.Reason = statusSkip, reason }

func (c *caseResult) notRun(reason string) { c.Status, c.Reason = statusNotRun, reason }

// finish adds up the totals and sets the outcome and exit status.
func (r *report) finish() {
	r.Seconds = time.Since(r.started).Seconds()
	r.totals = totals{}
	r.Groups = map[string]*totals{groupOfficial: {}, groupExtra: {}}
	for i := range r.Cases {
		c := &r.Cases[i]
		if c.Status == statusToDo {
			c.notRun("the run ended first")
		}
		for _, t := range []*totals{&r.totals, r.Groups[c.Group]} {
			if t == nil {
				continue
			}
			t.Points += c.Points
			switch c.Status {
			case statusPass:
				t.Passed++
			case statusFail:
				t.Failed++
			case statusSkip:
				t.Skipped++
				t.SkippedPoints += c.MaxPoints
				continue
			default:
				t.NotRun++
			}
			t.MaxPoints += c.MaxPoints
		}
	}
	switch {
	case r.Start != nil && gradingFailed(r.Start.How):
		r.Outcome, r.ExitCode = "not graded", exitFailed
	case r.Start != nil:
		r.Outcome, r.ExitCode = "did not start", exitNotStart
	case r.Failed > 0 || r.NotRun > 0:
		r.Outcome, r.ExitCode = "failed", exitFailed
	default:
		r.Outcome, r.ExitCode = "passed", exitPassed
	}
}

// The table.

func (r *report) width() int {
	w := len("case")
	for _, c := range r.Cases {
		w = max(w, len(c.ID))
	}
	return w
}

func (r *report) printHeader(out io.Writer) {
	fmt.Fprintf(out, "%-3s %-*s %-8s %-7s %-6s %s\n", "#", r.width(), "case", "group", "result", "points", "details")
}

// printRow prints case i, as soon as it is known: rows are printed as the
// cases finish, so a long run shows its progress.
func (r *report) printRow(out io.Writer, i int) {
	c := r.Cases[i]
	pts := ""
	if c.Group != groupStart {
		pts = fmt.Sprintf("%d/%d", c.Points, c.MaxPoints)
	}
	fmt.Fprintf(out, "%-3d %-*s %-8s %-7s %-6s %s\n", i, r.width(), c.ID, c.Group, c.verdict(), pts, c.details(100))
}

func (c caseResult) verdict() string {
	switch {
	case c.Status == statusFail && c.Crash != "":
		return "CRASH"
	case c.Status == statusFail && c.TimedOut:
		return "TIMEOUT"
	case c.Status == statusFail:
		return "FAIL"
	}
	return c.Status
}

// details is the last column: the title when the case passed, else why not,
// on one line.
func (c caseResult) details(max int) string {
	var s string
	switch c.Status {
	case statusPass:
		s = c.Title
	case statusSkip, statusNotRun:
		s = c.Reason
	default:
		s = c.Error
		if c.ID == startCaseID {
			s = c.Observed
		} else if c.Crash != "" {
			s = "the server crashed (" + c.Crash + "); " + s
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

func (r *report) printSummary(out io.Writer) {
	fmt.Fprintf(out, "\n%d passed, %d failed", r.Passed, r.Failed)
	if r.Skipped > 0 {
		fmt.Fprintf(out, ", %d skipped (worth %d points, not counted)", r.Skipped, r.SkippedPoints)
	}
	if r.NotRun > 0 {
		fmt.Fprintf(out, ", %d not run", r.NotRun)
	}
	fmt.Fprintf(out, "; %d/%d points (official grader's cases %d/%d, extra %d/%d); %s; seed %d\n",
		r.Points, r.MaxPoints, r.Groups[groupOfficial].Points, r.Groups[groupOfficial].MaxPoints,
		r.Groups[groupExtra].Points, r.Groups[groupExtra].MaxPoints, time.Duration(r.Seconds*float64(time.Second)).Round(time.Second), r.Seed)
	for _, c := range r.Cases {
		if c.Status != statusFail {
			continue
		}
		fmt.Fprintf(out, "\n%s — %s\n%s\n", c.ID, c.Title, indent(c.Error, "  "))
		if c.Crash != "" && c.ID != startCaseID {
			fmt.Fprintf(out, "  the server crashed: %s; it was restarted for the next case\n", c.Crash)
		}
		if c.Hint != "" {
			fmt.Fprintf(out, "  hint: %s\n", c.Hint)
		}
		if c.Log != "" && c.ID != startCaseID { // a start failure's error already ends with the log
			fmt.Fprintf(out, "  server log (tail):\n%s\n", indent(c.Log, "    "))
		}
	}
	for _, c := range r.Cases {
		if c.CrashedBy != "" {
			fmt.Fprintf(out, "\nnot run because the server died after %s: ", c.CrashedBy)
			var ids []string
			for _, d := range r.Cases {
				if d.CrashedBy != "" {
					ids = append(ids, d.ID)
				}
			}
			fmt.Fprintln(out, strings.Join(ids, ", "))
			break
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// write writes the JSON and JUnit files the options ask for.
func (r *report) write(o options) error {
	if o.jsonOut != "" {
		if err := r.writeJSON(o.jsonOut); err != nil {
			return err
		}
	}
	if o.junitOut != "" {
		return r.writeJUnit(o.junitOut)
	}
	return nil
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// JUnit XML, the shape CI systems and learning management systems read:
// one suite per stage, one case per check with its group as the class
// name, a <failure> for a failed one and a <skipped> for one that did not
// run.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func (r *report) writeJUnit(path string) error {
	suite := junitSuite{
		Name:      fmt.Sprintf("stage-%d", r.Stage),
		Tests:     len(r.Cases),
		Failures:  r.Failed,
		Skipped:   r.Skipped + r.NotRun,
		Time:      fmt.Sprintf("%.3f", r.Seconds),
		Timestamp: r.Started,
		Properties: []junitProperty{
			{"tool", r.Tool.String()}, {"binary", r.Binary}, {"binary_sha256", r.SHA256},
			{"seed", fmt.Sprint(r.Seed)}, {"flags", strings.Join(r.Flags, " ")}, {"outcome", r.Outcome},
			{"points", fmt.Sprintf("%d/%d", r.Points, r.MaxPoints)},
		},
	}
	for _, c := range r.Cases {
		jc := junitCase{Classname: c.Group, Name: c.ID, Time: fmt.Sprintf("%.3f", c.Seconds)}
		switch c.Status {
		case statusFail:
			text := []string{c.Title, c.Error}
			if c.Crash != "" {
				text = append(text, "the server crashed: "+c.Crash)
			}
			if c.Hint != "" {
				text = append(text, "hint: "+c.Hint)
			}
			jc.Failure = &junitFailure{Message: c.Error, Text: strings.Join(append(text, c.Log), "\n")}
		case statusSkip, statusNotRun:
			jc.Skipped = &junitSkipped{Message: c.Reason}
		}
		suite.Cases = append(suite.Cases, jc)
	}
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{suite}}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}
