package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
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
		{99.96, "100"},
		{9.996, "10.0"},
		{0.99996, "1.00"},
		{0.9994, "0.999"},
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
	if o.rounds != 4 || o.duration != 10*time.Second || o.idle != 30*time.Second || o.conns != 10000 || o.bigSize != 1<<30 ||
		len(o.rowList()) != len(allRows) || o.totalRounds() != 4 {
		t.Errorf("defaults: got %+v", o)
	}

	o, err = parseFlags([]string{"-rounds", "3", "-row-rounds", "i=6, III=6", "-rows", "i,iii,v"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.roundsOf("i") != 6 || o.roundsOf("iii") != 6 || o.roundsOf("v") != 3 || o.totalRounds() != 6 {
		t.Errorf("-rounds 3 -row-rounds i=6,iii=6: rounds %d, %d, %d, total %d", o.roundsOf("i"), o.roundsOf("iii"), o.roundsOf("v"), o.totalRounds())
	}
	if got, want := o.roundsSummary(), "6 rounds (fewer for rows v 3, spread over the run)"; got != want {
		t.Errorf("roundsSummary = %q, want %q", got, want)
	}

	for _, bad := range [][]string{
		{"-rows", "i,xiii"},
		{"-row-rounds", "i=0"},
		{"-row-rounds", "i"},
		{"-row-rounds", "vix=2"},
		{"-workers", "1,0"},
		{"-rounds", "0"},
		{"-duration", "1500ms"},
		{"extra"},
	} {
		if _, err := parseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", bad)
		}
	}
}

