package milestone

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"expserver-go/tests/harness"
)

// What the checks of phase 3 (stages 18–21: access lists, gzip, load
// balancing, timeouts) share: a typed configuration, servers of the binary
// under test started with it, requests from chosen source addresses, and
// the tolerances of timers.

// route is one route of a phase-3 configuration, with the keys the stages
// add; a zero field is left out.
type route struct {
	Path          string   `json:"req_path"`
	Type          string   `json:"type"`
	Dir           string   `json:"dir_path,omitempty"`
	Index         []string `json:"index,omitempty"`
	Upstreams     []any    `json:"upstreams,omitempty"` // "host:port", or an upstream object
	LoadBalancing string   `json:"load_balancing,omitempty"`
	Status        int      `json:"http_status_code,omitempty"`
	RedirectURL   string   `json:"redirect_url,omitempty"`
	Whitelist     []string `json:"ip_whitelist,omitempty"`
	Blacklist     []string `json:"ip_blacklist,omitempty"`
	Gzip          bool     `json:"gzip_enable,omitempty"`
	GzipLevel     int      `json:"gzip_level,omitempty"`
	GzipTypes     []string `json:"gzip_mime_types,omitempty"`
	GzipMinLength *int     `json:"gzip_min_length,omitempty"`
	// More sets keys beyond these, or replaces one with a value of any
	// type: what the checks of configuration errors need.
	More map[string]any `json:"-"`
}

// upstream is the object form of an upstreams entry (stage 20).
type upstream struct {
	Address     string  `json:"address"`
	Weight      int     `json:"weight,omitempty"`
	MaxFails    *int    `json:"max_fails,omitempty"`
	FailTimeout float64 `json:"fail_timeout,omitempty"`
}

// fileRoute serves dir on path.
func fileRoute(path, dir string) route { return route{Path: path, Type: "file_serve", Dir: dir} }

// proxyRoute relays path to the upstreams.
func proxyRoute(path string, upstreams ...any) route {
	return route{Path: path, Type: "reverse_proxy", Upstreams: upstreams}
}

// timeouts are the six top-level keys of stage 21, in seconds; zero leaves
// a key out.
type timeouts struct {
	ClientHeader float64 `json:"client_header_timeout,omitempty"`
	ClientBody   float64 `json:"client_body_timeout,omitempty"`
	Send         float64 `json:"send_timeout,omitempty"`
	ProxyConnect float64 `json:"proxy_connect_timeout,omitempty"`
	ProxySend    float64 `json:"proxy_send_timeout,omitempty"`
	ProxyRead    float64 `json:"proxy_read_timeout,omitempty"`
}

// config is a phase-3 configuration: the routes of the server on each of
// the four ports, by role, and the top-level keys.
type config struct {
	Routes [4][]route
	timeouts
	More map[string]any // top-level keys beyond the timeouts
}

// json returns the configuration with its servers listening on ports.
func (c config) json(ports [4]int) []byte {
	var routes [4][]map[string]any
	for i, rs := range c.Routes {
		for _, r := range rs {
			routes[i] = append(routes[i], withMore(r, r.More))
		}
	}
	doc := withMore(c.timeouts, c.More)
	var servers map[string]any
	mustRoundTrip(instanceConfig(ports, routes), &servers)
	maps.Copy(doc, servers)
	b, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		panic(fmt.Sprintf("milestone: phase-3 config: %v", err)) // plain data; cannot fail
	}
	return b
}

// withMore returns v as a JSON object, with the keys of more set over it.
func withMore(v any, more map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("milestone: phase-3 config: %v", err)) // plain data; cannot fail
	}
	m := map[string]any{}
	mustRoundTrip(b, &m)
	maps.Copy(m, more)
	return m
}

func mustRoundTrip(b []byte, v any) {
	if err := json.Unmarshal(b, v); err != nil {
		panic(fmt.Sprintf("milestone: phase-3 config: %v", err)) // our own JSON; cannot fail
	}
}

// startWith starts a server of the binary under test with c, on four free
// ports. The caller closes it.
func (e *Env) startWith(c config) (*ServerProcess, error) {
	ports, err := freeInstancePorts()
	if err != nil {
		return nil, err
	}
	return e.StartInstance(Instance{Ports: ports, Config: c.json(ports)})
}

