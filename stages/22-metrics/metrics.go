package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"expserver-go/common/jsonpath"
	"expserver-go/common/netaddr"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// The metrics module counts what the server does where it happens — an
// accept, a receive, a send, a request's first byte, a response, a close —
// for a few instructions each, and turns the counts into a snapshot on
// request: JSON at /api for a dashboard in a browser, Prometheus text at
// /metrics, and a dashboard page of its own at /dashboard, all on a
// listener of their own. Mirrors xps_metrics.

// The implicit metrics listener's address. Mirrors METRICS_HOST / METRICS_PORT.
const (
	metricsHost = "0.0.0.0"
	metricsPort = 8004
)

// metric names one counter of a slot; set adds to it. Mirrors the events
// of xps_metrics_set (M_CONN_ACCEPT, M_CONN_CLOSE, M_CONN_ACCEPT_ERROR,
// M_CONN_ERROR, M_CONN_TIMEOUT, M_REQ_CREATE, M_REQ_DESTROY,
// M_REQ_FILE_SERVE, M_REQ_REVERSE_PROXY, M_REQ_REDIRECT, M_RES_2XX to
// M_RES_5XX, M_TRAFFIC_SEND_BYTES, M_TRAFFIC_RECV_BYTES), plus the two
// request types the course does not count, so that the types add up to
// the requests. Response times have a method of their own (resTime).
type metric int

const (
	mConnAccept      metric = iota // a client accepted
	mConnClose                     // a client's descriptor closed
	mConnAcceptError               // a client the server could not accept (see listener.queued)
	mConnError                     // a closed client whose connection failed before its response was sent
	mConnTimeout                   // a closed client that a timeout ended
	mReqCreate                     // a request's first byte arrived
	mReqDestroy                    // a request ended: its response sent, or its connection closed
	mReqFileServe                  // request types, one per request, at lookup
	mReqReverseProxy
	mReqRedirect
	mReqMetrics
	mReqOther
	mRes2xx // response classes, when the status is known
	mRes3xx
	mRes4xx
	mRes5xx
	mTrafficSendBytes // bytes sent to and received from clients
	mTrafficRecvBytes
	metricCount
)

// resTimeBounds are the upper bounds of the response-time histogram's
// buckets (Prometheus's default buckets), a sample falling in the first
// bucket whose bound it does not exceed.
var resTimeBounds = [...]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// metricsSlot holds the counters of one worker loop. Only its loop writes
// it, so a counter is a plain atomic add, never a lock; anyone may read it
// at any time with atomic loads. The server has one loop, so one slot;
// with several loops each gets its own, and a snapshot sums them.
//
// A gauge is kept as two counters that only grow — opened and closed,
// started and ended — and derived when read, so that a reader racing with
// the loop never sees it go below zero.
type metricsSlot struct {
	counters [metricCount]atomic.Uint64
	// Response times in µs: a histogram (resTimeBounds, then +Inf), their
	// sum and the largest. Mirrors _res_n and _res_time_sum.
	resTimeBuckets       [len(resTimeBounds) + 1]atomic.Uint64
	resTimeSum, resTimeN atomic.Uint64
	resTimePeak          atomic.Uint64
	// Padding keeps the next slot's counters off this one's cache line, so
	// that two loops counting side by side do not slow each other down:
	// 128 bytes, because some CPUs fetch lines in adjacent pairs.
	_ [128]byte
}

// set adds n to counter k. Mirrors xps_metrics_set.
func (s *metricsSlot) set(k metric, n uint64) { s.counters[k].Add(n) }

// countStatus counts a response by its status class. A status outside
// 200–599 — a 1xx, or what no status line says — counts nowhere.
func (s *metricsSlot) countStatus(status int) {
	if status >= 200 && status < 600 {
		s.set(mRes2xx+metric(status/100-2), 1)
	}
}

// resTime records a response time. The peak goes first and the sum last,
// so that a reader loading the sum, then the count, then the peak never
// finds an average above the peak.
func (s *metricsSlot) resTime(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	if us > s.resTimePeak.Load() {
		s.resTimePeak.Store(us) // only this slot's loop writes it
	}
	i := 0
	for i < len(resTimeBounds) && d > resTimeBounds[i] {
		i++
	}
	s.resTimeBuckets[i].Add(1)
	s.resTimeN.Add(1)
	s.resTimeSum.Add(us)
}

