package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"expserver-go/common/buffer"
	"expserver-go/tests/harness"

	"golang.org/x/sys/unix"
)

// metricsConfigDoc returns a config whose servers listen on the given
// addresses ("host:port"), one server each, with metrics, when not empty,
// as the value of the metrics key.
func metricsConfigDoc(metrics string, addrs ...string) string {
	var servers []string
	for _, a := range addrs {
		host, port, _ := strings.Cut(a, ":")
		servers = append(servers, `{"listeners": [{"host": "`+host+`", "port": `+port+`}]}`)
	}
	doc := `{"servers": [` + strings.Join(servers, ", ") + `]`
	if metrics != "" {
		doc += `, "metrics": ` + metrics
	}
	return doc + "}"
}

func TestParseMetrics(t *testing.T) {
	dir := t.TempDir()
	ok := []struct {
		name, metrics string
		addrs         []string
		want          *metricsConfig
	}{
		{"absent: implicit", "", []string{"0.0.0.0:8001"}, &metricsConfig{listenerConfig: listenerConfig{"0.0.0.0", 8004}, implicit: true}},
		{"absent, a server on 8004: none", "", []string{"0.0.0.0:8001", "127.0.0.1:8004"}, nil},
		{"false", "false", []string{"0.0.0.0:8001"}, nil},
		{"false beside a server on 8004", "false", []string{"0.0.0.0:8004"}, nil},
		{"true", "true", []string{"0.0.0.0:8001"}, &metricsConfig{listenerConfig: listenerConfig{"0.0.0.0", 8004}}},
		{"empty object", "{}", []string{"0.0.0.0:8001"}, &metricsConfig{listenerConfig: listenerConfig{"0.0.0.0", 8004}}},
		{"port", `{"port": 9100}`, []string{"0.0.0.0:8004"}, &metricsConfig{listenerConfig: listenerConfig{"0.0.0.0", 9100}}},
		{"another host on a server's port", `{"host": "127.0.0.1", "port": 8001}`, []string{"127.0.0.2:8001"},
			&metricsConfig{listenerConfig: listenerConfig{"127.0.0.1", 8001}}},
		{"lists", `{"ip_whitelist": ["127.0.0.0/8"], "ip_blacklist": ["127.0.0.2"]}`, []string{"0.0.0.0:8001"},
			&metricsConfig{listenerConfig: listenerConfig{"0.0.0.0", 8004},
				ipWhitelist: ipList{netip.MustParsePrefix("127.0.0.0/8")}, ipBlacklist: ipList{netip.MustParsePrefix("127.0.0.2/32")}}},
	}
	for _, tc := range ok {
		cfg, err := loadConfig(writeFile(t, dir, "ok.json", metricsConfigDoc(tc.metrics, tc.addrs...)))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if (cfg.metrics == nil) != (tc.want == nil) || cfg.metrics != nil && !metricsConfigEqual(cfg.metrics, tc.want) {
			t.Errorf("%s: metrics %+v, want %+v", tc.name, cfg.metrics, tc.want)
		}
	}

	bad := []struct {
		name, metrics string
		addrs         []string
		want          string
	}{
		{"explicit on a server's port", `{"port": 8001}`, []string{"0.0.0.0:8001"}, "metrics.port: 8001 is also servers[0].listeners[0]"},
		{"true beside a server on 8004", "true", []string{"0.0.0.0:8001", "0.0.0.0:8002", "0.0.0.0:8003", "0.0.0.0:8004"},
			"metrics.port: 8004 is also servers[3].listeners[0]"},
		{"a server on all addresses", `{"host": "127.0.0.1", "port": 8001}`, []string{"0.0.0.0:8001"}, "metrics.port: 8001 is also servers[0]"},
		{"the same address", `{"host": "127.0.0.1", "port": 8001}`, []string{"127.0.0.1:8001"}, "metrics.port: 8001 is also servers[0]"},
		{"unknown key", `{"colour": 1}`, []string{"0.0.0.0:8001"}, "metrics.colour: unknown key"},
		{"port out of range", `{"port": 70000}`, []string{"0.0.0.0:8001"}, "metrics.port: 70000 is not a port"},
		{"port 0", `{"port": 0}`, []string{"0.0.0.0:8001"}, "metrics.port: 0 is not a port"},
		{"port as a string", `{"port": "9100"}`, []string{"0.0.0.0:8001"}, "metrics.port: want a number"},
		{"empty host", `{"host": ""}`, []string{"0.0.0.0:8001"}, "metrics.host: must not be empty"},
		{"a string", `"on"`, []string{"0.0.0.0:8001"}, "metrics: want a boolean or an object, got string"},
		{"null", `null`, []string{"0.0.0.0:8001"}, "metrics: want a boolean or an object, got null"},
		{"a bad list entry", `{"ip_whitelist": ["127.0.0.1", "localhost"]}`, []string{"0.0.0.0:8001"}, "metrics.ip_whitelist[1]: "},
	}
	for _, tc := range bad {
		_, err := loadConfig(writeFile(t, dir, "bad.json", metricsConfigDoc(tc.metrics, tc.addrs...)))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one starting %q", tc.name, err, tc.want)
		}
	}
}

