package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests cover what the bench computes from what it reads; none runs
// a benchmark, since timings have no place in make test.

const wrkClean = `Running 10s test @ http://127.0.0.1:41234/1k.txt
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.34ms    1.02ms  30.11ms   91.20%
    Req/Sec    10.41k     1.05k   12.37k    71.50%
  207186 requests in 10.00s, 252.12MB read
Requests/sec:  20716.43
Transfer/sec:     25.21MB
`

const wrkErrors = `Running 3s test @ http://127.0.0.1:41234/proxy/100b.txt
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    13.58ms   15.25ms 110.13ms   90.58%
    Req/Sec     2.41k     1.13k    4.42k    63.33%
  14400 requests in 1.00m, 4.57MB read
  Socket errors: connect 0, read 12, write 3, timeout 7
  Non-2xx or 3xx responses: 2114
Requests/sec:   4790.43
Transfer/sec:      1.52MB
`

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		name    string
		out     string
		want    wrkResult
		errors  int64
		summary string
	}{
		{"clean", wrkClean, wrkResult{Requests: 207186, Seconds: 10, ReqPerSec: 20716.43}, 0, ""},
		{"errors", wrkErrors, wrkResult{
			Requests: 14400, Seconds: 60, ReqPerSec: 4790.43,
			ReadErrors: 12, WriteErrors: 3, Timeouts: 7, Non2xx3xx: 2114,
		}, 2136, "12 read, 3 write, 7 timeout, 2,114 non-2xx/3xx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseWrk (-want +got):\n%s", diff)
			}
			if got.Errors() != tc.errors {
				t.Errorf("Errors() = %d, want %d", got.Errors(), tc.errors)
			}
			if got.ErrorSummary() != tc.summary {
				t.Errorf("ErrorSummary() = %q, want %q", got.ErrorSummary(), tc.summary)
			}
		})
	}
}

func TestParseWrkIncomplete(t *testing.T) {
	for _, out := range []string{
		"unable to connect to 127.0.0.1:48205 Connection refused\n",
		strings.Replace(wrkClean, "Requests/sec:", "Requests per sec:", 1),
	} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("parseWrk(%q) succeeded, want an error", out)
		}
	}
}

func TestParseCurl(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want curlResult
	}{
		{"2131771392.000 1073741824 200", curlResult{2131771392, 1 << 30, 200}},
		{"2131771392 1073741824 200\n", curlResult{2131771392, 1 << 30, 200}},
		{"0 0 000", curlResult{0, 0, 0}},
	} {
		got, err := parseCurl(tc.out)
		if err != nil {
			t.Errorf("parseCurl(%q): %v", tc.out, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseCurl(%q) = %+v, want %+v", tc.out, got, tc.want)
		}
	}
	for _, bad := range []string{"", "curl: (7) Failed to connect", "fast 10 200", "1.5 10"} {
		if _, err := parseCurl(bad); err == nil {
			t.Errorf("parseCurl(%q) succeeded, want an error", bad)
		}
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in             []float64
		median, lo, hi float64
	}{
		{[]float64{5}, 5, 5, 5},
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{10, 10, 1, 10}, 10, 1, 10},
	} {
		s, ok := summarize(tc.in)
		if !ok || s.Median != tc.median || s.Min != tc.lo || s.Max != tc.hi {
			t.Errorf("summarize(%v) = %+v, %v; want median %v, min %v, max %v", tc.in, s, ok, tc.median, tc.lo, tc.hi)
		}
		if !cmp.Equal(s.Samples, tc.in) {
			t.Errorf("summarize(%v) kept samples %v, want them in round order", tc.in, s.Samples)
		}
	}
	if _, ok := summarize(nil); ok {
		t.Error("summarize(nil) reported a value")
	}
}

