package milestone

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"expserver-go/tests/harness"
)

// metricsMilestones are the checks of stage 22: the metrics listener, the
// JSON at /api that the course's dashboard reads, the Prometheus text at
// /metrics, the counters' exact moments, and the dashboard page the server
// serves itself. Each check starts a server of its own, with its metrics
// on a free port, so that its counters see its own traffic only.
var metricsMilestones = []Milestone{
	{ID: "metrics-json-shape", Title: "GET /api: 200 application/json in one write, every key of the course's dashboard and the extras, in order, with their types",
		From: 22, To: 23, Run: checkMetricsJSONShape},
	{ID: "metrics-dashboard-fetch", Title: "a page of another origin in Chromium fetches /api every second: no exception, integers are integers, the CPU figures numbers and an array",
		From: 22, To: 23, Browser: true, Run: checkMetricsDashboardFetch},
	{ID: "metrics-dashboard-page", Title: "the server's own dashboard in Chromium shows live numbers after two polls: its PID, workers, name and requests",
		From: 22, To: 23, Browser: true, Run: checkMetricsDashboardPage},
	{ID: "metrics-idle-baseline", Title: "polls of an idle server a second apart: each adds exactly one connection and one metrics request, and finds itself the only one",
		From: 22, To: 23, Run: checkMetricsIdleBaseline},
	{ID: "metrics-exact-counts", Title: "500 requests from 20 clients (files, redirects, 404s, proxied) move every counter by exactly what was sent, bytes included",
		From: 22, To: 23, Run: checkMetricsExactCounts},
	{ID: "metrics-monotonic", Title: "polled every 50 ms under 5 s of load, no counter goes back and every snapshot is consistent",
		From: 22, To: 23, Run: checkMetricsMonotonic},
	{ID: "metrics-quiescent", Title: "once every client has left, within 1 s only the poll itself is open, and the request types add up to the requests",
		From: 22, To: 23, Run: checkMetricsQuiescent},
	{ID: "metrics-malformed", Title: "garbage (400) and oversized (431) heads are requests of type other with a 4xx; connections that send nothing are no request",
		From: 22, To: 23, Run: checkMetricsMalformed},
	{ID: "metrics-timeouts", Title: "client_header_timeout 1: 5 silent and 5 partial heads count 10 timeouts, 5 requests and 5 untimed 408s",
		From: 22, To: 23, Run: checkMetricsTimeouts},
	{ID: "metrics-conn-errors", Title: "10 clients resetting mid-download count 10 connection errors; 10 resetting after a whole response count none",
		From: 22, To: 23, Run: checkMetricsConnErrors},
	{ID: "metrics-accept-errors", Title: "out of descriptors, clients left waiting count as accept errors, and queued clients are served once room comes back",
		From: 22, To: 23, Run: checkMetricsAcceptErrors},
	{ID: "metrics-latency", Title: "the peak response time is the time to the first byte: 300–600 ms behind a 300 ms upstream, not a slow download's length",
		From: 22, To: 23, Run: checkMetricsLatency},
	{ID: "metrics-proxied-codes", Title: "an upstream's 404 and 503 count as 4xx and 5xx and pass unchanged; a down upstream's 502 counts as 5xx",
		From: 22, To: 23, Run: checkMetricsProxiedCodes},
	{ID: "metrics-methods-paths", Title: "POST /api is 405 with Allow: GET, HEAD; HEAD /api has no body; /, /api/ and /apix are 404; a query is ignored",
		From: 22, To: 23, Run: checkMetricsMethodsPaths},
	{ID: "metrics-port-default", Title: "without a metrics key, /api answers on 8004; with a server on 8004 (the grader's config) one WARNING and 8004 stays a server",
		From: 22, To: 23, Run: checkMetricsPortDefault},
	{ID: "metrics-port-config", Title: `"metrics": {"port": P} moves it, false removes it; a clash with a server, an unknown key or a bad port is exit 2 naming metrics`,
		From: 22, To: 23, Run: checkMetricsPortConfig},
	{ID: "metrics-acl", Title: "metrics.ip_whitelist [127.0.0.1]: 403 to 127.0.0.2, counted as a metrics request and a 4xx; 200 to 127.0.0.1",
		From: 22, To: 23, Run: checkMetricsACL},
	{ID: "metrics-escaping", Title: `a server_name with a quote, a backslash and é comes back exactly from the JSON`,
		From: 22, To: 23, Run: checkMetricsEscaping},
	{ID: "metrics-gauges", Title: "the worker's CPU rises under CPU-bound load and falls when idle; RAM figures match /proc",
		From: 22, To: 23, Run: checkMetricsGauges},
	{ID: "metrics-no-spin", Title: "an idle server with metrics uses under 1 % CPU, and under 2 % polled once a second",
		From: 22, To: 23, Run: checkMetricsNoSpin},
	{ID: "metrics-prometheus", Title: "GET /metrics: Prometheus text 0.0.4 with consistent families and histogram, agreeing with /api",
		From: 22, To: 23, Run: checkMetricsPrometheus},
	{ID: "metrics-regression", Title: "the grader's config with metrics on a separate port: the official stage 16–17 cases pass and are counted",
		From: 22, To: 23, Run: checkMetricsRegression},
}

// withMetricsKey returns the JSON object doc with a metrics key set to
// value (JSON text), unless doc already has one or is not an object; the
// key goes first, so that the rest of the text keeps its place.
func withMetricsKey(doc []byte, value string) []byte { return withKey(doc, "metrics", value) }

// metricsServer is a server of the binary under test with its metrics on
// a port of their own.
type metricsServer struct {
	*ServerProcess
	api string // host:port of the metrics listener
}

