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
	all := []quantity{
		{"i.rps", "i", "(i) 1 KiB file: req/s", false},
		{"i.cpu", "i", "(i) 1 KiB file: server CPU s" + lower, true},
		{"i.per_cpu", "i", "(i) 1 KiB file: requests per server CPU-second", false},
		{"ii.mbps", "ii", "(ii) " + big + " download: MB/s", false},
		{"ii.rss", "ii", "(ii) " + big + " download: peak RSS MiB" + lower, true},
		{"ii.cpu", "ii", "(ii) " + big + " download: server CPU s" + lower, true},
		{"iii.rps", "iii", "(iii) proxy 100 B: req/s", false},
		{"iii.cpu", "iii", "(iii) proxy 100 B: server CPU s" + lower, true},
		{"iii.per_cpu", "iii", "(iii) proxy 100 B: requests per server CPU-second", false},
		{"iv.rss_idle", "iv", "(iv) RSS idle, MiB" + lower, true},
		{"iv.rss_conns", "iv", "(iv) RSS with " + conns + " idle conns, MiB" + lower, true},
		{"iv.per_conn", "iv", "(iv) bytes per idle connection" + lower, true},
		{"v.idle", "v", "(v) idle CPU %, no connections" + lower, true},
		{"v.idle_conns", "v", "(v) idle CPU %, " + conns + " idle conns" + lower, true},
		{"vi.accept", "vi", "(vi) seconds to accept " + conns + " conns" + lower, true},
	}
	var out []quantity
	for _, q := range all {
		if o.rows[q.Row] {
			out = append(out, q)
		}
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
// values as whole numbers with thousands separators.
func formatNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 100:
		return formatCount(int(math.Round(v)))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
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
	Rounds           int      `json:"rounds"`
	WrkSeconds       float64  `json:"wrk_seconds"`
	IdleSeconds      float64  `json:"idle_seconds"`
	Conns            int      `json:"conns"`
	BigFileBytes     int64    `json:"big_file_bytes"`
	Rows             []string `json:"rows"`
	Quick            bool     `json:"quick"`
	ServerCPU        int      `json:"server_cpu"`
	LoadGeneratorCPU int      `json:"load_generator_cpu"`
	OpenFileLimit    uint64   `json:"open_file_limit"`
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
			Rounds: o.rounds, WrkSeconds: o.duration.Seconds(), IdleSeconds: o.idle.Seconds(),
			Conns: o.conns, BigFileBytes: o.bigSize, Rows: o.rowList(), Quick: o.quick,
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

func writeJSON(path string, rep jsonReport) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