func TestFormatNumber(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{20716.43, "20,716"},
		{1234567, "1,234,567"},
		{100, "100"},
		{99.96, "100.0"},
		{33.64, "33.6"},
		{2.345, "2.35"},
		{0.125, "0.125"},
		{0.0042, "0.0042"},
		{-1500, "-1,500"},
	} {
		if got := formatNumber(tc.v); got != tc.want {
			t.Errorf("formatNumber(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestFormatRatio(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want string
	}{
		{0.8, "0.80×"},
		{1, "1.00×"},
		{1.234, "1.23×"},
		{25.94, "25.9×"},
		{250.4, "250×"},
		{0, "0.00×"},
	} {
		if got := formatRatio(tc.r); got != tc.want {
			t.Errorf("formatRatio(%v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestSizeLabel(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{1 << 30, "1 GiB"}, {256 << 20, "256 MiB"}, {1536 << 20, "1536 MiB"}} {
		if got := sizeLabel(tc.n); got != tc.want {
			t.Errorf("sizeLabel(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestMarkdownTable(t *testing.T) {
	o := options{conns: 10000, bigSize: 1 << 30, rows: map[string]bool{"i": true, "v": true}}
	r := newResults()
	for _, v := range []struct {
		key, server string
		values      []float64
	}{
		{"i.rps", nginxName, []float64{20000, 22000, 21000}},
		{"i.rps", goName, []float64{10000, 12000, 11000}},
		{"i.rps", oursName, []float64{16800, 16800, 16800}},
		{"i.cpu", nginxName, []float64{2, 2, 2}},
		{"i.cpu", goName, []float64{2.9, 3, 2.8}},
		{"i.cpu", oursName, []float64{2.5, 2.5, 2.5}},
		{"v.idle", nginxName, []float64{0, 0, 0}},
		{"v.idle", goName, []float64{0.1, 0, 0}},
		{"v.idle", oursName, []float64{0, 0, 0}},
	} {
		for _, x := range v.values {
			r.add(v.key, v.server, x)
		}
	}
	r.flag(oursName, "round 1/3, ours, row (i): wrk counted 3 read among 50,000 requests", "i")
	got := markdownTable(r.lines(quantities(o)))
	want := `| quantity | nginx | net/http | ours | ours / nginx | ours / net/http |
|---|---:|---:|---:|---:|---:|
| (i) 1 KiB file: req/s | 21,000 (20,000–22,000) | 11,000 (10,000–12,000) | 16,800 ⚠ | 0.80× | 1.53× |
| (i) 1 KiB file: server CPU s — lower is better | 2.00 | 2.90 (2.80–3.00) | 2.50 ⚠ | 1.25× | 0.86× |
| (i) 1 KiB file: requests per server CPU-second | n/a | n/a | n/a | — | — |
| (v) idle CPU %, no connections — lower is better | 0 | 0 (0–0.1) | 0 | — | — |
| (v) idle CPU %, 10,000 idle conns — lower is better | n/a | n/a | n/a | — | — |
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("markdownTable (-want +got):\n%s", diff)
	}
}

func TestQuantitiesFollowRows(t *testing.T) {
	o := options{conns: 1000, bigSize: 256 << 20, rows: map[string]bool{"ii": true, "vi": true}}
	var names []string
	for _, q := range quantities(o) {
		names = append(names, q.Name)
	}
	want := []string{
		"(ii) 256 MiB download: MB/s",
		"(ii) 256 MiB download: peak RSS MiB — lower is better",
		"(ii) 256 MiB download: server CPU s — lower is better",
		"(vi) seconds to accept 1,000 conns — lower is better",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("quantities (-want +got):\n%s", diff)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-rounds", "3", "-rows", "i, III"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	// -quick fills in what was not given; what was given stays.
	if o.rounds != 3 || o.duration != quickDuration || o.idle != quickIdle || o.conns != quickConns || o.bigSize != quickBigMiB<<20 {
		t.Errorf("-quick -rounds 3: got %+v", o)
	}
	if diff := cmp.Diff([]string{"i", "iii"}, o.rowList()); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	o, err = parseFlags(nil, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 4 || o.duration != 10*time.Second || o.idle != 30*time.Second || o.conns != 10000 || o.bigSize != 1<<30 || len(o.rowList()) != 6 {
		t.Errorf("defaults: got %+v", o)
	}

	for _, bad := range [][]string{
		{"-rows", "i,vii"},
		{"-rounds", "0"},
		{"-duration", "1500ms"},
		{"extra"},
	} {
		if _, err := parseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", bad)
		}
	}
}
