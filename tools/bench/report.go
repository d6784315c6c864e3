package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The servers, in the order of the rounds and of the table's columns.
const (
	nginxName = "nginx"
	goName    = "net/http"
	oursName  = "ours"
)

var serverNames = []string{nginxName, goName, oursName}

// quantity is one line of the table: something measured for every server
// once per round.
type quantity struct {
	Key           string `json:"key"`
	Row           string `json:"row"`
	Name          string `json:"name"`
	LowerIsBetter bool   `json:"lower_is_better"`
}

// quantities lists what the selected rows measure, in table order. The
// names carry the sizes of this run, so a -quick table cannot pass for a
// full one.
func quantities(o options) []quantity {
	big := sizeLabel(o.bigSize)
	conns := formatCount(o.conns)
	lower := " — lower is better"
	perCPU := "requests per server CPU-second"
	all := []quantity{
		{"i.rps", "i", "(i) 1 KiB file: req/s", false},
		{"i.cpu", "i", "(i) 1 KiB file: server CPU s" + lower, true},
		{"i.per_cpu", "i", "(i) 1 KiB file: " + perCPU, false},
		{"ii.mbps", "ii", "(ii) " + big + " download: MB/s", false},
		{"ii.rss", "ii", "(ii) " + big + " download: peak RSS MiB" + lower, true},
		{"ii.cpu", "ii", "(ii) " + big + " download: server CPU s" + lower, true},
		{"iii.rps", "iii", "(iii) proxy 100 B: req/s", false},
		{"iii.cpu", "iii", "(iii) proxy 100 B: server CPU s" + lower, true},
		{"iii.per_cpu", "iii", "(iii) proxy 100 B: " + perCPU, false},
		{"iv.rss_idle", "iv", "(iv) RSS idle, MiB" + lower, true},
		{"iv.rss_conns", "iv", "(iv) RSS with " + conns + " idle conns, MiB" + lower, true},
		{"iv.per_conn", "iv", "(iv) bytes per idle connection" + lower, true},
		{"v.idle", "v", "(v) idle CPU %, no connections" + lower, true},
		{"v.idle_conns", "v", "(v) idle CPU %, " + conns + " idle conns" + lower, true},
		{"vi.accept", "vi", "(vi) seconds to accept " + conns + " conns" + lower, true},
	}
	gz := fmt.Sprintf("1 MiB text, gzip level %d", gzipLevel)
	all = append(all,
		quantity{"gzip.rps", "gzip", "(gzip) " + gz + ": req/s", false},
		quantity{"gzip.cpu", "gzip", "(gzip) " + gz + ": server CPU s" + lower, true},
		quantity{"gzip.per_cpu", "gzip", "(gzip) " + gz + ": " + perCPU, false},
		quantity{"gzip.bytes", "gzip", "(gzip) " + gz + ": bytes on the wire per response" + lower, true},
		quantity{"gzip-big.mbps", "gzip-big", "(gzip-big) " + big + " text, gzip: MB/s of the file", false},
		quantity{"gzip-big.rss", "gzip-big", "(gzip-big) " + big + " text, gzip: peak RSS MiB" + lower, true},
		quantity{"gzip-big.cpu", "gzip-big", "(gzip-big) " + big + " text, gzip: server CPU s" + lower, true},
		quantity{"acl.a", "acl", "(acl) 1 KiB file, route without an access list: " + perCPU, false},
		quantity{"acl.b", "acl", "(acl) 1 KiB file, route with an access list: " + perCPU, false},
		quantity{"acl.ratio", "acl", "(acl) with / without, per round", false},
		quantity{"lb.rps", "lb", "(lb) proxy 100 B over 3 upstreams, round robin: req/s", false},
		quantity{"lb.cpu", "lb", "(lb) proxy 100 B over 3 upstreams: server CPU s" + lower, true},
		quantity{"lb.per_cpu", "lb", "(lb) proxy 100 B over 3 upstreams: " + perCPU, false},
	)
	attackers := formatCount(o.slowConns)
	all = append(all,
		quantity{"slowloris.calm.rps", "slowloris", "(slowloris) 1 KiB file, no attack: req/s", false},
		quantity{"slowloris.attacked.rps", "slowloris", "(slowloris) 1 KiB file, " + attackers + " slowloris connections: req/s", false},
		quantity{"slowloris.kept", "slowloris", "(slowloris) req/s kept under attack, per round", false},
		quantity{"slowloris.calm.per_cpu", "slowloris", "(slowloris) 1 KiB file, no attack: " + perCPU, false},
		quantity{"slowloris.attacked.per_cpu", "slowloris", "(slowloris) 1 KiB file, under attack: " + perCPU, false},
		quantity{"slowloris.opened", "slowloris", "(slowloris) attacking connections opened", false},
		quantity{"slowloris.longest", "slowloris", fmt.Sprintf("(slowloris) longest attacking connection, s (header timeout %v)%s", slowTimeout, lower), true},
		quantity{"slowloris.late", "slowloris", fmt.Sprintf("(slowloris) attacking connections open past %v%s", slowTimeout+slowGrace, lower), true},
		quantity{"timers-idle.per_conn", "timers-idle", "(timers-idle) bytes per idle connection with a partial head" + lower, true},
		quantity{"timers-idle.idle", "timers-idle", "(timers-idle) idle CPU %, " + conns + " partial heads" + lower, true},
	)
	prev := stageTimers - 1
	all = append(all,
		quantity{"timers.a", "timers", fmt.Sprintf("(timers) 1 KiB file, stage %d (no timers): %s", prev, perCPU), false},
		quantity{"timers.b", "timers", fmt.Sprintf("(timers) 1 KiB file, stage %d (timers armed): %s", o.stage, perCPU), false},
		quantity{"timers.ratio", "timers", fmt.Sprintf("(timers) stage %d / stage %d, per round", o.stage, prev), false},
	)
	for _, n := range o.workerCounts {
		at := fmt.Sprintf(", N = %d", n)
		scaling := fmt.Sprintf(": scaling rps(%d) / (%d·rps(1))", n, n)
		all = append(all,
			quantity{fmt.Sprintf("vii.%d.rps", n), "vii", "(vii) 1 KiB file" + at + ": req/s", false},
			quantity{fmt.Sprintf("vii.%d.per_cpu", n), "vii", "(vii) 1 KiB file" + at + ": " + perCPU, false},
			quantity{fmt.Sprintf("vii.%d.scaling", n), "vii", "(vii) 1 KiB file" + at + scaling, false},
			quantity{fmt.Sprintf("viii.%d.rps", n), "viii", "(viii) " + gz + at + ": req/s", false},
			quantity{fmt.Sprintf("viii.%d.cpu", n), "viii", "(viii) " + gz + at + ": server CPU s" + lower, true},
			quantity{fmt.Sprintf("viii.%d.per_cpu", n), "viii", "(viii) " + gz + at + ": " + perCPU, false},
			quantity{fmt.Sprintf("viii.%d.scaling", n), "viii", "(viii) " + gz + at + scaling, false},
			quantity{fmt.Sprintf("ix.%d.rps", n), "ix", "(ix) proxy 100 B over 3 upstreams" + at + ": req/s", false},
			quantity{fmt.Sprintf("ix.%d.per_cpu", n), "ix", "(ix) proxy 100 B over 3 upstreams" + at + ": " + perCPU, false},
			quantity{fmt.Sprintf("ix.%d.scaling", n), "ix", "(ix) proxy 100 B over 3 upstreams" + at + scaling, false},
			quantity{fmt.Sprintf("x.%d.ratio", n), "x", "(x) fairness" + at + ": largest / smallest worker share" + lower, true},
		)
	}
	all = append(all,
		quantity{"xi.a", "xi", "(xi) 1 KiB file, metrics not polled: " + perCPU, false},
		quantity{"xi.b", "xi", "(xi) 1 KiB file, /api polled at 1 Hz and /metrics at 10 Hz: " + perCPU, false},
		quantity{"xi.ratio", "xi", "(xi) polled / not polled, per round", false},
	)
	for _, n := range o.workerCounts {
		all = append(all, quantity{fmt.Sprintf("xii.%d.secs", n), "xii",
			fmt.Sprintf("(xii) seconds from the stop signal to exit, N = %d, %s idle conns%s", n, conns, lower), true})
	}
	var out []quantity
	for _, q := range all {
		// A scaling or fairness figure compares workers: none at N = 1.
		if !o.rows[q.Row] || strings.Contains(q.Key, ".1.") && (strings.HasSuffix(q.Key, ".scaling") || q.Row == "x") {
			continue
		}
		out = append(out, q)
	}
	return out
}