func metricsConfigEqual(a, b *metricsConfig) bool {
	return a.listenerConfig == b.listenerConfig && a.implicit == b.implicit &&
		slices.Equal(a.ipWhitelist, b.ipWhitelist) && slices.Equal(a.ipBlacklist, b.ipBlacklist)
}

// The course's tester config, with its route-less server on 8004, loads
// without a metrics listener.
func TestCourseConfigHasNoMetrics(t *testing.T) {
	path, _ := courseLayout(t)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.metrics != nil {
		t.Errorf("metrics %+v, want none: a server listens on 8004", cfg.metrics)
	}
}

// clientOf returns a client connection of a core without sockets.
func clientOf(c *core) *connection {
	return &connection{core: c, remoteIP: "192.0.2.1", listener: &listener{core: c}}
}

// playRequest plays a request's life on conn as the connection and the session
// report it: bytes in, the head complete, its type, bytes out, the
// response sent, the close.
func playRequest(conn *connection, typ metric, status int, in, out int) {
	conn.countReceived(in)
	conn.countHeadDone()
	conn.countType(typ)
	conn.core.slot.countStatus(status)
	conn.countSent(out)
	conn.countResponseSent()
	conn.countClose()
}

func TestSnapshotCounts(t *testing.T) {
	c := testCore()
	m := c.metrics
	c.slot.set(mConnAccept, 4)
	playRequest(clientOf(c), mReqFileServe, 200, 100, 1000)
	playRequest(clientOf(c), mReqRedirect, 302, 50, 200)

	// A client that resets mid-response: an error, its request ended.
	broken := clientOf(c)
	broken.countReceived(70)
	broken.countHeadDone()
	broken.countType(mReqFileServe)
	broken.countSent(5000)
	broken.countError()
	broken.countClose()

	// A client that sends part of a head and leaves: a request of type
	// other, no response.
	partial := clientOf(c)
	partial.countReceived(3)
	partial.countClose()

	// An upstream connection counts nowhere.
	up := &connection{core: c}
	up.countReceived(1 << 20)
	up.countSent(300)

	s := m.snapshot()
	want := map[string]uint64{
		"connAccepted": 4, "connCurrent": 0, "connError": 1, "connTimeout": 0,
		"reqTotal": 4, "reqCurrent": 0, "received": 223, "sent": 6200,
	}
	got := map[string]uint64{
		"connAccepted": s.connAccepted, "connCurrent": s.connCurrent, "connError": s.connError, "connTimeout": s.connTimeout,
		"reqTotal": s.reqTotal, "reqCurrent": s.reqCurrent, "received": s.received, "sent": s.sent,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if want := [5]uint64{2, 0, 1, 0, 1}; s.types != want {
		t.Errorf("types %v, want %v (file, proxy, redirect, metrics, other)", s.types, want)
	}
	if want := [4]uint64{1, 1, 0, 0}; s.classes != want {
		t.Errorf("classes %v, want %v", s.classes, want)
	}
	if s.resN != 3 {
		t.Errorf("%d response times, want 3: the partial head was never answered", s.resN)
	}
	if s.workersAccepted[0] != s.connAccepted {
		t.Errorf("workers_conn_accepted %v, conn_accepted %d", s.workersAccepted, s.connAccepted)
	}
}

// A connection ends in at most one of error and timeout, and a failure
// after its response went out whole is no error.
func TestConnectionFates(t *testing.T) {
	cases := []struct {
		name      string
		play      func(*connection)
		err, tout uint64
	}{
		{"reset before the response", func(c *connection) { c.countReceived(1); c.countError() }, 1, 0},
		{"reset after the response", func(c *connection) { c.countReceived(1); c.countResponseSent(); c.countError() }, 0, 0},
		{"header timeout", func(c *connection) { c.countTimeout() }, 0, 1},
		{"timeout, then a reset", func(c *connection) { c.countReceived(1); c.countTimeout(); c.countError() }, 0, 1},
		{"reset, then a timeout", func(c *connection) { c.countError(); c.countTimeout() }, 1, 0},
		{"send timeout after the head", func(c *connection) { c.countReceived(9); c.countHeadDone(); c.countSent(1); c.countTimeout() }, 0, 1},
	}
	for _, tc := range cases {
		c := testCore()
		c.slot.set(mConnAccept, 1)
		conn := clientOf(c)
		tc.play(conn)
		conn.countClose()
		s := c.metrics.snapshot()
		if s.connError != tc.err || s.connTimeout != tc.tout || s.connCurrent != 0 || s.reqCurrent != 0 {
			t.Errorf("%s: error %d timeout %d current %d requests open %d, want %d %d 0 0",
				tc.name, s.connError, s.connTimeout, s.connCurrent, s.reqCurrent, tc.err, tc.tout)
		}
	}
}

func TestResponseTimes(t *testing.T) {
	c := testCore()
	for _, d := range []time.Duration{300 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 40 * time.Second} {
		c.slot.resTime(d)
	}
	s := c.metrics.snapshot()
	if s.resN != 4 || s.resSum != 300+1000+3000+40_000_000 || s.resPeak != 40_000_000 {
		t.Errorf("n %d sum %d peak %d µs", s.resN, s.resSum, s.resPeak)
	}
	if got, want := s.resAvg(), uint64(40_004_300/4/1000); got != want {
		t.Errorf("average %d ms, want %d", got, want)
	}
	if s.resPeakTime() != 40_000 {
		t.Errorf("peak %d ms, want 40000", s.resPeakTime())
	}
	// 0.3 ms and 1 ms fall in le=0.001, 3 ms in le=0.005, 40 s in +Inf.
	want := make([]uint64, len(s.resBuckets))
	want[0], want[2], want[len(want)-1] = 2, 1, 1
	if !slices.Equal(s.resBuckets[:], want) {
		t.Errorf("buckets %v, want %v", s.resBuckets, want)
	}
	var empty metricsSnapshot
	if empty.resAvg() != 0 {
		t.Error("an average before any response is not 0")
	}
}

// objMember is one member of a JSON object as it appears in the text.
type objMember struct {
	key string
	raw json.RawMessage
}

// members returns the members of the JSON object b in their order.
func members(t *testing.T, b []byte) []objMember {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	var out []objMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, objMember{tok.(string), raw})
	}
	return out
}