// at returns the address of the server's port with the given role.
func at(s *ServerProcess, role int) string { return s.Host + ":" + strconv.Itoa(s.Ports[role]) }

// refusesConfig starts the binary with c, which it must refuse: exit
// status 2 with a message naming path, the JSON path of the mistake, or a
// path inside it (see namesPath).
func (e *Env) refusesConfig(c config, path string) error {
	ports, err := freeInstancePorts()
	if err != nil {
		return err
	}
	code, out, err := e.RefusedStart(Instance{Ports: ports, Config: c.json(ports)}, startupTimeout)
	if err != nil {
		return err
	}
	if code != 2 || !namesPath(out, path) {
		return fail("exit status 2 and a message naming "+path,
			"exit status %d; it printed %s", code, harness.Abbrev([]byte(strings.TrimSpace(out)), 200))
	}
	return nil
}

// namesPath reports whether the message out names the JSON path path, or
// a path inside it: path followed by ":" (as in
// "servers[0].routes[0].ip_whitelist[1]: …"), "." or "[".
func namesPath(out, path string) bool {
	for rest := out; ; {
		i := strings.Index(rest, path)
		if i < 0 {
			return false
		}
		rest = rest[i+len(path):]
		if rest != "" && strings.ContainsRune(":.[", rune(rest[0])) {
			return true
		}
	}
}

// workDir makes a folder for a check's files under the layout, where the
// fd checks see them, holding files (slash-separated names and contents).
// The caller removes it.
func workDir(e *Env, prefix string, files map[string]string) (string, error) {
	dir, err := os.MkdirTemp(e.Layout.Root, prefix+"-")
	if err != nil {
		return "", err
	}
	if err := harness.WriteTree(dir, files); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// noAcceptEncoding, among the header lines of request, leaves
// Accept-Encoding out.
const noAcceptEncoding = "(no Accept-Encoding)"

// request builds an HTTP/1.1 request with Host, Connection: close, the
// header lines given ("Name: value") and then body. From stage 19 a server
// may compress what a request does not refuse, so every request of the
// phase-3 checks says which codings it takes: identity, unless a line
// given sets Accept-Encoding or is noAcceptEncoding.
func request(method, target, host string, lines []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	ae := "Accept-Encoding: identity"
	for _, l := range lines {
		if name, _, _ := strings.Cut(l, ":"); strings.EqualFold(name, "Accept-Encoding") || l == noAcceptEncoding {
			ae = ""
			if l == noAcceptEncoding {
				continue
			}
		}
		b.WriteString(l + "\r\n")
	}
	if ae != "" {
		b.WriteString(ae + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n" + body)
	return b.String()
}

// getFrom sends GET target from the source address src (see
// harness.DialFrom; "" for the kernel's choice) to addr, with the header
// lines given, and reads the response to the close.
func getFrom(src, addr, target string, lines ...string) (*harness.Response, error) {
	host, _, _ := net.SplitHostPort(addr)
	r, _, err := harness.RoundTripFrom(src, addr, request("GET", target, host, lines, ""), bulkTimeout)
	if err != nil {
		from := ""
		if src != "" {
			from = " from " + src
		}
		return nil, fail("a response to GET "+target+from, "%v", err)
	}
	return r, nil
}

// Timers fire no earlier than their time and at most timerLate after it,
// measured from the event that armed them [spec §1.4]. A check measures
// from an event it sees on its side, never before the server's own: the
// connect (the server accepts after it), the last byte sent (the server
// reads it after), or a byte the test upstream wrote (the server reads it
// after).
const timerLate = 500 * time.Millisecond

// crowdLate replaces timerLate for the checks that watch hundreds of
// connections at once: on a loaded two-CPU machine, where every stage's
// suite runs at the same time, the test process itself can take longer
// than half a second to see a few hundred closes, whatever the server did.
const crowdLate = time.Second

// inWindow checks that d, the time what happened took after the event
// that armed a timer of length t, lies in [t, t+late].
func inWindow(what string, d, t, late time.Duration) error {
	if d < t || d > t+late {
		return fail(fmt.Sprintf("%s after %v–%v", what, t, t+late), "after %v", d.Round(time.Millisecond))
	}
	return nil
}