// metrics is the server's metrics: its slots, what a snapshot says about
// the server, and the CPU samples snapshots compare. Mirrors xps_metrics_s.
type metrics struct {
	slots      []metricsSlot
	serverName []byte // as a JSON string
	pid        int
	started    time.Time // its monotonic reading is the clock of uptime and response times
	// tids are the worker loops' threads, by slot (see startWorker).
	tids []int
	// The two newest CPU samples (see sampleCPU); last.at is zero until
	// the first is taken.
	prev, last cpuSample
	sampled    bool // prev and last both hold a sample
}

// cpuSample is the CPU time counters at one moment: the system's, from
// /proc/stat, and each worker thread's, in clock ticks.
type cpuSample struct {
	at                time.Duration // on the metrics clock
	sysBusy, sysTotal uint64
	workers           []uint64
}

// newMetrics makes the metrics of a server of cfg with the given number
// of worker loops. Mirrors xps_metrics_create.
func newMetrics(cfg *config, workers int) *metrics {
	name, _ := json.Marshal(cfg.serverName) // a string always marshals
	m := &metrics{
		slots:      make([]metricsSlot, workers),
		serverName: name,
		pid:        os.Getpid(),
		started:    time.Now(),
		tids:       make([]int, workers),
	}
	m.prev.workers = make([]uint64, workers)
	m.last.workers = make([]uint64, workers)
	return m
}

// slot returns the counters of worker loop i.
func (m *metrics) slot(i int) *metricsSlot { return &m.slots[i] }

// clock returns the time since the metrics were made, from the monotonic
// clock: a step of the wall clock changes no uptime or response time.
func (m *metrics) clock() time.Duration { return time.Since(m.started) }

// startWorker records that worker loop i runs on the calling thread, which
// it keeps for life, and takes the first CPU sample: the first window runs
// from here.
func (m *metrics) startWorker(i int) {
	m.tids[i] = unix.Gettid()
	m.takeSample(&m.last, m.clock())
}

// cpuWindow is the shortest time between two CPU samples.
const cpuWindow = 500 * time.Millisecond

// sampleCPU takes a new CPU sample if the newest is at least cpuWindow old.
// Nothing wakes an idle server to sample: a snapshot samples, if it is
// time, so a server nobody watches spends nothing on this. Mirrors
// xps_metrics_update_handler, which a timer ran every 500 ms.
func (m *metrics) sampleCPU(now time.Duration) {
	if now-m.last.at < cpuWindow {
		return
	}
	m.prev, m.last = m.last, m.prev
	// A counter /proc cannot give keeps the newest value it had.
	m.last.sysBusy, m.last.sysTotal = m.prev.sysBusy, m.prev.sysTotal
	copy(m.last.workers, m.prev.workers)
	m.takeSample(&m.last, now)
	m.sampled = true
}

// takeSample fills s with the CPU counters now. A counter /proc cannot give
// keeps the value s holds, which makes its share of the window zero.
func (m *metrics) takeSample(s *cpuSample, now time.Duration) {
	s.at = now
	if busy, total, ok := readSystemCPU(); ok {
		s.sysBusy, s.sysTotal = busy, total
	}
	for i, tid := range m.tids {
		if t, ok := readThreadCPU(tid); ok {
			s.workers[i] = t
		}
	}
}

// metricsSnapshot is the metrics at one moment, as /api and /metrics show
// them.
type metricsSnapshot struct {
	uptime      time.Duration
	sysCPU      float64 // % of all CPUs
	sysRAM      uint64  // bytes in use
	sysRAMTotal uint64
	workersCPU  []float64 // % of one CPU, per worker
	workersTime []time.Duration
	rss         uint64 // the process's resident memory
	processCPU  time.Duration

	connCurrent, connAccepted, connError, connTimeout, connAcceptError uint64
	workersAccepted                                                    []uint64
	reqCurrent, reqTotal                                               uint64
	types                                                              [mReqOther - mReqFileServe + 1]uint64
	classes                                                            [mRes5xx - mRes2xx + 1]uint64
	resBuckets                                                         [len(resTimeBounds) + 1]uint64
	resSum, resN, resPeak                                              uint64 // µs
	sent, received                                                     uint64
	restarts                                                           uint64 // workers started again: none in this stage
}