// startMetrics starts a server with c and its metrics listener on a free
// port: c's metrics key, when it has one, is an object without a port.
// The caller closes it.
func (e *Env) startMetrics(c config) (*metricsServer, error) {
	m, err := e.startWithMetrics(c)
	if err != nil {
		return nil, err
	}
	if err := m.waitAPI(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// waitAPI waits until the metrics listener accepts, and then until the
// server has accepted the connections that found each of its listeners
// open: they count in conn_accepted, and one the server took only after a
// check's first snapshot would count as the check's own.
func (m *metricsServer) waitAPI() error {
	if err := harness.WaitAccepting([]string{m.api}, StartTimeout, m.Alive); err != nil {
		return fail("the metrics listener on "+m.api, "%v", err)
	}
	_, apiPort, _ := net.SplitHostPort(m.api)
	port, _ := strconv.Atoi(apiPort)
	ports := append(m.Ports[:], port)
	err := harness.WaitFor(StartTimeout, func() error {
		for _, p := range ports {
			if waiting, _, err := harness.AcceptQueue(p); err != nil || waiting > 0 {
				return fmt.Errorf("%d connections wait on port %d (%v)", waiting, p, err)
			}
		}
		return nil
	})
	if err != nil {
		return fail("the server to accept the connections that found it started", "%v", err)
	}
	return nil
}

// startWithMetrics is startMetrics without waiting for the metrics
// listener, with env added to the server's environment: a check of stage
// 23 looks at the server's threads before it asks for its counters.
func (e *Env) startWithMetrics(c config, env ...string) (*metricsServer, error) {
	free, err := harness.FreePorts(5)
	if err != nil {
		return nil, err
	}
	ports := [4]int(free[:4])
	more := maps.Clone(c.More)
	if more == nil {
		more = map[string]any{}
	}
	metrics, _ := more["metrics"].(map[string]any)
	metrics = maps.Clone(metrics)
	if metrics == nil {
		metrics = map[string]any{}
	}
	metrics["port"] = free[4]
	more["metrics"] = metrics
	c.More = more
	s, err := e.StartInstance(Instance{Ports: ports, Config: c.json(ports), Env: env})
	if err != nil {
		return nil, err
	}
	return &metricsServer{ServerProcess: s, api: e.Host + ":" + strconv.Itoa(free[4])}, nil
}

// filesConfig is a config whose first port serves the public folder, with
// /redirect redirecting (302), and whose second relays to upstream when it
// is not empty.
func (e *Env) filesConfig(upstream string) config {
	var c config
	c.Routes[0] = []route{fileRoute("/", e.Layout.Public),
		{Path: "/redirect", Type: "redirect", Status: 302, RedirectURL: "http://localhost/elsewhere"}}
	if upstream != "" {
		c.Routes[1] = []route{proxyRoute("/", upstream)}
	}
	return c
}

// metricsFiles starts a server of filesConfig.
func (e *Env) metricsFiles(upstream string) (*metricsServer, error) {
	return e.startMetrics(e.filesConfig(upstream))
}

// apiRequest is the request that fetches a snapshot.
const apiRequest = "GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

// snapshot is one answer of /api: the bytes received, and the values.
type snapshot struct {
	raw  []byte // the whole response as received
	resp *harness.Response
	v    map[string]any // numbers as json.Number
}

// n returns the integer at key, or -1 when it is missing or not an
// integer, which no counter can be.
func (s *snapshot) n(key string) int64 {
	num, ok := s.v[key].(json.Number)
	if !ok {
		return -1
	}
	i, err := num.Int64()
	if err != nil {
		return -1
	}
	return i
}

// f returns the number at key, or NaN.
func (s *snapshot) f(key string) float64 {
	num, ok := s.v[key].(json.Number)
	if !ok {
		return math.NaN()
	}
	v, err := num.Float64()
	if err != nil {
		return math.NaN()
	}
	return v
}

// fetchAPI reads /api from addr over a raw socket, keeping the exact bytes,
// and decodes it.
func fetchAPI(addr string) (*snapshot, error) {
	return fetchAPIFrom("", addr, apiRequest)
}

func fetchAPIFrom(src, addr, req string) (*snapshot, error) {
	r, raw, err := harness.RoundTripFrom(src, addr, req, replyTimeout)
	if err != nil {
		return nil, fail("an answer from /api on "+addr, "%v", err)
	}
	if r.Status != 200 {
		return nil, fail("200 from /api", "%s", harness.Abbrev(raw, 120))
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	s := &snapshot{raw: raw, resp: r}
	if err := dec.Decode(&s.v); err != nil {
		return nil, fail("a JSON object from /api", "%v in %s", err, harness.Abbrev(r.Body, 120))
	}
	return s, nil
}

// deltas compares what moved between two snapshots with want: key → the
// exact difference.
func deltas(s0, s1 *snapshot, want map[string]int64) error {
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if d := s1.n(k) - s0.n(k); d != want[k] {
			errs = append(errs, fmt.Sprintf("Δ%s = %d (want %d)", k, d, want[k]))
		}
	}
	if len(errs) > 0 {
		return fail("exact counts", "%s", strings.Join(errs, ", "))
	}
	return nil
}

// settle polls addr until only the poll itself is open — conn_current and
// req_current both 1 — and returns that snapshot with how many polls it
// took: each adds one connection and one metrics request, and each but
// the last one 2xx, which the caller counts in.
func settle(addr string, within time.Duration) (s *snapshot, polls int64, err error) {
	err = harness.WaitFor(within, func() error {
		polls++
		if s, err = fetchAPI(addr); err != nil {
			return harness.Permanent(err)
		}
		if s.n("conn_current") != 1 || s.n("req_current") != 1 {
			return fail("only the poll open (conn_current = req_current = 1)", "conn_current %d, req_current %d",
				s.n("conn_current"), s.n("req_current"))
		}
		return nil
	})
	return s, polls, err
}

// settleWithin is how long the counters take to settle once every client
// has gone: within the drain the spec allows (1 s), and a margin for a
// loaded machine.
const settleWithin = time.Second + crowdLate

// The /api keys by kind: the 27 the course's dashboard reads, in order, then
// the extras.
var apiKeys = []struct{ name, kind string }{
	{"server_name", "string"}, {"pid", "int"}, {"workers", "int"}, {"uptime_msec", "int"},
	{"sys_cpu_usage_percent", "percent"}, {"sys_ram_usage_bytes", "int"}, {"sys_ram_total_bytes", "int"},
	{"workers_cpu_usage_percent", "percents"}, {"workers_ram_usage_bytes", "int"},
	{"conn_current", "int"}, {"conn_accepted", "int"}, {"conn_error", "int"}, {"conn_timeout", "int"},
	{"conn_accepted_error", "int"}, {"req_current", "int"}, {"req_total", "int"}, {"req_file_serve", "int"},
	{"req_reverse_proxy", "int"}, {"req_redirect", "int"}, {"res_avg_res_time_msec", "int"},
	{"res_peak_res_time_msec", "int"}, {"res_code_2xx", "int"}, {"res_code_3xx", "int"}, {"res_code_4xx", "int"},
	{"res_code_5xx", "int"}, {"traffic_total_send_bytes", "int"}, {"traffic_total_recv_bytes", "int"},
	{"req_metrics", "int"}, {"req_other", "int"}, {"workers_conn_accepted", "ints"}, {"worker_restarts", "int"},
	{"server_cpu_usage_time_msec", "int"}, {"server_ram_usage_bytes", "int"},
}

// counterKeys are the /api values that never go back.
var counterKeys = []string{"uptime_msec", "conn_accepted", "conn_error", "conn_timeout", "conn_accepted_error",
	"req_total", "req_file_serve", "req_reverse_proxy", "req_redirect", "req_metrics", "req_other",
	"res_peak_res_time_msec", "res_code_2xx", "res_code_3xx", "res_code_4xx", "res_code_5xx",
	"traffic_total_send_bytes", "traffic_total_recv_bytes", "worker_restarts", "server_cpu_usage_time_msec"}

var (
	jsonInteger = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	// jsonPercent is a number with at most two decimals and no exponent.
	jsonPercent = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$`)
)

// checkShape checks the keys of the JSON object body, their order and the
// kind of each value.
func checkShape(body []byte) error {
	if bytes.Contains(body, []byte("NaN")) || bytes.Contains(body, []byte("Infinity")) {
		return fail("no NaN or Infinity in the JSON", "%s", harness.Abbrev(body, 200))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fail("a JSON object", "%s", harness.Abbrev(body, 80))
	}
	var keys []string
	values := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("a JSON object", "%v", err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fail("a JSON object", "%v", err)
		}
		keys = append(keys, tok.(string))
		values[tok.(string)] = raw
	}
	var want []string
	for _, k := range apiKeys {
		want = append(want, k.name)
	}
	if !slices.Equal(keys, want) {
		return fail("the keys "+strings.Join(want, ","), "%s", strings.Join(keys, ","))
	}
	var workers int
	if err := json.Unmarshal(values["workers"], &workers); err != nil || workers < 1 {
		return fail("workers ≥ 1", "%s", values["workers"])
	}
	var errs []string
	for _, k := range apiKeys {
		raw := strings.TrimSpace(string(values[k.name]))
		ok := true
		switch k.kind {
		case "string":
			var s string
			ok = json.Unmarshal(values[k.name], &s) == nil
		case "int":
			ok = jsonInteger.MatchString(raw) && !strings.HasPrefix(raw, "-")
		case "percent":
			v, err := strconv.ParseFloat(raw, 64)
			ok = jsonPercent.MatchString(raw) && err == nil && v <= 100
		case "percents", "ints":
			var elems []json.RawMessage
			ok = json.Unmarshal(values[k.name], &elems) == nil && len(elems) == workers
			for _, el := range elems {
				s := string(el)
				if v, err := strconv.ParseFloat(s, 64); k.kind == "percents" && (!jsonPercent.MatchString(s) || err != nil || v > 100) ||
					k.kind == "ints" && !jsonInteger.MatchString(s) {
					ok = false
				}
			}
		}
		if !ok {
			errs = append(errs, k.name+" = "+raw)
		}
	}
	if len(errs) > 0 {
		return fail("integers as JSON integers, percentages in [0, 100] with at most 2 decimals, arrays of one number per worker",
			"%s", strings.Join(errs, "; "))
	}
	return nil
}

// invariants checks what every snapshot must satisfy [spec §2.4].
func invariants(s *snapshot) error {
	var errs []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	acc, cur := s.n("conn_accepted"), s.n("conn_current")
	check(s.n("conn_error")+s.n("conn_timeout") <= acc-cur, "conn_error %d + conn_timeout %d > conn_accepted %d − conn_current %d",
		s.n("conn_error"), s.n("conn_timeout"), acc, cur)
	check(1 <= s.n("req_current") && s.n("req_current") <= cur, "req_current %d not in [1, conn_current %d]", s.n("req_current"), cur)
	total := s.n("req_total")
	types := s.n("req_file_serve") + s.n("req_reverse_proxy") + s.n("req_redirect") + s.n("req_metrics") + s.n("req_other")
	check(types <= total, "the request types add up to %d > req_total %d", types, total)
	classes := s.n("res_code_2xx") + s.n("res_code_3xx") + s.n("res_code_4xx") + s.n("res_code_5xx")
	check(classes <= total, "the response classes add up to %d > req_total %d", classes, total)
	check(s.n("res_avg_res_time_msec") <= s.n("res_peak_res_time_msec"), "res_avg %d > res_peak %d",
		s.n("res_avg_res_time_msec"), s.n("res_peak_res_time_msec"))
	if p := s.f("sys_cpu_usage_percent"); !(p >= 0 && p <= 100) {
		check(false, "sys_cpu_usage_percent %v", p)
	}
	if len(errs) > 0 {
		return fail("every invariant of a snapshot", "%s in %s", strings.Join(errs, "; "), harness.Abbrev(s.resp.Body, 400))
	}
	return nil
}

// exchange sends req to addr and reads the answer to the close, returning
// its status (0 without a status line) and the bytes each way.
func exchange(src, addr, req string) (status, sent, received int, err error) {
	c, err := harness.DialFrom(src, addr)
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		return 0, 0, 0, err
	}
	raw, err := harness.ReadToClose(c, bulkTimeout)
	if err != nil {
		return 0, len(req), len(raw), fail("a response to the close", "%d bytes, then %v", len(raw), describeReadErr(err))
	}
	if r, perr := harness.ParseResponse(raw); perr == nil {
		status = r.Status
	}
	return status, len(req), len(raw), nil
}

// job is one request a check sends, and the status it must get.
type job struct {
	role   int
	target string
	status int
}

// traffic sends the jobs to s from clients connections at a time, each on
// its own connection, and returns the bytes sent and received.
func traffic(s *metricsServer, clients int, jobs []job) (sent, received int64, err error) {
	var next atomic.Int64
	var sentN, recvN atomic.Int64
	errs := inParallel(clients, func(int) error {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(jobs) {
				return nil
			}
			j := jobs[i]
			status, out, in, err := exchange("", at(s.ServerProcess, j.role), request("GET", j.target, "localhost", nil, ""))
			sentN.Add(int64(out))
			recvN.Add(int64(in))
			if err != nil {
				return fmt.Errorf("GET %s: %w", j.target, err)
			}
			if status != j.status {
				return fail(fmt.Sprintf("%d for GET %s", j.status, j.target), "%d", status)
			}
		}
	})
	return sentN.Load(), recvN.Load(), firstErrors(errs, 3)
}

// mixedJobs returns n requests for a server of metricsFiles, in a random
// order: files, redirects, missing files and, with proxied set, proxied
// requests, in the proportions 6:2:1:1.
func mixedJobs(e *Env, n int, proxied bool) []job {
	var jobs []job
	for i := range n {
		switch k := i % 10; {
		case k < 6:
			jobs = append(jobs, job{0, "/sample.txt", 200})
		case k < 8:
			jobs = append(jobs, job{0, "/redirect", 302})
		case k < 9 || !proxied:
			jobs = append(jobs, job{0, "/missing-" + strconv.Itoa(i) + ".txt", 404})
		default:
			jobs = append(jobs, job{1, "/proxied", 200})
		}
	}
	e.Rand().Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	return jobs
}

func checkMetricsJSONShape(e *Env) error {
	s, err := e.metricsFiles("")
	if err != nil {
		return err
	}
	defer s.Close()
	// The first data event must hold the whole answer: head and body leave
	// in one write.
	c, err := harness.Dial(s.api)
	if err != nil {
		return err
	}
	defer c.Close()
	c.Write([]byte(apiRequest))
	first, err := harness.ReadChunk(c, replyTimeout)
	if err != nil {
		return fail("an answer to GET /api", "%v", describeReadErr(err))
	}
	rest, err := harness.ReadToClose(c, replyTimeout)
	if err != nil {
		return fail("the answer, then a close", "%v", describeReadErr(err))
	}
	r, err := harness.ParseResponse(first)
	if err != nil {
		return fail("a response in the first data event", "%v", err)
	}
	if len(rest) > 0 || strconv.Itoa(len(r.Body)) != r.Get("Content-Length") {
		return fail("the whole response in one write, its Content-Length the body's length",
			"%d body bytes in the first write, %d after, Content-Length %q", len(r.Body), len(rest), r.Get("Content-Length"))
	}
	for _, h := range [][2]string{{"Content-Type", "application/json"}, {"Access-Control-Allow-Origin", "*"},
		{"Cache-Control", "no-store"}, {"Server", "eXpServer"}} {
		if got := r.Get(h[0]); r.Status != 200 || got != h[1] {
			return fail(fmt.Sprintf("200 with %s: %s", h[0], h[1]), "%d with %s: %q", r.Status, h[0], got)
		}
	}
	return checkShape(r.Body)
}

// dashboardProbe is what metrics-dashboard-fetch runs in the page: the
// course dashboard's poll, five times a second apart, with the checks its
// rendering depends on. It returns the problems found.
const dashboardProbe = `(async () => {
	const ints = %s;
	const problems = [];
	let prev = null;
	for (let i = 0; i < 5; i++) {
		if (i > 0) await new Promise(r => setTimeout(r, 1000));
		let d;
		try {
			d = await (await fetch(%q)).json();
		} catch (e) {
			problems.push("poll " + (i + 1) + ": " + e);
			continue;
		}
		for (const k of ints) if (!Number.isInteger(d[k])) problems.push(k + " is " + JSON.stringify(d[k]));
		if (typeof d.sys_cpu_usage_percent !== "number") problems.push("sys_cpu_usage_percent is " + JSON.stringify(d.sys_cpu_usage_percent));
		const w = d.workers_cpu_usage_percent;
		if (!Array.isArray(w) || !w.every(x => typeof x === "number")) problems.push("workers_cpu_usage_percent is " + JSON.stringify(w));
		else w.map(x => x.toFixed(2));
		if (prev) {
			const rates = {
				"conn/s": d.conn_accepted - prev.conn_accepted + prev.conn_current - 1,
				"req/s": d.req_total - prev.req_total + prev.req_current - 1,
				"send/s": d.traffic_total_send_bytes - prev.traffic_total_send_bytes,
				"recv/s": d.traffic_total_recv_bytes - prev.traffic_total_recv_bytes,
			};
			for (const [k, v] of Object.entries(rates)) if (!(v >= 0)) problems.push(k + " = " + v);
		}
		prev = d;
	}
	return problems;
})()`

func checkMetricsDashboardFetch(e *Env) error {
	s, err := e.metricsFiles("")
	if err != nil {
		return err
	}
	defer s.Close()
	// A page of another origin, as the course's dashboard is: its own
	// server, on 127.0.0.1.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	page := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!DOCTYPE html><title>metrics probe</title><p>probe</p>"))
	})}
	go page.Serve(ln)
	defer page.Close()
	var ints []string
	for _, k := range apiKeys {
		if k.kind == "int" {
			ints = append(ints, k.name)
		}
	}
	names, _ := json.Marshal(ints)
	_, port, _ := net.SplitHostPort(s.api)
	return withBrowser(func(b *harness.Browser) error {
		if err := b.Navigate("http://" + ln.Addr().String() + "/"); err != nil {
			return err
		}
		var problems []string
		if err := b.Eval(fmt.Sprintf(dashboardProbe, names, "http://localhost:"+port+"/api"), &problems); err != nil {
			return err
		}
		if len(problems) > 0 {
			return fail("five polls from another origin, each a JSON object the dashboard renders", "%s", strings.Join(problems, "; "))
		}
		return nil
	})
}

func checkMetricsDashboardPage(e *Env) error {
	s, err := e.metricsFiles("")
	if err != nil {
		return err
	}
	defer s.Close()
	return withBrowser(func(b *harness.Browser) error {
		if err := b.Navigate("http://" + s.api + "/dashboard"); err != nil {
			return fail("the browser to load /dashboard", "%v", err)
		}
		var polls int
		err := harness.WaitFor(10*time.Second, func() error {
			if err := b.Eval(`+(document.body.dataset.polls || 0)`, &polls); err != nil {
				return harness.Permanent(err)
			}
			if polls < 2 {
				return fail("two polls of /api shown", "%d", polls)
			}
			return nil
		})
		if err != nil {
			return err
		}
		var shown map[string]string
		const read = `(() => { const o = {}; for (const el of document.querySelectorAll("[data-k]")) o[el.dataset.k] = el.textContent;
			o.status = document.getElementById("status").textContent.trim(); return o; })()`
		if err := b.Eval(read, &shown); err != nil {
			return err
		}
		after, err := fetchAPI(s.api)
		if err != nil {
			return err
		}
		number := func(k string) int64 {
			n, err := strconv.ParseInt(strings.ReplaceAll(shown[k], ",", ""), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
		var errs []string
		if number("pid") != int64(s.PID()) {
			errs = append(errs, fmt.Sprintf("PID %q, the server's is %d", shown["pid"], s.PID()))
		}
		if number("workers") != after.n("workers") {
			errs = append(errs, fmt.Sprintf("workers %q, /api says %d", shown["workers"], after.n("workers")))
		}
		if shown["server_name"] != "eXpServer" {
			errs = append(errs, fmt.Sprintf("name %q", shown["server_name"]))
		}
		// Two polls at least were counted; the one after them, ours, too.
		if n := number("req_total"); n < 2 || n >= after.n("req_total") {
			errs = append(errs, fmt.Sprintf("requests %q, /api says %d after", shown["req_total"], after.n("req_total")))
		}
		if n := number("req_metrics"); n < 2 {
			errs = append(errs, fmt.Sprintf("metrics requests %q", shown["req_metrics"]))
		}
		if !strings.HasSuffix(shown["uptime"], "s") && !strings.HasSuffix(shown["uptime"], "m") {
			errs = append(errs, fmt.Sprintf("uptime %q", shown["uptime"]))
		}
		if shown["status"] != "Live" {
			errs = append(errs, fmt.Sprintf("status %q", shown["status"]))
		}
		if len(errs) > 0 {
			return fail("the dashboard showing the server's numbers", "%s", strings.Join(errs, "; "))
		}
		return nil
	})
}

func checkMetricsIdleBaseline(e *Env) error {
	s, err := e.metricsFiles("")
	if err != nil {
		return err
	}
	defer s.Close()
	prev, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	for i := range 3 {
		time.Sleep(time.Second) // polls a second apart, as the dashboard's: the interval is the point
		cur, err := fetchAPI(s.api)
		if err != nil {
			return err
		}
		if err := deltas(prev, cur, map[string]int64{"conn_accepted": 1, "req_total": 1, "req_metrics": 1}); err != nil {
			return fmt.Errorf("poll %d: %w", i+2, err)
		}
		if cur.n("conn_current") != 1 || cur.n("req_current") != 1 {
			return fail("conn_current = req_current = 1: the poll alone", "poll %d: %d and %d", i+2, cur.n("conn_current"), cur.n("req_current"))
		}
		for _, k := range []string{"req_file_serve", "req_reverse_proxy", "req_redirect"} {
			if cur.n(k) != 0 {
				return fail(k+" 0 on an idle server", "%d", cur.n(k))
			}
		}
		prev = cur
	}
	return nil
}

// proxiedUpstream starts an upstream that answers every request with a
// small text.
func proxiedUpstream() (*harness.ScriptedUpstream, error) {
	return harness.StartScripted(harness.Answer("proxied\n"))
}

func checkMetricsExactCounts(e *Env) error {
	up, err := proxiedUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	s, err := e.metricsFiles(up.Addr())
	if err != nil {
		return err
	}
	defer s.Close()
	var jobs []job
	for range 300 {
		jobs = append(jobs, job{0, "/sample.txt", 200})
	}
	for range 100 {
		jobs = append(jobs, job{0, "/redirect", 302})
	}
	for i := range 50 {
		jobs = append(jobs, job{0, "/missing-" + strconv.Itoa(i) + ".txt", 404}, job{1, "/proxied", 200})
	}
	e.Rand().Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	s0, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	sent, received, err := traffic(s, 20, jobs)
	if err != nil {
		return err
	}
	s1, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	return deltas(s0, s1, map[string]int64{
		"req_total": 501, "req_file_serve": 350, "req_redirect": 100, "req_reverse_proxy": 50, "req_metrics": 1, "req_other": 0,
		"res_code_2xx": 351, "res_code_3xx": 100, "res_code_4xx": 50, "res_code_5xx": 0,
		"conn_accepted": 501, "conn_error": 0,
		// What the clients received, and S0's whole response; what they
		// sent, and S1's request.
		"traffic_total_send_bytes": received + int64(len(s0.raw)),
		"traffic_total_recv_bytes": sent + int64(len(apiRequest)),
	})
}

func checkMetricsMonotonic(e *Env) error {
	up, err := proxiedUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	s, err := e.metricsFiles(up.Addr())
	if err != nil {
		return err
	}
	defer s.Close()
	const load = 5 * time.Second
	jobs := mixedJobs(e, 10, true)
	stop := time.Now().Add(load)
	loadErr := make(chan error, 1)
	go func() {
		errs := inParallel(8, func(int) error {
			for time.Now().Before(stop) {
				if _, _, err := traffic(s, 1, jobs); err != nil {
					return err
				}
			}
			return nil
		})
		loadErr <- firstErrors(errs, 3)
	}()
	var snaps []*snapshot
	for time.Now().Before(stop) {
		cur, err := fetchAPI(s.api)
		if err != nil {
			return err
		}
		if err := invariants(cur); err != nil {
			return fmt.Errorf("poll %d: %w", len(snaps)+1, err)
		}
		if len(snaps) > 0 {
			prev := snaps[len(snaps)-1]
			for _, k := range counterKeys {
				if cur.n(k) < prev.n(k) {
					return fail(k+" never to decrease", "poll %d: %d after %d", len(snaps)+1, cur.n(k), prev.n(k))
				}
			}
		}
		snaps = append(snaps, cur)
		time.Sleep(50 * time.Millisecond) // the poller's pace
	}
	if err := <-loadErr; err != nil {
		return fmt.Errorf("the load: %w", err)
	}
	e.logf("%d polls under load; %d requests", len(snaps), snaps[len(snaps)-1].n("req_total"))
	if len(snaps) < 10 {
		return fail("at least 10 polls in 5 s", "%d", len(snaps))
	}
	return nil
}

func checkMetricsQuiescent(e *Env) error {
	return e.withBigFile(func(s *metricsServer) error {
		// Clients of every kind: served, leaving mid-download, leaving
		// with half a head, leaving without a word.
		if _, _, err := traffic(s, 8, mixedJobs(e, 200, false)); err != nil {
			return err
		}
		for i := range 6 {
			c, err := harness.Dial(at(s.ServerProcess, 0))
			if err != nil {
				return err
			}
			switch i % 3 {
			case 0:
				c.Write([]byte(request("GET", "/big/big.bin", "localhost", nil, "")))
				harness.ReadFull(c, 1<<20, replyTimeout)
				harness.Reset(c)
			case 1:
				c.Write([]byte("GET /sample.txt HTTP/1.1\r\nHo"))
				c.Close()
			default:
				c.Close()
			}
		}
		last, _, err := settle(s.api, settleWithin)
		if err != nil {
			return err
		}
		types := last.n("req_file_serve") + last.n("req_reverse_proxy") + last.n("req_redirect") + last.n("req_metrics") + last.n("req_other")
		if types != last.n("req_total") {
			return fail("the five request types adding up to req_total", "%d of %d", types, last.n("req_total"))
		}
		return nil
	})
}

func checkMetricsMalformed(e *Env) error {
	s, err := e.metricsFiles("")
	if err != nil {
		return err
	}
	defer s.Close()
	s0, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	addr := at(s.ServerProcess, 0)
	for i := range 10 {
		status, _, _, err := exchange("", addr, fmt.Sprintf("GARBAGE %d\r\n\r\n", i))
		if err != nil || status != 400 {
			return fail("400 for a garbage head", "%d (%v)", status, err)
		}
	}
	for range 5 {
		c, err := harness.Dial(addr)
		if err != nil {
			return err
		}
		c.Write([]byte("GET /sample.txt HTTP/1.1\r\nHost: localhost\r\nX-Long: " + strings.Repeat("a", 110_000)))
		c.CloseWrite()
		raw, err := harness.ReadToClose(c, replyTimeout)
		c.Close()
		if r, perr := harness.ParseResponse(raw); err != nil || perr != nil || r.Status != 431 {
			return fail("431 for a head of more than 100,000 bytes", "%s (%v)", harness.Abbrev(raw, 60), err)
		}
	}
	for range 5 {
		c, err := harness.Dial(addr)
		if err != nil {
			return err
		}
		c.Close()
	}
	s1, polls, err := settle(s.api, settleWithin)
	if err != nil {
		return err
	}
	return deltas(s0, s1, map[string]int64{"req_total": 15 + polls, "req_other": 15, "req_metrics": polls,
		"res_code_4xx": 15, "conn_accepted": 20 + polls})
}

func checkMetricsTimeouts(e *Env) error {
	var c config
	c.ClientHeader = 1
	c.Routes[0] = []route{fileRoute("/", e.Layout.Public)}
	s, err := e.startMetrics(c)
	if err != nil {
		return err
	}
	defer s.Close()
	s0, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	conns := make([]*net.TCPConn, 10)
	for i := range conns {
		if conns[i], err = harness.Dial(at(s.ServerProcess, 0)); err != nil {
			closeAll(conns[:i])
			return err
		}
		if i%2 == 1 {
			conns[i].Write([]byte("GET /sample.txt HTTP/1.1\r\nHost: loc"))
		}
	}
	defer closeAll(conns)
	errs := inParallel(len(conns), func(i int) error {
		raw, err := harness.ExpectClose(conns[i], time.Second+timerLate+crowdLate)
		if err != nil {
			return fail("a close after client_header_timeout", "%v", describeReadErr(err))
		}
		r, perr := harness.ParseResponse(raw)
		switch {
		case i%2 == 0 && len(raw) > 0:
			return fail("a silent close for a client that sent nothing", "%s", harness.Abbrev(raw, 60))
		case i%2 == 1 && (perr != nil || r.Status != 408):
			return fail("408 for half a head", "%s", harness.Abbrev(raw, 60))
		}
		return nil
	})
	if err := firstErrors(errs, 3); err != nil {
		return err
	}
	s1, polls, err := settle(s.api, settleWithin)
	if err != nil {
		return err
	}
	if err := deltas(s0, s1, map[string]int64{"conn_timeout": 10, "conn_error": 0, "req_total": 5 + polls,
		"req_other": 5, "res_code_4xx": 5}); err != nil {
		return err
	}
	// A 408 comes a second after its head began; timed, it would be the peak.
	if peak := s1.n("res_peak_res_time_msec"); peak >= 1000 {
		return fail("408s left out of the response times", "res_peak_res_time_msec %d", peak)
	}
	return nil
}

// withBigFile runs fn with a server of filesConfig whose first port also
// serves a 50 MiB file at /big/big.bin.
func (e *Env) withBigFile(fn func(s *metricsServer) error) error {
	dir, err := workDir(e, "metrics-big", map[string]string{"big/big.bin": ""})
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Truncate(filepath.Join(dir, "big", "big.bin"), 50<<20); err != nil {
		return err
	}
	c := e.filesConfig("")
	// A route's req_path stays part of the file's path: /big/big.bin is
	// dir/big/big.bin.
	c.Routes[0] = append(c.Routes[0], fileRoute("/big", dir))
	s, err := e.startMetrics(c)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func checkMetricsConnErrors(e *Env) error {
	return e.withBigFile(func(s *metricsServer) error {
		s0, err := fetchAPI(s.api)
		if err != nil {
			return err
		}
		for range 10 {
			c, err := harness.Dial(at(s.ServerProcess, 0))
			if err != nil {
				return err
			}
			c.Write([]byte(request("GET", "/big/big.bin", "localhost", nil, "")))
			if _, err := harness.ReadFull(c, 1<<20, replyTimeout); err != nil {
				c.Close()
				return fail("the first MiB of a 50 MiB file", "%v", describeReadErr(err))
			}
			harness.Reset(c)
		}
		s1, polls, err := settle(s.api, settleWithin)
		if err != nil {
			return err
		}
		if err := deltas(s0, s1, map[string]int64{"conn_error": 10, "req_total": 10 + polls, "req_file_serve": 10}); err != nil {
			return fmt.Errorf("10 clients resetting after 1 MiB of 50: %w", err)
		}
		// These clients send a body of 2 MiB, which the server reads and
		// drops after its response: it still reads them when they reset.
		body := strings.Repeat("b", 2<<20)
		for range 10 {
			c, err := harness.Dial(at(s.ServerProcess, 0))
			if err != nil {
				return err
			}
			c.Write([]byte(request("GET", "/sample.txt", "localhost", nil, body)))
			raw, err := harness.ReadToClose(c, replyTimeout)
			if r, perr := harness.ParseResponse(raw); err != nil || perr != nil || r.Status != 200 {
				c.Close()
				return fail("a whole response for /sample.txt", "%s (%v)", harness.Abbrev(raw, 60), err)
			}
			harness.Reset(c)
		}
		s2, _, err := settle(s.api, settleWithin)
		if err != nil {
			return err
		}
		if err := deltas(s1, s2, map[string]int64{"conn_error": 0}); err != nil {
			return fmt.Errorf("10 clients resetting after a whole response: %w", err)
		}
		return nil
	})
}

// listeningPorts returns the ports the process pid listens on.
func listeningPorts(pid int) ([]int, error) {
	sockets, err := harness.ListeningSockets()
	if err != nil {
		return nil, err
	}
	targets, err := harness.FDTargets(pid)
	if err != nil {
		return nil, err
	}
	var ports []int
	for _, s := range sockets {
		if slices.Contains(targets, "socket:["+s.Inode+"]") {
			ports = append(ports, s.Port)
		}
	}
	slices.Sort(ports)
	return ports, nil
}

func checkMetricsAcceptErrors(e *Env) error {
	s, err := e.metricsFiles("")
	if err != nil {
		return err
	}
	defer s.Close()
	const idle, queued = 30, 5
	release, err := harness.ReserveFDs(idle + queued + 2)
	if err != nil {
		return err
	}
	defer release()
	pid := s.PID()
	if _, err := stableFDs(e, pid); err != nil {
		return err
	}
	open, err := harness.FDCount(pid)
	if err != nil {
		return err
	}
	var lim unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		return err
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(open + 10), Max: lim.Max}, nil); err != nil {
		return fmt.Errorf("lowering the server's descriptor limit to %d: %w", open+10, err)
	}
	idlers := make([]*net.TCPConn, 0, idle)
	defer func() { closeAll(idlers) }()
	for range idle {
		c, err := harness.Dial(at(s.ServerProcess, 0))
		if err != nil {
			return fail(fmt.Sprintf("%d idle clients connected (the kernel queues them)", idle), "%v", err)
		}
		idlers = append(idlers, c)
	}
	if err := s.Alive(); err != nil {
		return fail("the server to keep running out of descriptors", "it exited (%v)", err)
	}
	// Clients with a request, queued behind the idle ones; no client
	// arrives after them to wake the listener.
	waiting := make([]*net.TCPConn, 0, queued)
	defer func() { closeAll(waiting) }()
	for range queued {
		c, err := harness.Dial(at(s.ServerProcess, 0))
		if err != nil {
			return err
		}
		c.Write([]byte(request("GET", "/sample.txt", "localhost", nil, "")))
		waiting = append(waiting, c)
	}
	closeAll(idlers)
	idlers = nil
	// Room comes back as the idle clients leave; the queued ones are
	// served without a new arrival to wake the listener.
	within := time.Second + crowdLate
	errs := inParallel(queued, func(i int) error {
		raw, err := harness.ReadToClose(waiting[i], within)
		if r, perr := harness.ParseResponse(raw); err != nil || perr != nil || r.Status != 200 {
			return fail(fmt.Sprintf("a queued client served within %v of the idle ones leaving", within), "%s (%v)", harness.Abbrev(raw, 60), describeReadErr(err))
		}
		return nil
	})
	if err := firstErrors(errs, 3); err != nil {
		return err
	}
	snap, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	if snap.n("conn_accepted_error") < 1 {
		return fail("conn_accepted_error ≥ 1 after clients waited for want of descriptors", "%d", snap.n("conn_accepted_error"))
	}
	return nil
}

// slowUpstream starts an upstream that answers each request after hold.
func slowUpstream(hold time.Duration) (*harness.ScriptedUpstream, error) {
	return harness.StartScripted(func(x *harness.Exchange) {
		if _, err := x.ReadBody(); err == nil && x.Wait(hold) {
			x.Respond("late\n")
		}
	})
}

func checkMetricsLatency(e *Env) error {
	up, err := slowUpstream(300 * time.Millisecond)
	if err != nil {
		return err
	}
	defer up.Close()
	return e.withBigFile(func(s *metricsServer) error {
		// A download read at 1 MiB/s for two seconds, then to its end: its
		// first byte comes at once, its last more than two seconds later.
		c, err := harness.Dial(at(s.ServerProcess, 0))
		if err != nil {
			return err
		}
		c.Write([]byte(request("GET", "/big/big.bin", "localhost", nil, "")))
		buf := make([]byte, 64<<10)
		for range 32 {
			c.SetReadDeadline(time.Now().Add(replyTimeout))
			if _, err := c.Read(buf); err != nil {
				c.Close()
				return fail("the download to go on", "%v", describeReadErr(err))
			}
			time.Sleep(time.Second / 16) // the reader's pace: 64 KiB sixteen times a second
		}
		_, err = harness.ReadToClose(c, bulkTimeout)
		c.Close()
		if err != nil {
			return fail("the rest of the download", "%v", describeReadErr(err))
		}
		snap, err := fetchAPI(s.api)
		if err != nil {
			return err
		}
		if peak := snap.n("res_peak_res_time_msec"); peak < 0 || peak > 100 {
			return fail("a slow download to leave the peak at most 100 ms (time to first byte)", "res_peak_res_time_msec %d", peak)
		}
		// The proxied requests go through a server of their own, whose
		// peak only they set.
		var pc config
		pc.Routes[0] = []route{proxyRoute("/", up.Addr())}
		p, err := e.startMetrics(pc)
		if err != nil {
			return err
		}
		defer p.Close()
		for range 5 {
			status, _, _, err := exchange("", at(p.ServerProcess, 0), request("GET", "/slow", "localhost", nil, ""))
			if err != nil || status != 200 {
				return fail("200 from the slow upstream", "%d (%v)", status, err)
			}
		}
		snap, err = fetchAPI(p.api)
		if err != nil {
			return err
		}
		if peak := snap.n("res_peak_res_time_msec"); peak < 300 || peak > 600 {
			return fail("res_peak_res_time_msec 300–600 behind an upstream holding 300 ms", "%d", peak)
		}
		return nil
	})
}

func checkMetricsProxiedCodes(e *Env) error {
	answers := map[string]string{
		"/gone":  "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nX-Upstream: yes\r\n\r\nnot here\n",
		"/later": "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 6\r\n\r\nlater\n",
	}
	up, err := harness.StartScripted(func(x *harness.Exchange) {
		if _, err := x.ReadBody(); err == nil {
			x.Conn.Write([]byte(answers[x.Path()]))
		}
	})
	if err != nil {
		return err
	}
	defer up.Close()
	dead, err := harness.FreePorts(1)
	if err != nil {
		return err
	}
	var c config
	c.Routes[0] = []route{proxyRoute("/", up.Addr())}
	c.Routes[1] = []route{proxyRoute("/", "127.0.0.1:"+strconv.Itoa(dead[0]))}
	s, err := e.startMetrics(c)
	if err != nil {
		return err
	}
	defer s.Close()
	s0, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	for _, path := range []string{"/gone", "/later"} {
		_, raw, err := harness.RoundTrip(at(s.ServerProcess, 0), request("GET", path, "localhost", nil, ""), replyTimeout)
		if err != nil || string(raw) != answers[path] {
			return fail("the upstream's answer byte for byte", "%s (%v)", harness.Abbrev(raw, 80), err)
		}
	}
	status, _, _, err := exchange("", at(s.ServerProcess, 1), request("GET", "/x", "localhost", nil, ""))
	if err != nil || status != 502 {
		return fail("502 from a route whose upstream is down", "%d (%v)", status, err)
	}
	s1, polls, err := settle(s.api, settleWithin)
	if err != nil {
		return err
	}
	return deltas(s0, s1, map[string]int64{"res_code_4xx": 1, "res_code_5xx": 2, "res_code_2xx": polls,
		"req_reverse_proxy": 3, "req_total": 3 + polls})
}

func checkMetricsMethodsPaths(e *Env) error {
	s, err := e.metricsFiles("")
	if err != nil {
		return err
	}
	defer s.Close()
	ask := func(method, target string) (*harness.Response, []byte, error) {
		r, raw, err := harness.RoundTrip(s.api, request(method, target, "localhost", nil, ""), replyTimeout)
		if err != nil {
			return nil, raw, fail("an answer to "+method+" "+target, "%v", err)
		}
		if r.Get("Cache-Control") != "no-store" || r.Get("Access-Control-Allow-Origin") != "*" {
			return nil, raw, fail(method+" "+target+" answered with Cache-Control: no-store and Access-Control-Allow-Origin: *", "%s", harness.Abbrev(raw, 200))
		}
		return r, raw, nil
	}
	var errs []error
	if r, raw, err := ask("POST", "/api"); err != nil {
		errs = append(errs, err)
	} else if r.Status != 405 || r.Get("Allow") != "GET, HEAD" {
		errs = append(errs, fail("POST /api: 405 with Allow: GET, HEAD", "%s", harness.Abbrev(raw, 120)))
	}
	for _, target := range []string{"/api", "/metrics"} {
		if r, raw, err := ask("HEAD", target); err != nil {
			errs = append(errs, err)
		} else if cl, _ := strconv.Atoi(r.Get("Content-Length")); r.Status != 200 || cl == 0 || len(r.Body) != 0 ||
			!strings.HasPrefix(r.Get("Content-Type"), map[string]string{"/api": "application/json", "/metrics": "text/plain"}[target]) {
			errs = append(errs, fail("HEAD "+target+": GET's head, Content-Length and type included, and no body", "%s", harness.Abbrev(raw, 200)))
		}
	}
	for _, target := range []string{"/", "/api/", "/apix", "/API", "/metricsx"} {
		if r, raw, err := ask("GET", target); err != nil {
			errs = append(errs, err)
		} else if r.Status != 404 {
			errs = append(errs, fail("GET "+target+": 404", "%s", harness.Abbrev(raw, 80)))
		}
	}
	if _, err := fetchAPIFrom("", s.api, "GET /api?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		errs = append(errs, fmt.Errorf("GET /api?x=1: %w", err))
	}
	return errors.Join(errs...)
}

// metricsWarning is the start of the WARNING of a config whose fourth
// server listens on 8004.
const metricsWarning = "metrics: port 8004 is used by servers[3]"

// expectDefaultOff checks a server whose config has no metrics key and a
// server on 8004 (the grader's): one WARNING naming servers[3], and 8004
// answering as that server, 404 to /api.
func expectDefaultOff(e *Env, log func() string) error {
	if n := strings.Count(log(), metricsWarning); n != 1 {
		return fail("one WARNING: "+metricsWarning+"; metrics disabled", "%d such lines in %s", n, harness.Abbrev([]byte(log()), 400))
	}
	r, err := harness.Get(e.Host+":8004", "/api", replyTimeout)
	if err != nil || r.Status != 404 {
		return fail("8004 to stay the config's server: 404 for /api", "%v (%v)", r, err)
	}
	return nil
}

func checkMetricsPortDefault(e *Env) error {
	if slices.Contains(e.Ports[:], 8004) {
		// The server under test holds the course's ports, with the
		// grader's config: that is the second case, and 8004 cannot be
		// freed for the first.
		e.logf("the server under test holds 8004 with the grader's config: only that case is checked")
		return expectDefaultOff(e, e.Server.Log)
	}
	release, err := harness.LockCoursePorts()
	if err != nil {
		return err
	}
	defer release()
	if err := harness.PortFree(8004); err != nil {
		return skip("the implicit metrics port needs 8004: %v", err)
	}
	var c config
	c.Routes[0] = []route{fileRoute("/", e.Layout.Public)}
	free, err := freeInstancePorts()
	if err != nil {
		return err
	}
	s, err := e.StartInstance(Instance{Ports: free, Config: c.json(free), AsWritten: true})
	if err != nil {
		return err
	}
	snap, err := fetchAPI(e.Host + ":8004")
	s.Close()
	if err != nil {
		return fmt.Errorf("a config without a metrics key: %w", err)
	}
	if snap.n("pid") != int64(s.PID()) {
		return fail("/api on 8004 answered by the server started without a metrics key", "pid %d, the server's %d", snap.n("pid"), s.PID())
	}
	// The grader's shape: a route-less fourth server on 8004.
	ports := [4]int{free[0], free[1], free[2], 8004}
	g, err := e.StartInstance(Instance{Ports: ports, Config: c.json(ports), AsWritten: true})
	if err != nil {
		return err
	}
	defer g.Close()
	if err := expectDefaultOff(e, g.Log); err != nil {
		return err
	}
	if r, err := harness.Get(at(g, 0), "/sample.txt", replyTimeout); err != nil || r.Status != 200 {
		return fail("the first server to serve /sample.txt", "%v (%v)", r, err)
	}
	return nil
}

func checkMetricsPortConfig(e *Env) error {
	var c config
	c.Routes[0] = []route{fileRoute("/", e.Layout.Public)}
	s, err := e.startMetrics(c)
	if err != nil {
		return err
	}
	if _, err := fetchAPI(s.api); err != nil {
		s.Close()
		return fmt.Errorf(`"metrics": {"port": P}: %w`, err)
	}
	s.Close()
	c.More = map[string]any{"metrics": false}
	off, err := e.startWith(c)
	if err != nil {
		return err
	}
	ports, err := listeningPorts(off.PID())
	off.Close()
	if err != nil {
		return err
	}
	if want := slices.Sorted(slices.Values(off.Ports[:])); !slices.Equal(ports, want) {
		return fail(fmt.Sprintf(`"metrics": false: listening on the servers' ports %v only`, want), "listening on %v", ports)
	}
	free, err := freeInstancePorts()
	if err != nil {
		return err
	}
	for _, bad := range []struct {
		metrics any
		path    string
	}{
		{map[string]any{"port": free[0]}, "metrics.port"},
		{map[string]any{"colour": 1}, "metrics.colour"},
		{map[string]any{"port": 70000}, "metrics.port"},
		{"yes", "metrics"},
	} {
		c.More = map[string]any{"metrics": bad.metrics}
		code, out, err := e.RefusedStart(Instance{Ports: free, Config: c.json(free)}, startupTimeout)
		if err != nil {
			return err
		}
		if code != 2 || !namesPath(out, bad.path) {
			return fail(fmt.Sprintf("exit status 2 and a message naming %s for \"metrics\": %v", bad.path, bad.metrics),
				"exit status %d; it printed %s", code, harness.Abbrev([]byte(strings.TrimSpace(out)), 200))
		}
	}
	return nil
}

func checkMetricsACL(e *Env) error {
	var c config
	c.Routes[0] = []route{fileRoute("/", e.Layout.Public)}
	c.More = map[string]any{"metrics": map[string]any{"ip_whitelist": []string{ip1}}}
	s, err := e.startMetrics(c)
	if err != nil {
		return err
	}
	defer s.Close()
	s0, err := fetchAPIFrom(ip1, s.api, apiRequest)
	if err != nil {
		return fmt.Errorf("from %s: %w", ip1, err)
	}
	r, raw, err := harness.RoundTripFrom(ip2, s.api, apiRequest, replyTimeout)
	if err != nil || r.Status != 403 {
		return fail("403 for /api from "+ip2, "%s (%v)", harness.Abbrev(raw, 80), err)
	}
	s1, err := fetchAPIFrom(ip1, s.api, apiRequest)
	if err != nil {
		return fmt.Errorf("from %s: %w", ip1, err)
	}
	return deltas(s0, s1, map[string]int64{"req_metrics": 2, "req_total": 2, "res_code_4xx": 1, "res_code_2xx": 1})
}

func checkMetricsEscaping(e *Env) error {
	const name = "eX\"p\\S é"
	var c config
	c.Routes[0] = []route{fileRoute("/", e.Layout.Public)}
	c.More = map[string]any{"server_name": name}
	s, err := e.startMetrics(c)
	if err != nil {
		return err
	}
	defer s.Close()
	snap, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	if got, _ := snap.v["server_name"].(string); got != name {
		return fail(fmt.Sprintf("server_name %q", name), "%q", snap.v["server_name"])
	}
	return nil
}

// busy runs clients that ask for target on addr, with Accept-Encoding
// acceptEncoding, one after another each, discarding what comes back,
// until stop is closed.
func busy(addr, target, acceptEncoding string, clients int, stop <-chan struct{}) {
	inParallel(clients, func(int) error {
		for {
			select {
			case <-stop:
				return nil
			default:
			}
			c, err := harness.Dial(addr)
			if err != nil {
				continue
			}
			c.Write([]byte(gzipRequest(target, acceptEncoding)))
			harness.ReadToClose(c, bulkTimeout)
			c.Close()
		}
	})
}

func checkMetricsGauges(e *Env) error {
	// CPU-bound load: a 4 MiB text compressed at level 9 for each request
	// (stage 19), from several clients at once.
	dir, err := workDir(e, "metrics-cpu", map[string]string{"big.txt": string(randomText(e.Rand(), 4<<20))})
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var c config
	r := gzipRoute("/", dir)
	r.GzipLevel = 9
	c.Routes[0] = []route{r}
	s, err := e.startMetrics(c)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := fetchAPI(s.api); err != nil { // the window starts here
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { busy(at(s.ServerProcess, 0), "/big.txt", "gzip", 8, stop) })
	time.Sleep(3 * time.Second) // the measurement window
	loaded, err := fetchAPI(s.api)
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	if cpu := percents(loaded.v["workers_cpu_usage_percent"]); len(cpu) == 0 || cpu[0] < 50 {
		return fail("workers_cpu_usage_percent[0] ≥ 50 under 3 s of CPU-bound load", "%v", cpu)
	}
	// The requests still in flight when the load stopped have been
	// answered; the idle window starts with a sample taken after them
	// (samples are at least 500 ms apart).
	time.Sleep(600 * time.Millisecond)
	if _, err := fetchAPI(s.api); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the idle window
	idle, err := fetchAPI(s.api)
	if err != nil {
		return err
	}
	if cpu := percents(idle.v["workers_cpu_usage_percent"]); len(cpu) == 0 || cpu[0] >= 5 {
		return fail("workers_cpu_usage_percent[0] < 5 after 3 s idle", "%v", cpu)
	}
	rss, err := harness.RSS(s.PID())
	if err != nil {
		return err
	}
	if got := idle.n("workers_ram_usage_bytes"); math.Abs(float64(got-rss)) > 0.1*float64(rss) {
		return fail(fmt.Sprintf("workers_ram_usage_bytes within 10 %% of VmRSS (%d)", rss), "%d", got)
	}
	total, err := memTotal()
	if err != nil {
		return err
	}
	if got := idle.n("sys_ram_total_bytes"); got != total {
		return fail(fmt.Sprintf("sys_ram_total_bytes = MemTotal × 1024 = %d", total), "%d", got)
	}
	return nil
}

// percents reads a decoded JSON array of numbers.
func percents(v any) []float64 {
	a, _ := v.([]any)
	var out []float64
	for _, x := range a {
		if n, ok := x.(json.Number); ok {
			f, _ := n.Float64()
			out = append(out, f)
		}
	}
	return out
}

// memTotal returns MemTotal from /proc/meminfo, in bytes.
func memTotal() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}

