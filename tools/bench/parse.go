package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests  int64   // completed requests
	Seconds   float64 // how long wrk ran, from "N requests in 10.00s"
	ReqPerSec float64 // wrk's "Requests/sec"

	ConnectErrors, ReadErrors, WriteErrors, Timeouts int64 // "Socket errors: …"
	Non2xx3xx                                        int64 // "Non-2xx or 3xx responses: N"
}

// Errors returns every failed request or socket wrk counted.
func (w wrkResult) Errors() int64 {
	return w.ConnectErrors + w.ReadErrors + w.WriteErrors + w.Timeouts + w.Non2xx3xx
}

// ErrorSummary describes the errors in a line, or returns "" if there were
// none.
func (w wrkResult) ErrorSummary() string {
	if w.Errors() == 0 {
		return ""
	}
	var parts []string
	for _, e := range []struct {
		n    int64
		what string
	}{
		{w.ConnectErrors, "connect"}, {w.ReadErrors, "read"}, {w.WriteErrors, "write"},
		{w.Timeouts, "timeout"}, {w.Non2xx3xx, "non-2xx/3xx"},
	} {
		if e.n > 0 {
			parts = append(parts, formatCount(int(e.n))+" "+e.what)
		}
	}
	return strings.Join(parts, ", ")
}

var (
	wrkTotalRe  = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),`)
	wrkRateRe   = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkSocketRe = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// wrkUnits converts the units of wrk's format_time to seconds.
var wrkUnits = map[string]float64{"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}

// parseWrk reads wrk's report. The totals and Requests/sec lines are
// required; the error lines appear only when there were errors.
func parseWrk(out string) (wrkResult, error) {
	var w wrkResult
	m := wrkTotalRe.FindStringSubmatch(out)
	if m == nil {
		return w, fmt.Errorf("wrk: no \"N requests in T\" line in %q", out)
	}
	w.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	secs, _ := strconv.ParseFloat(m[2], 64)
	w.Seconds = secs * wrkUnits[m[3]]

	m = wrkRateRe.FindStringSubmatch(out)
	if m == nil {
		return w, fmt.Errorf("wrk: no Requests/sec line in %q", out)
	}
	w.ReqPerSec, _ = strconv.ParseFloat(m[1], 64)

	if m := wrkSocketRe.FindStringSubmatch(out); m != nil {
		for i, p := range []*int64{&w.ConnectErrors, &w.ReadErrors, &w.WriteErrors, &w.Timeouts} {
			*p, _ = strconv.ParseInt(m[i+1], 10, 64)
		}
	}
	if m := wrkNon2xxRe.FindStringSubmatch(out); m != nil {
		w.Non2xx3xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return w, nil
}

// curlResult is what curl's -w '%{speed_download} %{size_download}
// %{http_code}' prints.
type curlResult struct {
	BytesPerSec float64
	Size        int64
	Status      int
}

// curlFormat is the -w argument whose output parseCurl reads.
const curlFormat = "%{speed_download} %{size_download} %{http_code}"

// parseCurl reads the output of curl -w curlFormat. Older curls print the
// speed as an integer, newer ones with three decimals; both parse.
func parseCurl(out string) (curlResult, error) {
	var c curlResult
	f := strings.Fields(out)
	if len(f) != 3 {
		return c, fmt.Errorf("curl: want \"SPEED SIZE STATUS\", got %q", out)
	}
	var err1, err2, err3 error
	c.BytesPerSec, err1 = strconv.ParseFloat(f[0], 64)
	c.Size, err2 = strconv.ParseInt(f[1], 10, 64)
	c.Status, err3 = strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return c, fmt.Errorf("curl: want \"SPEED SIZE STATUS\", got %q", out)
	}
	return c, nil
}