func TestRowRound(t *testing.T) {
	o := options{rounds: 3, rowRounds: map[string]int{"i": 6}, rows: map[string]bool{"i": true, "ii": true}}
	var runs, nths []int
	for r := 1; r <= o.totalRounds(); r++ {
		if k, ok := o.rowRound("i", r, o.totalRounds()); !ok || k != r {
			t.Errorf("row i, round %d: got (%d, %v), want (%d, true)", r, k, ok, r)
		}
		if k, ok := o.rowRound("ii", r, o.totalRounds()); ok {
			runs, nths = append(runs, r), append(nths, k)
		}
	}
	// Three rounds of six, spread: the row's own rounds count 1, 2, 3.
	if diff := cmp.Diff([]int{2, 4, 6}, runs); diff != "" {
		t.Errorf("row ii runs in rounds (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 2, 3}, nths); diff != "" {
		t.Errorf("row ii's own rounds (-want +got):\n%s", diff)
	}
}

func TestRotate(t *testing.T) {
	a, b, c := &server{name: "a"}, &server{name: "b"}, &server{name: "c"}
	for k, want := range map[int]string{1: "abc", 2: "bca", 3: "cab", 4: "abc"} {
		got := ""
		for _, s := range rotate([]*server{a, b, c}, k) {
			got += s.name
		}
		if got != want {
			t.Errorf("rotate(abc, %d) = %s, want %s", k, got, want)
		}
	}
}

func TestPlanRows(t *testing.T) {
	var two unix.CPUSet
	two.Set(0)
	two.Set(1)
	o, err := parseFlags(nil, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	o.stage = 21
	planRows(&o, two, true)
	// Stage 21 lacks metrics and workers; two CPUs have room for N = 1 only.
	if diff := cmp.Diff([]string{"i", "ii", "iii", "iv", "v", "vi", "gzip", "gzip-big", "acl", "lb", "slowloris", "timers-idle", "timers"}, o.rowList()); diff != "" {
		t.Errorf("stage 21 on 2 CPUs (-want +got):\n%s", diff)
	}

	o, _ = parseFlags(nil, &strings.Builder{})
	o.stage = 23
	planRows(&o, two, false)
	if diff := cmp.Diff([]int{1}, o.workerCounts); diff != "" {
		t.Errorf("worker counts on 2 CPUs (-want +got):\n%s", diff)
	}
	if o.rows["x"] || o.rows["timers"] || !o.rows["vii"] || !o.rows["xii"] || !o.rows["xi"] {
		t.Errorf("stage 23 on 2 CPUs without stage 20: rows %v", o.rowList())
	}
	if len(o.skipped) != 3 {
		t.Errorf("skipped: %q, want the timers row, N = 2, 4 and row x", o.skipped)
	}
}

func TestNginxConfig(t *testing.T) {
	render := func(workers int, upstreams []int) string {
		var b strings.Builder
		err := nginxConfig.Execute(&b, map[string]any{
			"Dir": "/d", "Root": "/www", "Listen": []int{8080}, "Upstreams": upstreams, "Nofile": nofile,
			"HeaderTimeout": nginxDuration(slowTimeout), "Workers": workers, "GzipLevel": gzipLevel,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	single := render(0, []int{9001, 9002, 9003})
	for _, want := range []string{"worker_processes 1;\nmaster_process off;", "sendfile on;", "access_log off;",
		"client_header_timeout 5s;", "server 127.0.0.1:9003;", "proxy_pass http://backends/;",
		"proxy_pass http://127.0.0.1:9001/;", "gzip_comp_level 6;", "gzip_types text/plain;", "gzip_vary on;"} {
		if !strings.Contains(single, want) {
			t.Errorf("the measured nginx's config lacks %q:\n%s", want, single)
		}
	}
	if workers := render(4, []int{9001}); !strings.Contains(workers, "worker_processes 4;\nworker_cpu_affinity auto;") ||
		strings.Contains(workers, "master_process") {
		t.Errorf("nginx with 4 workers:\n%s", workers)
	}
	if up := render(0, nil); !strings.Contains(up, "add_header X-Upstream $server_port;") || strings.Contains(up, "gzip on") {
		t.Errorf("the upstream's config:\n%s", up)
	}
}

func TestNginxDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 5 * time.Second: "5s", 1500 * time.Millisecond: "2s"} {
		if got := nginxDuration(d); got != want {
			t.Errorf("nginxDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestOursConfig(t *testing.T) {
	ups := []int{9001, 9002, 9003}
	keys := func(stage int, setup oursSetup) []string {
		setup.stage, setup.upstreams = stage, ups
		cfg := oursConfig(8080, "/www", setup)
		out := slices.Sorted(maps.Keys(cfg))
		for _, r := range cfg["servers"].([]any)[0].(map[string]any)["routes"].([]any) {
			out = append(out, r.(map[string]any)["req_path"].(string))
		}
		return out
	}
	// Each stage gets only the keys it knows: an unknown key is a config error.
	for _, tc := range []struct {
		stage int
		setup oursSetup
		want  []string
	}{
		{17, oursSetup{}, []string{"server_name", "servers", "/", "/proxy"}},
		{20, oursSetup{}, []string{"server_name", "servers", "/", "/proxy", "/acl", "/gz", "/lb"}},
		{21, oursSetup{}, []string{"client_header_timeout", "server_name", "servers", "/", "/proxy", "/acl", "/gz", "/lb"}},
		{23, oursSetup{}, []string{"client_header_timeout", "metrics", "server_name", "servers", "/", "/proxy", "/acl", "/gz", "/lb"}},
		{23, oursSetup{workers: 1, metricsPort: 9100}, []string{"client_header_timeout", "metrics", "server_name", "servers",
			"worker_cpu_affinity", "workers", "/", "/proxy", "/acl", "/gz", "/lb"}},
	} {
		if diff := cmp.Diff(tc.want, keys(tc.stage, tc.setup)); diff != "" {
			t.Errorf("stage %d %+v (-want +got):\n%s", tc.stage, tc.setup, diff)
		}
	}
	cfg := oursConfig(8080, "/www", oursSetup{stage: 23, upstreams: ups, headerTimeout: slowTimeout})
	if cfg["client_header_timeout"] != 5.0 || cfg["metrics"] != false {
		t.Errorf("header timeout %v, metrics %v: want 5 and false", cfg["client_header_timeout"], cfg["metrics"])
	}
	if cfg := oursConfig(8080, "/www", oursSetup{stage: 21, upstreams: ups}); cfg["client_header_timeout"] != longTimeout.Seconds() {
		t.Errorf("default header timeout %v, want %v", cfg["client_header_timeout"], longTimeout.Seconds())
	}
}

func TestRxQueued(t *testing.T) {
	// Port 8080 is 1F90: two established connections with 10 and 0x20
	// bytes unread, one in TIME_WAIT (06) and one of another port.
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 0100007F:A001 01 00000000:0000000A 00:00000000 00000000     0        0 1 1 0 10 0
   1: 0100007F:1F90 0100007F:A002 01 00000000:00000020 00:00000000 00000000     0        0 2 1 0 10 0
   2: 0100007F:1F90 0100007F:A003 06 00000000:00000100 00:00000000 00000000     0        0 3 1 0 10 0
   3: 0100007F:1F91 0100007F:A004 01 00000000:00000100 00:00000000 00000000     0        0 4 1 0 10 0
`
	got, err := rxQueued(table, 8080)
	if err != nil || got != 42 {
		t.Errorf("rxQueued = %d, %v; want 42", got, err)
	}
}

func TestMatcher(t *testing.T) {
	want := content{block: []byte("abcd"), size: 10} // abcdabcdab
	for _, tc := range []struct {
		writes []string
		err    string
	}{
		{[]string{"abcdab", "cdab"}, ""},
		{[]string{"abcdabcda"}, "the body has 9 of the file's 10 bytes"},
		{[]string{"abcdabcdabc"}, "the body is longer than the file's 10 bytes"},
		{[]string{"abcd", "abXd"}, "the body differs from the file at byte 6"},
	} {
		m := &matcher{want: want}
		var err error
		for _, w := range tc.writes {
			if _, err = m.Write([]byte(w)); err != nil {
				break
			}
		}
		if err == nil {
			err = m.complete()
		}
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("%q: got %q, want %q", tc.writes, got, tc.err)
		}
	}
}

func TestAttackStats(t *testing.T) {
	s := attackStats{lives: []time.Duration{5 * time.Second, 5600 * time.Millisecond, 5100 * time.Millisecond, 9 * time.Second}}
	if got := s.over(slowTimeout + slowGrace); got != 2 {
		t.Errorf("over(5.5 s) = %d, want 2", got)
	}
	if got := s.longest(); got != 9*time.Second {
		t.Errorf("longest = %v, want 9s", got)
	}
	if got := (attackStats{}).longest(); got != 0 {
		t.Errorf("longest of none = %v, want 0", got)
	}
}

func TestFitConns(t *testing.T) {
	for _, tc := range []struct {
		limit            uint64
		conns, slowConns int
		set              bool
		want             int // -1: an error
	}{
		{65536, 10000, 5000, false, 10000},
		{20000, 10000, 5000, false, 9000}, // ours would admit 9,987 clients
		{20000, 10000, 5000, true, -1},
		{20000, 9500, 5000, true, 9500},
		{20000, 9000, 9850, false, -1},
		{1500, 1000, 500, false, -1},
	} {
		o := options{fileLimit: tc.limit, conns: tc.conns, slowConns: tc.slowConns, connsSet: tc.set}
		err := fitConns(&o)
		switch {
		case tc.want < 0 && err == nil:
			t.Errorf("limit %d, -conns %d, -slowloris %d: got %d connections, want an error", tc.limit, tc.conns, tc.slowConns, o.conns)
		case tc.want >= 0 && (err != nil || o.conns != tc.want):
			t.Errorf("limit %d, -conns %d, -slowloris %d: got %d, %v; want %d", tc.limit, tc.conns, tc.slowConns, o.conns, err, tc.want)
		}
	}
}