// apiKeys are the keys of /api in their order: the course dashboard's,
// then the extras.
var apiKeys = []string{"server_name", "pid", "workers", "uptime_msec", "sys_cpu_usage_percent", "sys_ram_usage_bytes",
	"sys_ram_total_bytes", "workers_cpu_usage_percent", "workers_ram_usage_bytes", "conn_current", "conn_accepted",
	"conn_error", "conn_timeout", "conn_accepted_error", "req_current", "req_total", "req_file_serve",
	"req_reverse_proxy", "req_redirect", "res_avg_res_time_msec", "res_peak_res_time_msec", "res_code_2xx",
	"res_code_3xx", "res_code_4xx", "res_code_5xx", "traffic_total_send_bytes", "traffic_total_recv_bytes",
	"req_metrics", "req_other", "workers_conn_accepted", "worker_restarts", "server_cpu_usage_time_msec",
	"server_ram_usage_bytes"}

var jsonInteger = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

func TestMetricsJSON(t *testing.T) {
	c := testCore()
	c.metrics = newMetrics(&config{serverName: "eX\"p\\S é"}, 1)
	c.slot = c.metrics.slot(0)
	c.metrics.startWorker(0)
	c.slot.set(mConnAccept, 3)
	c.slot.resTime(2500 * time.Microsecond)
	b := c.metrics.appendJSON(nil, c.metrics.snapshot())
	ms := members(t, b)
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.key)
	}
	if !slices.Equal(keys, apiKeys) {
		t.Fatalf("keys\n%q\nwant\n%q", keys, apiKeys)
	}
	for _, m := range ms {
		raw := string(m.raw)
		switch m.key {
		case "server_name":
			var name string
			if err := json.Unmarshal(m.raw, &name); err != nil || name != "eX\"p\\S é" {
				t.Errorf("server_name %s decodes to %q (%v)", raw, name, err)
			}
		case "sys_cpu_usage_percent":
			if _, err := strconv.ParseFloat(raw, 64); err != nil || strings.ContainsAny(raw, "eE\"") {
				t.Errorf("%s = %s, want a plain number", m.key, raw)
			}
		case "workers_cpu_usage_percent", "workers_conn_accepted":
			var a []float64
			if err := json.Unmarshal(m.raw, &a); err != nil || len(a) != 1 {
				t.Errorf("%s = %s, want an array of one number", m.key, raw)
			}
		default:
			if !jsonInteger.MatchString(raw) {
				t.Errorf("%s = %s, want an integer", m.key, raw)
			}
		}
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v["conn_accepted"] != 3.0 || v["res_peak_res_time_msec"] != 2.0 || v["res_avg_res_time_msec"] != 2.0 {
		t.Errorf("conn_accepted %v, res peak %v avg %v", v["conn_accepted"], v["res_peak_res_time_msec"], v["res_avg_res_time_msec"])
	}
}