// sum returns counter k summed over the slots.
func (m *metrics) sum(k metric) uint64 {
	var n uint64
	for i := range m.slots {
		n += m.slots[i].counters[k].Load()
	}
	return n
}

// snapshot reads the counters and the system's figures. The counters are
// loaded in an order that keeps every invariant of a snapshot although the
// loops keep counting while it is read: each counter that refines another
// (an error refines a close; a type or a class, a request) is counted
// after it and loaded before it, and what closes is loaded before what
// opens. So errors and timeouts never exceed the closes, the types and the
// classes never exceed the requests, and no more requests are open than
// connections: a request ends before its connection closes and starts
// after it is accepted.
func (m *metrics) snapshot() *metricsSnapshot {
	s := &metricsSnapshot{}
	s.connError = m.sum(mConnError)
	s.connTimeout = m.sum(mConnTimeout)
	closed := m.sum(mConnClose)
	ended := m.sum(mReqDestroy)
	for i := range s.types {
		s.types[i] = m.sum(mReqFileServe + metric(i))
	}
	for i := range s.classes {
		s.classes[i] = m.sum(mRes2xx + metric(i))
	}
	s.reqTotal = m.sum(mReqCreate)
	s.workersAccepted = make([]uint64, len(m.slots))
	for i := range m.slots {
		s.workersAccepted[i] = m.slots[i].counters[mConnAccept].Load()
		s.connAccepted += s.workersAccepted[i]
	}
	s.connCurrent = s.connAccepted - closed
	s.reqCurrent = s.reqTotal - ended
	s.connAcceptError = m.sum(mConnAcceptError)
	s.sent = m.sum(mTrafficSendBytes)
	s.received = m.sum(mTrafficRecvBytes)
	// The sum before the count before the peak (see resTime). The count is
	// the histogram's total, so that its buckets and its count agree.
	for i := range m.slots {
		s.resSum += m.slots[i].resTimeSum.Load()
	}
	for i := range m.slots {
		sl := &m.slots[i]
		for b := range s.resBuckets {
			s.resBuckets[b] += sl.resTimeBuckets[b].Load()
		}
	}
	for _, n := range s.resBuckets {
		s.resN += n
	}
	for i := range m.slots {
		s.resPeak = max(s.resPeak, m.slots[i].resTimePeak.Load())
	}

	s.uptime = m.clock()
	m.cpuFigures(s, s.uptime)
	s.sysRAMTotal, s.sysRAM = readMemory()
	s.rss = readRSS()
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		s.processCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// cpuFigures samples the CPU, if it is time (see sampleCPU), and puts in s
// the figures of the window between the two newest samples: the system's
// and each worker's share of it, and each worker's CPU time so far.
func (m *metrics) cpuFigures(s *metricsSnapshot, now time.Duration) {
	m.sampleCPU(now)
	s.workersCPU = make([]float64, len(m.slots))
	s.workersTime = make([]time.Duration, len(m.slots))
	for i, t := range m.last.workers {
		s.workersTime[i] = ticksToDuration(t)
	}
	if !m.sampled {
		return
	}
	if m.last.sysTotal > m.prev.sysTotal {
		busy := m.last.sysBusy - min(m.last.sysBusy, m.prev.sysBusy)
		s.sysCPU = 100 * float64(busy) / float64(m.last.sysTotal-m.prev.sysTotal)
	}
	if window := m.last.at - m.prev.at; window > 0 {
		for i := range s.workersCPU {
			used := ticksToDuration(m.last.workers[i] - min(m.last.workers[i], m.prev.workers[i]))
			s.workersCPU[i] = 100 * float64(used) / float64(window)
		}
	}
}

// resAvg and resPeakTime are the average and the largest response time,
// in whole milliseconds, rounded down; 0 before any response.
func (s *metricsSnapshot) resAvg() uint64 {
	if s.resN == 0 {
		return 0
	}
	return s.resSum / s.resN / 1000
}

func (s *metricsSnapshot) resPeakTime() uint64 { return s.resPeak / 1000 }

// appendJSON appends the snapshot as the JSON object /api answers: the
// keys the course's dashboard reads, in its order, then the extras. Every
// count is a JSON integer, every percentage a number with at most two
// decimals, and the per-worker figures arrays, as the dashboard needs.
// Mirrors xps_metrics_get_json.
func (m *metrics) appendJSON(b []byte, s *metricsSnapshot) []byte {
	o := jsonObject{b: append(b, '{')}
	o.key("server_name")
	o.b = append(o.b, m.serverName...)
	o.uint("pid", uint64(m.pid))
	o.uint("workers", uint64(len(m.slots)))
	o.uint("uptime_msec", uint64(s.uptime/time.Millisecond))
	o.percent("sys_cpu_usage_percent", s.sysCPU)
	o.uint("sys_ram_usage_bytes", s.sysRAM)
	o.uint("sys_ram_total_bytes", s.sysRAMTotal)
	o.key("workers_cpu_usage_percent")
	o.b = append(o.b, '[')
	for i, p := range s.workersCPU {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendPercent(o.b, p)
	}
	o.b = append(o.b, ']')
	o.uint("workers_ram_usage_bytes", s.rss)
	o.uint("conn_current", s.connCurrent)
	o.uint("conn_accepted", s.connAccepted)
	o.uint("conn_error", s.connError)
	o.uint("conn_timeout", s.connTimeout)
	o.uint("conn_accepted_error", s.connAcceptError)
	o.uint("req_current", s.reqCurrent)
	o.uint("req_total", s.reqTotal)
	o.uint("req_file_serve", s.types[0])
	o.uint("req_reverse_proxy", s.types[mReqReverseProxy-mReqFileServe])
	o.uint("req_redirect", s.types[mReqRedirect-mReqFileServe])
	o.uint("res_avg_res_time_msec", s.resAvg())
	o.uint("res_peak_res_time_msec", s.resPeakTime())
	for i, class := range []string{"res_code_2xx", "res_code_3xx", "res_code_4xx", "res_code_5xx"} {
		o.uint(class, s.classes[i])
	}
	o.uint("traffic_total_send_bytes", s.sent)
	o.uint("traffic_total_recv_bytes", s.received)
	o.uint("req_metrics", s.types[mReqMetrics-mReqFileServe])
	o.uint("req_other", s.types[mReqOther-mReqFileServe])
	o.key("workers_conn_accepted")
	o.b = append(o.b, '[')
	for i, n := range s.workersAccepted {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = strconv.AppendUint(o.b, n, 10)
	}
	o.b = append(o.b, ']')
	o.uint("worker_restarts", s.restarts)
	// The names the dashboard's committed build reads.
	o.uint("server_cpu_usage_time_msec", uint64(s.processCPU/time.Millisecond))
	o.uint("server_ram_usage_bytes", s.rss)
	return append(o.b, '}', '\n')
}

// jsonObject writes the members of a JSON object one after the other.
type jsonObject struct {
	b []byte
	n int
}

func (o *jsonObject) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *jsonObject) uint(k string, v uint64) {
	o.key(k)
	o.b = strconv.AppendUint(o.b, v, 10)
}