func checkMetricsNoSpin(e *Env) error {
	s, err := e.metricsFiles("")
	if err != nil {
		return err
	}
	defer s.Close()
	measure := func(poll bool) (float64, error) {
		meter, err := harness.StartCPUMeter(s.PID())
		if err != nil {
			return 0, err
		}
		for range 3 {
			time.Sleep(time.Second) // the measurement window, a second at a time
			if poll {
				if _, err := fetchAPI(s.api); err != nil {
					return 0, err
				}
			}
		}
		pct, _, err := meter.Percent()
		return pct, err
	}
	idle, err := measure(false)
	if err != nil {
		return err
	}
	if idle >= 1 {
		return fail("under 1 % CPU over 3 s idle, with metrics on", "%.2f %%", idle)
	}
	polled, err := measure(true)
	if err != nil {
		return err
	}
	e.logf("CPU over 3 s: %.2f %% idle, %.2f %% polled once a second", idle, polled)
	if polled >= 2 {
		return fail("under 2 % CPU over 3 s polled once a second", "%.2f %%", polled)
	}
	return nil
}

// promSample is one sample line of the Prometheus text format.
var promSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+]+|\+Inf|-Inf|NaN)$`)

func checkMetricsPrometheus(e *Env) error {
	up, err := proxiedUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	s, err := e.metricsFiles(up.Addr())
	if err != nil {
		return err
	}
	defer s.Close()
	if _, _, err := traffic(s, 4, mixedJobs(e, 40, true)); err != nil {
		return err
	}
	if _, _, err := settle(s.api, settleWithin); err != nil {
		return err
	}
	const metricsRequest = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
	r, raw, err := harness.RoundTrip(s.api, metricsRequest, replyTimeout)
	if err != nil || r.Status != 200 {
		return fail("200 for GET /metrics", "%s (%v)", harness.Abbrev(raw, 80), err)
	}
	api, err := fetchAPI(s.api) // back to back
	if err != nil {
		return err
	}
	if got := r.Get("Content-Type"); got != "text/plain; version=0.0.4; charset=utf-8" {
		return fail("Content-Type: text/plain; version=0.0.4; charset=utf-8", "%q", got)
	}
	body := string(r.Body)
	if !strings.HasSuffix(body, "\n") {
		return fail("the text to end with a newline", "%s", harness.Abbrev(r.Body[max(len(r.Body)-40, 0):], 40))
	}
	types := map[string]string{}
	samples := map[string]float64{} // name{labels} → value
	var buckets []float64
	for line := range strings.Lines(body) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "", strings.HasPrefix(line, "# HELP "):
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 {
				return fail("# TYPE name type", "%q", line)
			}
			if _, dup := types[f[2]]; dup {
				return fail("one # TYPE per family", "a second for %s", f[2])
			}
			types[f[2]] = f[3]
			if f[3] == "counter" && !strings.HasSuffix(f[2], "_total") {
				return fail("counters named …_total", "%s", f[2])
			}
		case strings.HasPrefix(line, "#"):
		default:
			m := promSample.FindStringSubmatch(line)
			if m == nil {
				return fail("comments, blank lines and samples `name{labels} value` only", "%q", line)
			}
			v, _ := strconv.ParseFloat(m[3], 64)
			samples[m[1]+m[2]] = v
			if m[1] == "xps_response_time_seconds_bucket" {
				buckets = append(buckets, v)
			}
		}
	}
	if types["xps_response_time_seconds"] != "histogram" || len(buckets) == 0 || !slices.IsSorted(buckets) ||
		samples[`xps_response_time_seconds_bucket{le="+Inf"}`] != samples["xps_response_time_seconds_count"] {
		return fail(`a histogram xps_response_time_seconds with cumulative buckets, le="+Inf" equal to _count`,
			"type %q, buckets %v, count %v", types["xps_response_time_seconds"], buckets, samples["xps_response_time_seconds_count"])
	}
	// /api came right after /metrics: it counts one more connection and
	// request (its own), one more 2xx and metrics request (the scrape's
	// response, and itself), and the scrape's bytes.
	reqs := 0.0
	for _, t := range []string{"file_serve", "reverse_proxy", "redirect", "metrics", "other"} {
		reqs += samples[`xps_requests_total{type="`+t+`"}`]
	}
	want := map[string]float64{
		"conn_accepted":            samples["xps_connections_accepted_total"] + 1,
		"req_total":                reqs + 1,
		"req_metrics":              samples[`xps_requests_total{type="metrics"}`] + 1,
		"req_file_serve":           samples[`xps_requests_total{type="file_serve"}`],
		"req_reverse_proxy":        samples[`xps_requests_total{type="reverse_proxy"}`],
		"res_code_2xx":             samples[`xps_responses_total{class="2xx"}`] + 1,
		"res_code_3xx":             samples[`xps_responses_total{class="3xx"}`],
		"res_code_4xx":             samples[`xps_responses_total{class="4xx"}`],
		"conn_error":               samples["xps_connections_errors_total"],
		"traffic_total_send_bytes": samples["xps_sent_bytes_total"] + float64(len(raw)),
		"traffic_total_recv_bytes": samples["xps_received_bytes_total"] + float64(len(apiRequest)),
		"workers":                  samples["xps_workers"],
	}
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if float64(api.n(k)) != want[k] {
			errs = append(errs, fmt.Sprintf("%s %d, from /metrics %v", k, api.n(k), want[k]))
		}
	}
	if len(errs) > 0 {
		return fail("/metrics and a back-to-back /api to agree", "%s", strings.Join(errs, "; "))
	}
	return nil
}

func checkMetricsRegression(e *Env) error {
	if e.Upstream == nil {
		return skip("no upstream for the grader's config")
	}
	free, err := harness.FreePorts(5)
	if err != nil {
		return err
	}
	ports := [4]int(free[:4])
	config := withMetricsKey(harness.CourseConfig(ports, e.upstreamAddr()), `{"port": `+strconv.Itoa(free[4])+`}`)
	s, err := e.StartInstance(Instance{Ports: ports, Config: config})
	if err != nil {
		return err
	}
	defer s.Close()
	api := e.Host + ":" + strconv.Itoa(free[4])
	s0, err := fetchAPI(api)
	if err != nil {
		return err
	}
	// The official cases against this server: the same checks, pointed at
	// its ports.
	sub := *e
	sub.Ports, sub.Server = ports, s
	var errs []error
	for _, m := range officialCases() {
		if err := m.Run(&sub); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.ID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s1, _, err := settle(api, settleWithin)
	if err != nil {
		return err
	}
	// Every case was counted: files, the proxy and the redirects.
	for _, k := range []string{"req_file_serve", "req_reverse_proxy", "req_redirect", "res_code_2xx", "res_code_3xx"} {
		if s1.n(k) <= s0.n(k) {
			return fail("the official cases counted by type and class", "%s %d before, %d after", k, s0.n(k), s1.n(k))
		}
	}
	return invariants(s1)
}