func TestAppendPercent(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 12.5: "12.5", 3.14159: "3.14", 99.999: "100", 250: "100", -3: "0", 0.005: "0.01"} {
		if got := string(appendPercent(nil, in)); got != want {
			t.Errorf("appendPercent(%v) = %s, want %s", in, got, want)
		}
	}
}

// The Prometheus text: every line a comment or a sample, one TYPE per
// family, counters ending in _total, cumulative buckets ending at _count.
func TestMetricsPrometheus(t *testing.T) {
	c := testCore()
	c.metrics.startWorker(0)
	c.slot.resTime(3 * time.Millisecond)
	c.slot.resTime(time.Second)
	c.slot.resTime(20 * time.Second)
	b := c.metrics.appendPrometheus(nil, c.metrics.snapshot())
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Error("the text does not end with a newline")
	}
	sample := regexp.MustCompile(`^([a-z_]+)(\{[a-z]+="[^"]*"\})? ([0-9.e+-]+)$`)
	types := map[string]string{}
	var buckets []float64
	count := -1.0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			if _, dup := types[f[2]]; dup {
				t.Errorf("a second TYPE for %s", f[2])
			}
			types[f[2]] = f[3]
			if f[3] == "counter" && !strings.HasSuffix(f[2], "_total") {
				t.Errorf("counter %s does not end in _total", f[2])
			}
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := sample.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not a sample: %q", line)
			continue
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		switch m[1] {
		case "xps_response_time_seconds_bucket":
			buckets = append(buckets, v)
		case "xps_response_time_seconds_count":
			count = v
		}
	}
	if len(types) != 19 {
		t.Errorf("%d families, want 19", len(types))
	}
	if !slices.IsSorted(buckets) || len(buckets) != len(resTimeBounds)+1 || buckets[len(buckets)-1] != count || count != 3 {
		t.Errorf("buckets %v, count %v", buckets, count)
	}
}