func (o *jsonObject) percent(k string, v float64) {
	o.key(k)
	o.b = appendPercent(o.b, v)
}

// appendPercent appends p, clamped to [0, 100] and rounded to two
// decimals, as a JSON number: "12.5", "0", "100". NaN, which an empty
// window could make, is 0.
func appendPercent(b []byte, p float64) []byte {
	if math.IsNaN(p) || p < 0 {
		p = 0
	}
	p = math.Round(min(p, 100)*100) / 100
	return strconv.AppendFloat(b, p, 'f', -1, 64)
}

// appendPrometheus appends the snapshot in Prometheus's text exposition
// format 0.0.4: each family's HELP and TYPE lines, then its samples.
func (m *metrics) appendPrometheus(b []byte, s *metricsSnapshot) []byte {
	p := promWriter{b: b}
	p.family("xps_connections_accepted_total", "counter", "Client connections accepted.")
	p.sample("", "", s.connAccepted)
	p.family("xps_connections_current", "gauge", "Client connections open.")
	p.sample("", "", s.connCurrent)
	p.family("xps_connections_errors_total", "counter", "Client connections that failed before their response was sent.")
	p.sample("", "", s.connError)
	p.family("xps_connections_timeouts_total", "counter", "Client connections closed by a timeout.")
	p.sample("", "", s.connTimeout)
	p.family("xps_accept_errors_total", "counter", "Clients the server could not accept when they arrived.")
	p.sample("", "", s.connAcceptError)
	p.family("xps_requests_total", "counter", "Requests, by type.")
	for i, t := range []string{"file_serve", "reverse_proxy", "redirect", "metrics", "other"} {
		p.sample("type", t, s.types[i])
	}
	p.family("xps_requests_current", "gauge", "Requests in progress.")
	p.sample("", "", s.reqCurrent)
	p.family("xps_responses_total", "counter", "Responses, by status class.")
	for i, c := range []string{"2xx", "3xx", "4xx", "5xx"} {
		p.sample("class", c, s.classes[i])
	}
	p.family("xps_response_time_seconds", "histogram", "Time from a request's head to its response's first byte sent.")
	var cum uint64
	for i, n := range s.resBuckets {
		cum += n
		le := "+Inf"
		if i < len(resTimeBounds) {
			le = strconv.FormatFloat(resTimeBounds[i].Seconds(), 'f', -1, 64)
		}
		p.b = fmt.Appendf(p.b, "xps_response_time_seconds_bucket{le=%q} %d\n", le, cum)
	}
	p.b = fmt.Appendf(p.b, "xps_response_time_seconds_sum %s\n", strconv.FormatFloat(float64(s.resSum)/1e6, 'f', -1, 64))
	p.b = fmt.Appendf(p.b, "xps_response_time_seconds_count %d\n", s.resN)
	p.family("xps_sent_bytes_total", "counter", "Bytes sent to clients.")
	p.sample("", "", s.sent)
	p.family("xps_received_bytes_total", "counter", "Bytes received from clients.")
	p.sample("", "", s.received)
	p.family("xps_worker_restarts_total", "counter", "Worker loops started again after a failure.")
	p.sample("", "", s.restarts)
	p.family("xps_workers", "gauge", "Worker loops running.")
	p.sample("", "", uint64(len(m.slots)))
	p.family("xps_uptime_seconds", "gauge", "Time since the server started.")
	p.float("", "", s.uptime.Seconds())
	p.family("xps_worker_cpu_seconds_total", "counter", "CPU time of each worker loop's thread.")
	for i, t := range s.workersTime {
		p.float("worker", strconv.Itoa(i), t.Seconds())
	}
	p.family("xps_worker_connections_accepted_total", "counter", "Client connections accepted by each worker loop.")
	for i, n := range s.workersAccepted {
		p.sample("worker", strconv.Itoa(i), n)
	}
	p.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
	p.float("", "", s.processCPU.Seconds())
	p.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
	p.sample("", "", s.rss)
	p.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
	p.float("", "", float64(m.started.UnixMilli())/1000)
	return p.b
}

