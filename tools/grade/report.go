package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"time"

	"expserver-go/tests/milestone"
)

// report is the machine-readable result of one grading run.
type report struct {
	Stage   int          `json:"stage"`
	Binary  string       `json:"binary"`
	Passed  int          `json:"passed"`
	Failed  int          `json:"failed"`
	Seconds float64      `json:"seconds"`
	Cases   []caseResult `json:"cases"`
}

type caseResult struct {
	ID       string  `json:"id"`
	Title    string  `json:"title"`
	Grader   bool    `json:"official_grader_case"`
	Passed   bool    `json:"passed"`
	Expected string  `json:"expected,omitempty"`
	Observed string  `json:"observed,omitempty"`
	Error    string  `json:"error,omitempty"`
	Seconds  float64 `json:"seconds"`
	Log      string  `json:"server_log,omitempty"`
}

func newReport(o options, bin string, results []milestone.Result, elapsed time.Duration) *report {
	r := &report{Stage: o.stage, Binary: bin, Seconds: elapsed.Seconds()}
	for _, res := range results {
		c := caseResult{
			ID: res.Milestone.ID, Title: res.Milestone.Title, Grader: res.Milestone.Grader,
			Passed: res.Err == nil, Seconds: res.Elapsed.Seconds(), Log: res.Log,
		}
		if res.Err != nil {
			r.Failed++
			c.Error = res.Err.Error()
			var f *milestone.Failure
			if errors.As(res.Err, &f) {
				c.Expected, c.Observed = f.Expected, f.Observed
			}
		} else {
			r.Passed++
		}
		r.Cases = append(r.Cases, c)
	}
	return r
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// JUnit XML, the shape CI systems read: one suite per stage, one case per
// milestone, a <failure> element for each failed one.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func (r *report) writeJUnit(path string) error {
	suite := junitSuite{
		Name:     fmt.Sprintf("stage-%d", r.Stage),
		Tests:    len(r.Cases),
		Failures: r.Failed,
		Time:     fmt.Sprintf("%.3f", r.Seconds),
	}
	for _, c := range r.Cases {
		jc := junitCase{Classname: suite.Name, Name: c.ID, Time: fmt.Sprintf("%.3f", c.Seconds)}
		if !c.Passed {
			jc.Failure = &junitFailure{Message: c.Error, Text: c.Title + "\n" + c.Error + "\n" + c.Log}
		}
		suite.Cases = append(suite.Cases, jc)
	}
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{suite}}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}
