package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// event is one line of `go test -json` (see `go doc cmd/test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// key names one test of one package; Test is "" for the package itself.
type key struct{ pkg, test string }

// report holds the output of every test still running, to print it only if
// the test fails.
type report struct {
	out      io.Writer
	progress *regexp.Regexp
	pending  map[key][]string
	failures []key // in the order they failed
}

func newReport(out io.Writer, progress *regexp.Regexp) *report {
	return &report{out: out, progress: progress, pending: map[key][]string{}}
}

// read handles every line of in. A line that is not an event — what the go
// command prints about itself — is passed through as it is.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024) // a test may print long lines
	for sc.Scan() {
		line := sc.Text()
		var ev event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &ev) != nil || ev.Action == "" {
			fmt.Fprintln(r.out, line)
			continue
		}
		r.handle(ev)
	}
	return sc.Err()
}

func (r *report) handle(ev event) {
	k := key{ev.Package, ev.Test}
	switch ev.Action {
	case "build-output":
		fmt.Fprint(r.out, ev.Output)
	case "output":
		r.pending[k] = append(r.pending[k], ev.Output)
	case "pass", "skip":
		if ev.Test == "" {
			r.packageDone(ev)
		} else if r.progress != nil && r.progress.MatchString(ev.Test) {
			verb := map[string]string{"pass": "PASS", "skip": "SKIP"}[ev.Action]
			fmt.Fprintf(r.out, "--- %s: %s (%.2fs)\n", verb, ev.Test, ev.Elapsed)
		}
		delete(r.pending, k)
	case "fail":
		if ev.Test == "" {
			r.packageDone(ev)
			break
		}
		r.failures = append(r.failures, k)
		r.printOutput(k)
	}
}

// packageDone prints the package's summary line, and on failure everything
// the package printed outside its tests (a panic, a timeout, the go
// command's FAIL line) and the output of tests that never finished.
func (r *report) packageDone(ev event) {
	switch {
	case ev.Action == "pass":
		fmt.Fprintf(r.out, "ok  \t%s\t%.3fs\n", ev.Package, ev.Elapsed)
	case ev.Action == "skip":
		fmt.Fprintf(r.out, "?   \t%s\t[no test files]\n", ev.Package)
	default:
		var unfinished []key
		for k := range r.pending {
			if k.pkg == ev.Package && k.test != "" {
				unfinished = append(unfinished, k)
			}
		}
		slices.SortFunc(unfinished, func(a, b key) int { return strings.Compare(a.test, b.test) })
		for _, k := range unfinished {
			r.printOutput(k)
		}
		r.failures = append(r.failures, key{ev.Package, ""})
		if !r.printOutput(key{ev.Package, ""}) {
			fmt.Fprintf(r.out, "FAIL\t%s\t%.3fs\n", ev.Package, ev.Elapsed)
		}
	}
	delete(r.pending, key{ev.Package, ""})
}

// printOutput prints and forgets what k printed, without the framing lines
// of -v (=== RUN and the like), and says whether there was anything.
func (r *report) printOutput(k key) bool {
	printed := false
	for _, line := range r.pending[k] {
		if strings.HasPrefix(line, "=== ") {
			continue
		}
		fmt.Fprint(r.out, line)
		printed = true
	}
	delete(r.pending, k)
	return printed
}

// finish prints what failed, once more, at the end of a long run where it
// would otherwise scroll away, and says whether anything did. A test whose
// subtest failed, or a package whose test failed, is not named again: the
// subtest or the test says where to look.
func (r *report) finish() bool {
	if len(r.failures) == 0 {
		return false
	}
	var names []string
	for _, f := range r.failures {
		covered := slices.ContainsFunc(r.failures, func(g key) bool {
			return g.pkg == f.pkg && g.test != f.test && (f.test == "" || strings.HasPrefix(g.test, f.test+"/"))
		})
		if !covered {
			names = append(names, strings.TrimSpace(f.pkg+" "+f.test))
		}
	}
	fmt.Fprintf(r.out, "\nFAIL: %s\n", strings.Join(names, ", "))
	return true
}