// promWriter writes the lines of a Prometheus text exposition.
type promWriter struct {
	b    []byte
	name string // the family being written
}

func (p *promWriter) family(name, typ, help string) {
	p.name = name
	p.b = fmt.Appendf(p.b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// sample writes one sample of the family, with one label when label is
// not empty.
func (p *promWriter) sample(label, value string, v uint64) {
	p.labels(label, value)
	p.b = strconv.AppendUint(p.b, v, 10)
	p.b = append(p.b, '\n')
}

func (p *promWriter) float(label, value string, v float64) {
	p.labels(label, value)
	p.b = strconv.AppendFloat(p.b, v, 'f', -1, 64)
	p.b = append(p.b, '\n')
}

func (p *promWriter) labels(label, value string) {
	p.b = append(p.b, p.name...)
	if label != "" {
		p.b = fmt.Appendf(p.b, "{%s=%q}", label, value)
	}
	p.b = append(p.b, ' ')
}

// connMetrics is what the metrics follow of one client connection.
type connMetrics struct {
	request reqState
	typed   bool // the request's type has been counted
	sent    bool // its output has ended (see countResponseSent): a later failure is no error
	// fate is how the connection ends, mConnError or mConnTimeout, once
	// that is known; zero until then.
	fate metric
	// timing is set from the moment the head completed (headAt) until the
	// first byte of the response is sent; timed once that has happened.
	timing, timed bool
	headAt        time.Duration
}

// reqState is where a connection's request is: none yet, started by its
// first byte, or ended.
type reqState uint8

const (
	reqNone reqState = iota
	reqOpen
	reqEnded
)

// countReceived counts n bytes received from a client; the first starts its
// request, as nginx creates a request on its first bytes.
func (c *connection) countReceived(n int) {
	if c.listener == nil {
		return
	}
	c.core.slot.set(mTrafficRecvBytes, uint64(n))
	if c.m.request == reqNone {
		c.m.request = reqOpen
		c.core.slot.set(mReqCreate, 1)
	}
}

// countHeadDone notes that the client's request head is complete, parsed
// or rejected: its response time runs from the loop iteration that
// completed it — the core's clock, which the loop has just read — to the
// first byte sent.
func (c *connection) countHeadDone() {
	if c.listener == nil || c.m.timing || c.m.timed {
		return
	}
	c.m.timing, c.m.headAt = true, c.core.now
}

// countSent counts n bytes sent to a client; the first byte of a response
// ends its response time.
func (c *connection) countSent(n int) {
	if c.listener == nil {
		return
	}
	c.core.slot.set(mTrafficSendBytes, uint64(n))
	if c.m.timing && n > 0 {
		// The clock is read again: the send may come many iterations
		// after the one the loop's clock was read for.
		c.m.timing, c.m.timed = false, true
		c.core.slot.resTime(time.Since(c.core.started) - c.m.headAt)
	}
}

// countType counts the request's type, once.
func (c *connection) countType(t metric) {
	if c.listener == nil || c.m.typed {
		return
	}
	c.m.typed = true
	c.core.slot.set(t, 1)
}

// requestType is the type of a request the config's lookup returned res
// for: its route's, or other when no route matched.
func requestType(res *lookupResult) metric {
	if res == nil {
		return mReqOther
	}
	switch res.typ {
	case routeFileServe:
		return mReqFileServe
	case routeReverseProxy:
		return mReqReverseProxy
	case routeRedirect:
		return mReqRedirect
	}
	return mReqOther
}

// countResponseSent notes that everything the server had for the client
// has been sent — its response whole, or nothing when the session ended
// without one — which ends its request.
func (c *connection) countResponseSent() {
	if c.listener == nil {
		return
	}
	c.m.sent = true
	c.endRequest()
}

// endRequest ends the connection's request, if one is open. A request that
// never got a type — its head never came whole, or was malformed — is
// other.
func (c *connection) endRequest() {
	if c.m.request != reqOpen {
		return
	}
	c.countType(mReqOther)
	c.m.request = reqEnded
	c.core.slot.set(mReqDestroy, 1)
}

// countError notes that the client's connection failed — a reset, a
// broken pipe, an error epoll reported — unless its response had already
// gone out whole: the client may leave as it likes then. It is counted
// when the connection closes.
func (c *connection) countError() {
	if c.listener == nil || c.m.sent || c.m.fate != 0 {
		return
	}
	c.m.fate = mConnError
}

// countTimeout notes that a client timeout — for the request head, the
// request body, or a send — ends the connection; it is counted when the
// connection closes, in conn_timeout and not in conn_error. The 408 a
// timeout may still get is not a response time: the time is the client's.
func (c *connection) countTimeout() {
	if c.listener == nil || c.m.fate != 0 {
		return
	}
	c.m.fate = mConnTimeout
	c.m.timing = false
}

// countClose counts the close of a client's descriptor: its request ends,
// if it had not, then the connection, then how it ended — in that order,
// so that a snapshot never sees more errors than closes.
func (c *connection) countClose() {
	c.endRequest()
	c.core.slot.set(mConnClose, 1)
	if c.m.fate != 0 {
		c.core.slot.set(c.m.fate, 1)
	}
}

// statusSniffer reads the status code at the start of an upstream's reply
// as it passes, so that a proxied response counts in its class like one of
// the server's own. It copies the first bytes aside and changes none.
type statusSniffer struct {
	buf  [len("HTTP/1.1 200")]byte
	n    int
	done bool
}

// read takes the start of what waits in sink, until it holds a status
// line's first bytes, then counts the status in slot. A reply that does
// not start with one (see replyStatus), or whose status is not 200–599 —
// an interim 1xx first — counts nowhere.
func (st *statusSniffer) read(sink *pipeSink, slot *metricsSlot) {
	for _, part := range sink.peek(nil, 0) {
		if st.n += copy(st.buf[st.n:], part); st.n == len(st.buf) {
			break
		}
	}
	if st.n < len(st.buf) {
		return
	}
	st.done = true
	if code, ok := replyStatus(st.buf[:]); ok {
		n, _ := strconv.Atoi(code) // three digits
		slot.countStatus(n)
	}
}

// metricsConfig is the config's "metrics" key: where the metrics listener
// listens and which clients it answers (lists as a route's).
type metricsConfig struct {
	listenerConfig
	// implicit is set when the config has no metrics key: the listener is
	// there by default, and failing to bind it only costs the metrics.
	implicit                 bool
	ipWhitelist, ipBlacklist ipList
}

// parseMetrics reads v, the metrics key (absent, it may be), of a config
// with the given servers:
//
//   - absent: a listener on 0.0.0.0:8004, unless a server listens on port
//     8004 already, in which case there are no metrics, with a warning;
//   - false: no metrics listener;
//   - true, or an object: a listener on "host" (0.0.0.0) and "port" (8004),
//     answering the clients "ip_whitelist" and "ip_blacklist" let in, read
//     as a route's (stage 18); one that would share an address with a
//     server's listener is an error.
//
// The result is nil when there is no metrics listener. Mirrors
// METRICS_HOST and METRICS_PORT, which the course's parse_listener
// reserves for it.
func parseMetrics(v jsonpath.Value, servers []*serverConfig) (*metricsConfig, error) {
	m := &metricsConfig{listenerConfig: listenerConfig{host: metricsHost, port: metricsPort}}
	switch v.Kind() {
	case "nothing":
		for i, s := range servers {
			for _, l := range s.listeners {
				if l.port == metricsPort {
					xlog.Warnf(`metrics: port %d is used by servers[%d]; metrics disabled (set "metrics": {"port": N})`, metricsPort, i)
					return nil, nil
				}
			}
		}
		m.implicit = true
		return m, nil
	case "boolean":
		if on, _ := v.Bool(); !on {
			return nil, nil
		}
	case "object":
		var host, port, whitelist, blacklist jsonpath.Value
		err := v.Object(map[string]*jsonpath.Value{
			"host":         &host,
			"port":         &port,
			"ip_whitelist": &whitelist,
			"ip_blacklist": &blacklist,
		})
		if err != nil {
			return nil, err
		}
		if err := m.decode(host, port); err != nil {
			return nil, err
		}
		if m.ipWhitelist, err = parseIPList(whitelist); err != nil {
			return nil, err
		}
		if m.ipBlacklist, err = parseIPList(blacklist); err != nil {
			return nil, err
		}
	default:
		return nil, v.Errorf("want a boolean or an object, got %s", v.Kind())
	}
	for i, s := range servers {
		for j, l := range s.listeners {
			if l.port == m.port && sameHost(l.host, m.host) {
				return nil, fmt.Errorf("metrics.port: %d is also servers[%d].listeners[%d]", m.port, i, j)
			}
		}
	}
	return m, nil
}

// sameHost reports whether two listeners' hosts, on one port, would clash:
// the same address, or either one all of them (0.0.0.0). Both resolved
// when the config was read.
func sameHost(a, b string) bool {
	sa, errA := netaddr.ResolveIPv4(a, 1)
	sb, errB := netaddr.ResolveIPv4(b, 1)
	if errA != nil || errB != nil {
		return a == b
	}
	return sa.Addr == sb.Addr || sa.Addr == [4]byte{} || sb.Addr == [4]byte{}
}

// allows reports whether the metrics listener answers a client at addr.
func (mc *metricsConfig) allows(addr netip.Addr) bool {
	return (len(mc.ipWhitelist) == 0 || mc.ipWhitelist.contains(addr)) && !mc.ipBlacklist.contains(addr)
}

// startMetrics creates the metrics listener, if the config has one. The
// implicit one only warns when its port is taken; an explicit one that
// cannot listen stops the server, like any listener.
func (c *core) startMetrics() error {
	mc := c.config.metrics
	if mc == nil {
		return nil
	}
	l, err := newListener(c, mc.host, mc.port)
	if err != nil {
		if mc.implicit {
			xlog.Warnf("metrics: cannot listen on %s:%d: %v; running without metrics", mc.host, mc.port, err)
			return nil
		}
		return fmt.Errorf("metrics listener %s:%d: %w", mc.host, mc.port, err)
	}
	l.metrics = true
	xlog.Infof("Metrics listening on http://%s:%d", mc.host, mc.port)
	return nil
}

// dashboardPage is the dashboard that /dashboard serves: one page, its
// styles and script inline, that polls /api once a second.
//
//go:embed dashboard.html
var dashboardPage []byte

// Content types of the metrics listener's answers.
const (
	jsonType       = "application/json"
	prometheusType = "text/plain; version=0.0.4; charset=utf-8"
	htmlType       = "text/html; charset=utf-8"
)

// serveMetrics answers a request on the metrics listener: /api with the
// JSON snapshot, /metrics with the Prometheus text, /dashboard with the
// dashboard page, to GET and HEAD; 405 to another method, 404 to another
// path, 403 to a client the metrics lists keep out. No answer may be
// cached: each is the state of one moment.
func (s *session) serveMetrics() {
	noStore := header{"Cache-Control", "no-store"}
	if !s.core.config.metrics.allows(s.client.remoteAddr) {
		s.respond(403, []header{noStore})
		return
	}
	path := s.req.pathname
	if path != "/api" && path != "/metrics" && path != "/dashboard" {
		s.respond(404, []header{noStore})
		return
	}
	if s.req.method != "GET" && s.req.method != "HEAD" {
		s.respond(405, []header{{"Allow", "GET, HEAD"}, noStore})
		return
	}
	typ, body := htmlType, dashboardPage
	if path != "/dashboard" {
		m := s.core.metrics
		snap := m.snapshot()
		switch path {
		case "/api":
			typ, body = jsonType, m.appendJSON(nil, snap)
		case "/metrics":
			typ, body = prometheusType, m.appendPrometheus(nil, snap)
		}
	}
	s.respond(200, []header{{"Content-Type", typ}, noStore}, body...)
}

// Readers of the figures Linux keeps in /proc. Each returns what it could
// not read as zero (or ok false), so that a snapshot never fails for it.

// clockTicks is USER_HZ, the unit of CPU times in /proc: 100 on every
// architecture Go runs Linux on.
const clockTicks = 100

func ticksToDuration(t uint64) time.Duration { return time.Duration(t) * (time.Second / clockTicks) }

// readSystemCPU returns the busy and the total CPU time of the machine
// from the first line of /proc/stat: busy is user, nice, system, irq,
// softirq and steal; total adds idle and iowait.
func readSystemCPU() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, 0, false
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		if v[i], err = strconv.ParseUint(string(f[i+1]), 10, 64); err != nil {
			return 0, 0, false
		}
	}
	busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return busy, busy + v[3] + v[4], true
}

// readThreadCPU returns the user and system CPU time of the thread tid of
// this process, in clock ticks: fields 14 and 15 of its stat file, counted
// after the command name, which may hold spaces and parentheses.
func readThreadCPU(tid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:]) // from field 3, the state
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return utime + stime, true
}

// readMemory returns the machine's memory and how much of it is in use
// (MemTotal − MemAvailable), in bytes, from /proc/meminfo.
func readMemory() (total, used uint64) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	var avail uint64
	for line := range bytes.Lines(b) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(key) {
		case "MemTotal":
			dst = &total
		case "MemAvailable":
			dst = &avail
		default:
			continue
		}
		f := bytes.Fields(val) // "123456 kB"
		if len(f) > 0 {
			if kb, err := strconv.ParseUint(string(f[0]), 10, 64); err == nil {
				*dst = kb * 1024
			}
		}
	}
	return total, total - min(avail, total)
}

// readRSS returns the resident memory of the process now, in bytes: the
// second field of /proc/self/statm, in pages.
func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