func TestStatusSniffer(t *testing.T) {
	cases := []struct {
		parts []string
		class int // index into the classes; -1 for none
	}{
		{[]string{"HTTP/1.1 404 Not Found\r\n"}, 2},
		{[]string{"HT", "TP/1.0 2", "03 OK\r\n"}, 0},
		{[]string{"HTTP/1.1 503"}, 3},
		{[]string{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"}, -1},
		{[]string{"HTTP/1.1 600 Odd\r\n"}, -1},
		{[]string{"SSH-2.0-OpenSSH_9.6\r\n"}, -1},
		{[]string{"HTTP/1.1 30"}, -1}, // the upstream closed before the status
	}
	for _, tc := range cases {
		c := testCore()
		rec := &recorder{}
		src, snk := rec.source("up"), rec.sink("session")
		if _, err := newPipe(c, pipeThreshold, src, snk); err != nil {
			t.Fatal(err)
		}
		// As the session's upstream sink does: the sniffer reads what
		// came, then all of it moves on.
		var st statusSniffer
		var relayed buffer.List
		sent := ""
		for _, p := range tc.parts {
			src.write([]byte(p))
			sent += p
			if !st.done {
				st.read(snk, c.slot)
			}
			snk.readAll(&relayed)
		}
		if got, _ := relayed.Read(relayed.Len()); got == nil || string(got.Bytes()) != sent {
			t.Errorf("%q: relayed %v, want the bytes unchanged", tc.parts, got)
		}
		s := c.metrics.snapshot()
		for i, n := range s.classes {
			if want := uint64(0); i == tc.class && n != 1 || i != tc.class && n != want {
				t.Errorf("%q: classes %v, want one in class %d", tc.parts, s.classes, tc.class)
				break
			}
		}
	}
}

// metricsSession is a session of a client at addr on the metrics listener.
func metricsSession(t *testing.T, cfg *config, addr string) *session {
	t.Helper()
	s := testSession(t, cfg)
	s.client.listener.metrics = true
	s.client.remoteAddr = netip.MustParseAddr(addr)
	return s
}

func TestServeMetrics(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.metrics = &metricsConfig{listenerConfig: listenerConfig{"0.0.0.0", 8004}, ipBlacklist: ipList{netip.MustParsePrefix("192.0.2.66/32")}}
	cases := []struct {
		name, from, request string
		status              int
		headers             map[string]string
		body                bool
	}{
		{"api", "192.0.2.1", "GET /api HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": jsonType, "Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}, true},
		{"api with a query", "192.0.2.1", "GET /api?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": jsonType}, true},
		{"prometheus", "192.0.2.1", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": prometheusType}, true},
		{"dashboard", "192.0.2.1", "GET /dashboard HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": htmlType}, true},
		{"head", "192.0.2.1", "HEAD /api HTTP/1.1\r\nHost: x\r\n\r\n", 200, map[string]string{"Content-Type": jsonType}, false},
		{"post", "192.0.2.1", "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, map[string]string{"Allow": "GET, HEAD", "Cache-Control": "no-store"}, true},
		{"root", "192.0.2.1", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, map[string]string{"Cache-Control": "no-store"}, true},
		{"a slash after", "192.0.2.1", "GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n", 404, nil, true},
		{"a longer name", "192.0.2.1", "GET /apix HTTP/1.1\r\nHost: x\r\n\r\n", 404, nil, true},
		{"blacklisted", "192.0.2.66", "GET /api HTTP/1.1\r\nHost: x\r\n\r\n", 403, map[string]string{"Cache-Control": "no-store"}, true},
	}
	for _, tc := range cases {
		s := metricsSession(t, cfg, tc.from)
		feed(s, tc.request, len(tc.request))
		b, err := s.toClient.Read(s.toClient.Len())
		if err != nil {
			t.Fatal(err)
		}
		r, err := harness.ParseResponse(b.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.Status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, r.Status, tc.status)
		}
		for k, v := range tc.headers {
			if got := r.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got, v)
			}
		}
		if (len(r.Body) > 0) != tc.body {
			t.Errorf("%s: a body of %d bytes", tc.name, len(r.Body))
		}
		if cl, _ := strconv.Atoi(r.Get("Content-Length")); tc.body && cl != len(r.Body) || cl == 0 {
			t.Errorf("%s: Content-Length %s for a body of %d bytes", tc.name, r.Get("Content-Length"), len(r.Body))
		}
		if got := s.core.metrics.snapshot().types[mReqMetrics-mReqFileServe]; got != 1 {
			t.Errorf("%s: %d metrics requests counted, want 1", tc.name, got)
		}
	}
}

// A 404 on a file_serve route is a file_serve request; a request no route
// matches is other.
func TestRequestTypeAtLookup(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	for target, want := range map[string]metric{"/missing.txt": mReqFileServe, "/old": mReqRedirect} {
		s := testSession(t, cfg)
		req := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"
		s.client.countReceived(len(req))
		feed(s, req, len(req))
		if got := s.core.metrics.snapshot().types; got[want-mReqFileServe] != 1 {
			t.Errorf("%s: types %v, want one of %d", target, got, want-mReqFileServe)
		}
	}
	if requestType(nil) != mReqOther {
		t.Error("no route is not other")
	}
}

func TestReadProc(t *testing.T) {
	busy, total, ok := readSystemCPU()
	if !ok || busy == 0 || total < busy {
		t.Errorf("/proc/stat: busy %d total %d ok %v", busy, total, ok)
	}
	if _, ok := readThreadCPU(unix.Gettid()); !ok {
		t.Error("this thread's CPU time is unreadable")
	}
	if _, ok := readThreadCPU(-1); ok {
		t.Error("a thread that does not exist has a CPU time")
	}
	memTotal, used := readMemory()
	if memTotal == 0 || used == 0 || used > memTotal {
		t.Errorf("memory %d of %d", used, memTotal)
	}
	rss, err := harness.RSS(unix.Getpid())
	if got := readRSS(); err != nil || got == 0 || float64(got) < 0.5*float64(rss) || float64(got) > 2*float64(rss) {
		t.Errorf("resident %d, /proc/self/status says %d (%v)", got, rss, err)
	}
}