// results collects one value per quantity, server and round.
type results struct {
	values  map[string]map[string][]float64 // quantity key → server → values
	flagged map[string]map[string]bool      // row → server → some run of it had errors
	notes   []string
}

func newResults() *results {
	return &results{values: map[string]map[string][]float64{}, flagged: map[string]map[string]bool{}}
}

func (r *results) add(key, server string, v float64) {
	if r.values[key] == nil {
		r.values[key] = map[string][]float64{}
	}
	r.values[key][server] = append(r.values[key][server], v)
}

// flag marks the rows' figures for a server as coming from a run with
// errors and keeps the reason for the notes under the table.
func (r *results) flag(server, note string, rows ...string) {
	for _, row := range rows {
		if r.flagged[row] == nil {
			r.flagged[row] = map[string]bool{}
		}
		r.flagged[row][server] = true
	}
	r.notes = append(r.notes, note)
}

// summary is a quantity's spread over the rounds for one server.
type summary struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples []float64 `json:"samples"`
	Flagged bool      `json:"flagged,omitempty"`
}

// summarize returns the median, min and max of values; ok is false when
// there are none. The median of an even count is the mean of the middle two.
func summarize(values []float64) (s summary, ok bool) {
	if len(values) == 0 {
		return s, false
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	n := len(sorted)
	s.Median = sorted[n/2]
	if n%2 == 0 {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	s.Min, s.Max, s.Samples = sorted[0], sorted[n-1], values
	return s, true
}

// line is one quantity summarised for every server, in serverNames order;
// a nil entry means the server has no value for it.
type line struct {
	q     quantity
	cells []*summary
}

func (r *results) lines(qs []quantity) []line {
	var out []line
	for _, q := range qs {
		l := line{q: q}
		for _, name := range serverNames {
			s, ok := summarize(r.values[q.Key][name])
			if !ok {
				l.cells = append(l.cells, nil)
				continue
			}
			s.Flagged = r.flagged[q.Row][name]
			l.cells = append(l.cells, &s)
		}
		out = append(out, l)
	}
	return out
}

// ratio returns ours/peer of the medians, and false when either is missing
// or the peer's is zero.
func (l line) ratio(peer int) (float64, bool) {
	ours, p := l.cells[len(l.cells)-1], l.cells[peer]
	if ours == nil || p == nil || p.Median == 0 {
		return 0, false
	}
	return ours.Median / p.Median, true
}

// markdownTable renders the lines as a markdown table: the three servers'
// medians with min–max, then ours divided by each peer.
func markdownTable(lines []line) string {
	var b strings.Builder
	b.WriteString("| quantity | " + strings.Join(serverNames, " | ") + " | ours / nginx | ours / net/http |\n")
	b.WriteString("|---|" + strings.Repeat("---:|", len(serverNames)+2) + "\n")
	for _, l := range lines {
		cells := []string{l.q.Name}
		for _, c := range l.cells {
			cells = append(cells, formatCell(c))
		}
		for peer := range 2 {
			if r, ok := l.ratio(peer); ok {
				cells = append(cells, formatRatio(r))
			} else {
				cells = append(cells, "—")
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

// formatCell shows a median with its min–max over rounds, and ⚠ when a run
// behind it had errors.
func formatCell(s *summary) string {
	if s == nil {
		return "n/a"
	}
	out := formatNumber(s.Median)
	if s.Min != s.Max {
		out += " (" + formatNumber(s.Min) + "–" + formatNumber(s.Max) + ")"
	}
	if s.Flagged {
		out += " ⚠"
	}
	return out
}

// formatNumber prints v with about three significant digits, and large
// values as whole numbers with thousands separators. The thresholds are
// where rounding to three digits reaches the next power of ten, so that
// 0.9996 prints as 1.00, as 1 does, not as 1.
func formatNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 99.95:
		return formatCount(int(math.Round(v)))
	case a >= 9.995:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.9995:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// formatCount prints n with commas between thousands.
func formatCount(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// formatRatio prints ours/peer as a factor, such as "0.80×".
func formatRatio(r float64) string {
	switch {
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64) + "×"
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64) + "×"
	default:
		return strconv.FormatFloat(r, 'f', 2, 64) + "×"
	}
}

// sizeLabel names a byte count in GiB or MiB.
func sizeLabel(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// jsonReport is what -json writes: the same figures as the table, with
// every sample.
type jsonReport struct {
	Machine    machine        `json:"machine"`
	Settings   jsonSettings   `json:"settings"`
	Servers    []string       `json:"servers"`
	Quantities []jsonQuantity `json:"quantities"`
	Notes      []string       `json:"notes"`
}

type jsonSettings struct {
	Stage            int            `json:"stage"`
	Rounds           int            `json:"rounds"`
	RowRounds        map[string]int `json:"row_rounds"`
	WrkSeconds       float64        `json:"wrk_seconds"`
	IdleSeconds      float64        `json:"idle_seconds"`
	Conns            int            `json:"conns"`
	SlowlorisConns   int            `json:"slowloris_conns"`
	BigFileBytes     int64          `json:"big_file_bytes"`
	Workers          []int          `json:"workers"`
	Rows             []string       `json:"rows"`
	Skipped          []string       `json:"skipped"`
	Quick            bool           `json:"quick"`
	ServerCPU        int            `json:"server_cpu"`
	LoadGeneratorCPU int            `json:"load_generator_cpu"`
	OpenFileLimit    uint64         `json:"open_file_limit"`
}

type jsonQuantity struct {
	quantity
	Values          map[string]*summary `json:"values"`
	OursOverNginx   *float64            `json:"ours_over_nginx"`
	OursOverNetHTTP *float64            `json:"ours_over_net_http"`
}

func buildJSON(m machine, o options, lines []line, notes []string) jsonReport {
	rep := jsonReport{
		Machine: m,
		Settings: jsonSettings{
			Stage: o.stage, Rounds: o.totalRounds(), RowRounds: rowRounds(o), WrkSeconds: o.duration.Seconds(), IdleSeconds: o.idle.Seconds(),
			Conns: o.conns, SlowlorisConns: o.slowConns, BigFileBytes: o.bigSize, Workers: o.workerCounts,
			Rows: o.rowList(), Skipped: o.skipped, Quick: o.quick,
			ServerCPU: serverCPU, LoadGeneratorCPU: clientCPU, OpenFileLimit: o.fileLimit,
		},
		Servers: serverNames,
		Notes:   notes,
	}
	if rep.Notes == nil {
		rep.Notes = []string{}
	}
	for _, l := range lines {
		q := jsonQuantity{quantity: l.q, Values: map[string]*summary{}}
		for i, c := range l.cells {
			q.Values[serverNames[i]] = c
		}
		if r, ok := l.ratio(0); ok {
			q.OursOverNginx = &r
		}
		if r, ok := l.ratio(1); ok {
			q.OursOverNetHTTP = &r
		}
		rep.Quantities = append(rep.Quantities, q)
	}
	return rep
}

// rowRounds returns how many rounds each selected row got.
func rowRounds(o options) map[string]int {
	out := map[string]int{}
	for _, r := range o.rowList() {
		out[r] = o.roundsOf(r)
	}
	return out
}

func writeJSON(path string, rep jsonReport) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'))
}

// writeFile writes data to path, creating its folder if needed.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