// CPU samples are at least cpuWindow apart, and figures come from the two
// newest; before there are two, the percentages are 0.
func TestCPUSampling(t *testing.T) {
	// This test's thread plays the worker.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := testCore()
	m := c.metrics
	m.startWorker(0)
	if s := m.snapshot(); m.sampled || s.workersCPU[0] != 0 {
		t.Fatalf("sampled %v, worker CPU %v, right after the first sample", m.sampled, s.workersCPU)
	}
	// Spend 300 ms of CPU on the worker's thread, and pretend the first
	// sample is a window older than it is.
	start, _ := readThreadCPU(m.tids[0])
	for {
		if now, _ := readThreadCPU(m.tids[0]); now >= start+30 {
			break
		}
	}
	m.last.at -= cpuWindow
	first := m.last.at
	s := m.snapshot()
	if !m.sampled || m.prev.at != first {
		t.Fatalf("no new sample after a window")
	}
	// 300 ms in a window of 800 ms, or more on a busy machine.
	if s.workersCPU[0] < 5 || s.workersCPU[0] > 100 {
		t.Errorf("worker CPU %v %%, want 5 %% to 100 %%", s.workersCPU[0])
	}
	if s.sysCPU < 0 || s.sysCPU > 100 {
		t.Errorf("system CPU %v %%", s.sysCPU)
	}
	at := m.last.at
	m.snapshot()
	if m.last.at != at {
		t.Error("a sample taken less than a window after the last")
	}
}

// The dashboard is one page with nothing to fetch but /api: no external
// script, style, font or image.
func TestDashboardSelfContained(t *testing.T) {
	page := string(dashboardPage)
	if !strings.Contains(page, `fetch("/api"`) {
		t.Error("the dashboard does not poll /api")
	}
	for _, ref := range regexp.MustCompile(`(?i)(src|href)\s*=\s*"([^"]*)"|url\(([^)]*)\)|@import`).FindAllStringSubmatch(page, -1) {
		if ref[0] == `href="/metrics"` {
			continue
		}
		t.Errorf("the dashboard refers to %s", ref[0])
	}
	if !strings.HasPrefix(page, "<!DOCTYPE html>") {
		t.Error("the dashboard is not an HTML document")
	}
}

// A client timeout (stage 21) ends its connection as a timeout, and its 408
// is not a response time; the bounded drain after a response is no
// timeout of the client's.
func TestTimeoutsCounted(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	files := func(t *testing.T) *session { return testSession(t, cfg) }
	cases := []struct {
		name    string
		session func(t *testing.T) *session
		play    func(s *session)
		tout    uint64
	}{
		{"silent", files, func(s *session) { s.clientTimedOut(false) }, 1},
		{"a partial head", files, func(s *session) { feed(s, "GET / HTTP/1.1\r\n", 100); s.clientTimedOut(false) }, 1},
		{"a body", proxySession, func(s *session) {
			feed(s, "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", 100)
			s.clientTimedOut(false)
		}, 1},
		{"a send", files, func(s *session) { feed(s, "GET /missing HTTP/1.1\r\n\r\n", 100); s.clientTimedOut(true) }, 1},
		{"the drain", files, func(s *session) {
			feed(s, "GET /missing HTTP/1.1\r\n\r\n", 100)
			s.client.shutWr = true
			s.clientTimedOut(false)
		}, 0},
	}
	for _, tc := range cases {
		s := tc.session(t)
		s.core.slot.set(mConnAccept, 1)
		tc.play(s)
		s.client.countSent(1) // the first byte of what was queued, if anything
		s.client.close(false)
		snap := s.core.metrics.snapshot()
		if snap.connTimeout != tc.tout || snap.connError != 0 {
			t.Errorf("%s: conn_timeout %d, conn_error %d; want %d and 0", tc.name, snap.connTimeout, snap.connError, tc.tout)
		}
		// Only the send timeout's request had an answer of its own (a
		// 404) before the timeout.
		if want := uint64(0); tc.name != "a send" && tc.name != "the drain" && snap.resN != want {
			t.Errorf("%s: %d response times, want none: a 408 is not timed", tc.name, snap.resN)
		}
	}
}
