package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"expserver-go/common/jsonpath"
	"expserver-go/common/netaddr"
	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// The config module: its types, then how a file becomes a config (parse),
// then how a request finds its answer in one (lookup).

// config is a loaded and validated configuration. Mirrors xps_config_t.
type config struct {
	path       string
	serverName string
	servers    []*serverConfig
	// listeners holds every listener of every server once, by host and
	// port, in the order first seen: servers that share an address share
	// its socket, and the Host header picks between them.
	listeners []listenerConfig
}

// serverConfig is one server block. Mirrors xps_config_server_t.
type serverConfig struct {
	listeners []listenerConfig
	hostnames []string // empty: any Host
	routes    []*routeConfig
}

// listenerConfig is an address to listen on. Mirrors xps_config_listener_t.
type listenerConfig struct {
	host string
	port int
}

// routeConfig is one route of a server. Only the fields of its type are
// set. Mirrors xps_config_route_t.
type routeConfig struct {
	reqPath string
	typ     routeType

	dirPath string // file_serve: the real path, resolved at load time
	index   []string

	// reverse_proxy: the upstreams, resolved at load time, and how each
	// request picks one; for the life of the process (see balancer).
	balancer *balancer

	httpStatusCode int // redirect
	redirectURL    string

	// ipWhitelist and ipBlacklist are the route's access lists, on any
	// route type; nil when the key is missing or its array empty.
	ipWhitelist, ipBlacklist ipList

	// file_serve, from stage 19: whether to compress, at which level, the
	// media types compressed besides defaultGzipTypes (lower case), and the
	// shortest body worth compressing.
	gzipEnable    bool
	gzipLevel     int
	gzipTypes     []string
	gzipMinLength int64
}

// Defaults of the gzip keys of a file_serve route. Level 6 is zlib's
// default; nginx ignores bodies under 20 bytes too, which gzip's own 18
// bytes of header and trailer would make larger.
const (
	defaultGzipLevel     = 6
	defaultGzipMinLength = 20
)

// routeType is what a route does with the requests it matches.
type routeType int

// The zero routeType is deliberately none of these, so a route that was
// never given a type cannot pass for a file server.
const (
	routeFileServe routeType = iota + 1
	routeReverseProxy
	routeRedirect
)

// String returns the type as a config spells it.
func (t routeType) String() string {
	switch t {
	case routeFileServe:
		return "file_serve"
	case routeReverseProxy:
		return "reverse_proxy"
	case routeRedirect:
		return "redirect"
	}
	return "routeType(" + strconv.Itoa(int(t)) + ")"
}

// lookupResult says how to answer one request. Mirrors xps_config_lookup_t.
type lookupResult struct {
	typ   routeType
	route *routeConfig

	filePath string // file_serve: the real path of the file to send
	dirPath  string // file_serve: the real path of a directory to list

	balancer *balancer // reverse_proxy: picks the upstream, and the next one if it fails

	httpStatusCode int // redirect
	redirectURL    string

	// The route's access lists, for the session to check before it acts on
	// anything above.
	ipWhitelist, ipBlacklist ipList
}

// loadConfig reads the JSON configuration at path and validates all of it,
// so that a mistake stops the server before it binds anything. Each error
// is one line that starts with the JSON path of the offending value
// ("servers[1].routes[0].type: ..."), or with LINE:COL for a syntax error.
// A relative dir_path is resolved against the working directory, not the
// config file's folder. Mirrors xps_config_create.
func loadConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := jsonpath.Parse(data)
	if err != nil {
		return nil, err
	}
	c, err := parseConfig(doc)
	if err != nil {
		return nil, err
	}
	c.path = path
	return c, nil
}

// parseConfig builds the config from the top-level JSON value.
func parseConfig(doc jsonpath.Value) (*config, error) {
	var name, workers, servers jsonpath.Value
	err := doc.Object(map[string]*jsonpath.Value{
		"server_name": &name,
		"workers":     &workers, // several core/loop pairs come in a later stage
		"servers":     &servers,
	})
	if err != nil {
		return nil, err
	}
	c := &config{serverName: serverName}
	if !name.Absent() {
		if c.serverName, err = decodeHeaderValue(name); err != nil {
			return nil, err
		}
	}
	if !workers.Absent() {
		if _, err := workers.Int(); err != nil {
			return nil, err
		}
	}
	items, err := servers.Array()
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, servers.Errorf("at least one server is needed")
	}
	for _, item := range items {
		s, err := parseServer(item)
		if err != nil {
			return nil, err
		}
		c.servers = append(c.servers, s)
		for _, l := range s.listeners {
			if !slices.Contains(c.listeners, l) {
				c.listeners = append(c.listeners, l)
			}
		}
	}
	return c, nil
}

// parseServer builds one server block. Mirrors parse_server.
func parseServer(v jsonpath.Value) (*serverConfig, error) {
	var listeners, hostnames, routes jsonpath.Value
	err := v.Object(map[string]*jsonpath.Value{
		"listeners": &listeners,
		"hostnames": &hostnames,
		"routes":    &routes,
	})
	if err != nil {
		return nil, err
	}
	s := &serverConfig{}
	items, err := listeners.Array()
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, listeners.Errorf("at least one listener is needed")
	}
	for i, item := range items {
		l, err := parseListener(item)
		if err != nil {
			return nil, err
		}
		// Within one server a repeated address is a slip; across servers it
		// is how virtual hosts share a port.
		if j := slices.Index(s.listeners, l); j >= 0 {
			return nil, items[i].Errorf("duplicate of listeners[%d] (%s:%d)", j, l.host, l.port)
		}
		s.listeners = append(s.listeners, l)
	}
	if s.hostnames, err = hostnames.Strings(); err != nil {
		return nil, err
	}
	if items, err = routes.Array(); err != nil {
		return nil, err
	}
	for _, item := range items {
		r, err := parseRoute(item)
		if err != nil {
			return nil, err
		}
		s.routes = append(s.routes, r)
	}
	return s, nil
}

// parseListener builds one listener. Mirrors parse_listener.
func parseListener(v jsonpath.Value) (listenerConfig, error) {
	var host, port jsonpath.Value
	var l listenerConfig
	err := v.Object(map[string]*jsonpath.Value{"host": &host, "port": &port})
	if err != nil {
		return l, err
	}
	if host.Absent() {
		return l, host.Errorf("missing")
	}
	if l.host, err = host.Text(); err != nil {
		return l, err
	}
	if l.host == "" {
		return l, host.Errorf("must not be empty")
	}
	if port.Absent() {
		return l, port.Errorf("missing")
	}
	if l.port, err = port.Int(); err != nil {
		return l, err
	}
	// Port 0 would have the kernel pick a port that no client could know.
	if l.port < 1 || l.port > 65535 {
		return l, port.Errorf("%d is not a port (1–65535)", l.port)
	}
	// A host name is looked up now, so that one that does not resolve is
	// a mistake reported with its path, before anything is bound.
	if _, err := netaddr.ResolveIPv4(l.host, l.port); err != nil {
		return l, host.Errorf("%v", err)
	}
	return l, nil
}

// parseRoute builds one route. Keys that belong to another route type are
// accepted and ignored, because real configs carry such leftovers; keys
// that no route knows are errors. Mirrors parse_route.
func parseRoute(v jsonpath.Value) (*routeConfig, error) {
	var reqPath, typ, dirPath, index, upstreams, loadBalancing, status, url jsonpath.Value
	var gzipEnable, gzipLevel, gzipTypes, gzipMinLength, whitelist, blacklist jsonpath.Value
	err := v.Object(map[string]*jsonpath.Value{
		"req_path":         &reqPath,
		"type":             &typ,
		"dir_path":         &dirPath,
		"index":            &index,
		"upstreams":        &upstreams,
		"load_balancing":   &loadBalancing,
		"http_status_code": &status,
		"redirect_url":     &url,
		"gzip_enable":      &gzipEnable,
		"gzip_level":       &gzipLevel,
		"gzip_mime_types":  &gzipTypes,
		"gzip_min_length":  &gzipMinLength,
		"ip_whitelist":     &whitelist,
		"ip_blacklist":     &blacklist,
	})
	if err != nil {
		return nil, err
	}
	r := &routeConfig{}
	if r.reqPath, err = parseReqPath(reqPath); err != nil {
		return nil, err
	}
	if r.typ, err = parseRouteType(typ); err != nil {
		return nil, err
	}
	switch r.typ {
	case routeFileServe:
		err = r.parseFileServe(dirPath, index)
	case routeReverseProxy:
		err = r.parseReverseProxy(upstreams, loadBalancing)
	case routeRedirect:
		err = r.parseRedirect(status, url)
	}
	if err != nil {
		return nil, err
	}
	// The gzip keys belong to file_serve routes from stage 19 on; like
	// dir_path on a redirect, they are not looked at on other routes.
	if r.typ == routeFileServe {
		if err := r.parseGzip(gzipEnable, gzipLevel, gzipTypes, gzipMinLength); err != nil {
			return nil, err
		}
	}
	// The course keeps a whitelist alone, a blacklist alone, and of both
	// the whitelist minus the strings also blacklisted. Both lists are kept
	// here and the session applies both: entries are prefixes, which do not
	// subtract as strings do, and a whitelist whose every entry is
	// blacklisted must let nobody in, where the course's, emptied, lets
	// everyone in.
	if r.ipWhitelist, err = parseIPList(whitelist); err != nil {
		return nil, err
	}
	if r.ipBlacklist, err = parseIPList(blacklist); err != nil {
		return nil, err
	}
	return r, nil
}

// ipList is a route's ip_whitelist or ip_blacklist: each entry a prefix, an
// address being the prefix of its full length. Mirrors the ip_whitelist and
// ip_blacklist vectors of xps_config_route_s, which hold the strings of the
// config for strcmp, so that there "10.0.0.0/8" never matches and
// "127.0.0.01" silently matches nobody.
type ipList []netip.Prefix

// parseIPList reads an ip_whitelist or ip_blacklist, as parse_route does. A
// missing key and an empty array are both nil: a list with no entry, as the
// course's session takes a vector of length 0.
func parseIPList(v jsonpath.Value) (ipList, error) {
	items, err := v.Array()
	if err != nil || len(items) == 0 {
		return nil, err
	}
	l := make(ipList, len(items))
	for i, item := range items {
		s, err := item.Text()
		if err != nil {
			return nil, err
		}
		if l[i], err = parseIPEntry(s, item); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// parseIPEntry reads s, one entry of an access list, given in the config
// as v: an address ("127.0.0.1") or a CIDR prefix ("10.0.0.0/8"), in the
// strict forms of net/netip. An IPv4 address is four decimal octets without
// leading zeros, so the shorthands inet_aton accepts ("127.1", "0x7f.0.0.1",
// "0177.0.0.1", which it reads as octal) are errors rather than addresses
// the author did not mean. Host bits set below the prefix length are
// cleared, with a warning, as nginx does. An IPv4-mapped IPv6 entry
// (::ffff:a.b.c.d) is its IPv4 address, as the client's address is (see
// newConnection). Any other IPv6 entry is kept, and matches no client of an
// IPv4 listener.
func parseIPEntry(s string, v jsonpath.Value) (netip.Prefix, error) {
	var p netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err == nil && a.Zone() != "" {
			// A zone names an interface of one machine; no peer address
			// carries it, and a prefix cannot hold it.
			return netip.Prefix{}, v.Errorf("%q has a zone, which no client address has", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil {
		return netip.Prefix{}, v.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	if p.Addr().Is4In6() {
		// Shorter than /96, the prefix reaches past ::ffff:0:0/96 into
		// addresses that are not IPv4 at all: no IPv4 prefix says the same.
		if p.Bits() < 96 {
			return netip.Prefix{}, v.Errorf("%q is IPv4-mapped but shorter than /96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		xlog.Warnf("%s: low address bits of %s are meaningless: it is taken as %s", v.Path(), s, m)
		p = m
	}
	return p, nil
}

// contains reports whether ip lies in an entry of l. It runs for every
// request to a route with a list, so it only compares fixed-size values:
// nothing is parsed or allocated. An IPv4 address never lies in an IPv6
// prefix.
func (l ipList) contains(ip netip.Addr) bool {
	for _, p := range l {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseReqPath checks a route's req_path. Requests are matched on cleaned
// pathnames, so a req_path that cleaning would change could never match.
func parseReqPath(v jsonpath.Value) (string, error) {
	if v.Absent() {
		return "", v.Errorf("missing")
	}
	p, err := v.Text()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(p, "/") {
		return "", v.Errorf(`must start with "/"`)
	}
	clean, err := cleanPathname(p)
	if err != nil {
		return "", v.Errorf("%q is not a clean path", p)
	}
	if clean != p {
		return "", v.Errorf("%q is not a clean path (want %q)", p, clean)
	}
	return p, nil
}

// parseRouteType reads a route's type.
func parseRouteType(v jsonpath.Value) (routeType, error) {
	if v.Absent() {
		return 0, v.Errorf("missing")
	}
	s, err := v.Text()
	if err != nil {
		return 0, err
	}
	for _, t := range []routeType{routeFileServe, routeReverseProxy, routeRedirect} {
		if s == t.String() {
			return t, nil
		}
	}
	return 0, v.Errorf("unknown route type %q (want file_serve, reverse_proxy or redirect)", s)
}

// parseFileServe reads the keys of a file_serve route.
func (r *routeConfig) parseFileServe(dirPath, index jsonpath.Value) error {
	if dirPath.Absent() {
		return dirPath.Errorf("needed by a file_serve route")
	}
	dir, err := dirPath.Text()
	if err != nil {
		return err
	}
	if r.dirPath, err = resolveDir(dir, dirPath); err != nil {
		return err
	}
	items, err := index.Array()
	if err != nil {
		return err
	}
	for _, item := range items {
		name, err := item.Text()
		if err != nil {
			return err
		}
		// An index entry is looked up inside the requested directory, so
		// a slash or a dot-segment would make it name some other place.
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			return item.Errorf("%q is not a file name", name)
		}
		r.index = append(r.index, name)
	}
	return nil
}

// resolveDir returns the real path of the directory dir, given in the
// config as v. Resolving once here means lookups compare real paths
// without resolving the root each time.
func resolveDir(dir string, v jsonpath.Value) (string, error) {
	if dir == "" {
		return "", v.Errorf("must not be empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", v.Errorf("%s: %v", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if errors.Is(fileError(err), fs.ErrNotExist) {
		return "", v.Errorf("%s: no such directory", dir)
	}
	if err != nil {
		return "", v.Errorf("%s: %v", dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", v.Errorf("%s: %v", dir, err)
	}
	if !fi.IsDir() {
		return "", v.Errorf("%s: not a directory", dir)
	}
	return real, nil
}

// parseReverseProxy reads the keys of a reverse_proxy route: its upstreams
// and its load_balancing. Each upstream's name is resolved here, once, as
// nginx does: looking a name up waits for the name server, and on every
// request, inside the loop, that wait would stall every client. A name that
// does not resolve is a mistake in the config.
func (r *routeConfig) parseReverseProxy(upstreams, loadBalancing jsonpath.Value) error {
	method, err := parseBalanceMethod(loadBalancing)
	if err != nil {
		return err
	}
	items, err := upstreams.Array()
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return upstreams.Errorf("at least one upstream is needed")
	}
	b := &balancer{method: method}
	for _, item := range items {
		u, err := parseUpstream(item)
		if err != nil {
			return err
		}
		b.upstreams = append(b.upstreams, u)
		b.total += u.weight
	}
	r.balancer = b
	return nil
}

// parseBalanceMethod reads load_balancing; absent, it is round_robin.
func parseBalanceMethod(v jsonpath.Value) (balanceMethod, error) {
	if v.Absent() {
		return roundRobin, nil
	}
	s, err := v.Text()
	if err != nil {
		return 0, err
	}
	for _, m := range []balanceMethod{roundRobin, ipHash, leastConn} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, v.Errorf("unknown method %q (want round_robin, ip_hash or least_conn)", s)
}

// parseUpstream reads one entry of upstreams: "host:port", or an object
// with the address and nginx's server parameters. The string means the
// defaults: weight 1, max_fails 1, fail_timeout 10 s.
func parseUpstream(v jsonpath.Value) (*upstreamServer, error) {
	u := &upstreamServer{weight: 1, maxFails: 1, failTimeout: 10 * time.Second}
	address := v
	var err error
	switch v.Kind() {
	case "string":
	case "object":
		var weight, maxFails, failTimeout jsonpath.Value
		err = v.Object(map[string]*jsonpath.Value{
			"address":      &address,
			"weight":       &weight,
			"max_fails":    &maxFails,
			"fail_timeout": &failTimeout,
		})
		if err == nil {
			err = u.parseParameters(weight, maxFails, failTimeout)
		}
		if err == nil && address.Absent() {
			err = address.Errorf("missing")
		}
	default:
		err = v.Errorf(`want a "host:port" string or an object, got %s`, v.Kind())
	}
	if err != nil {
		return nil, err
	}
	if u.name, err = address.Text(); err != nil {
		return nil, err
	}
	host, port, ok := splitUpstream(u.name)
	if !ok {
		return nil, address.Errorf("%q is not host:port", u.name)
	}
	addr, err := netaddr.ResolveIPv4(host, port)
	if err != nil {
		return nil, address.Errorf("%v", err)
	}
	u.addr = *addr
	return u, nil
}

// parseParameters reads the optional weight, max_fails and fail_timeout of
// an upstream object.
func (u *upstreamServer) parseParameters(weight, maxFails, failTimeout jsonpath.Value) error {
	var err error
	if !weight.Absent() {
		if u.weight, err = weight.Int(); err != nil {
			return err
		}
		if u.weight < 1 || u.weight > 1000 {
			return weight.Errorf("%d is not a weight (1–1000)", u.weight)
		}
	}
	if !maxFails.Absent() {
		if u.maxFails, err = maxFails.Int(); err != nil {
			return err
		}
		if u.maxFails < 0 {
			return maxFails.Errorf("%d is negative (0 turns failure accounting off)", u.maxFails)
		}
	}
	if !failTimeout.Absent() {
		if u.failTimeout, err = decodeSeconds(failTimeout); err != nil {
			return err
		}
	}
	return nil
}

// maxSeconds bounds a duration in the config: a day is more than any
// sensible one, and keeps every value far from overflowing a
// time.Duration.
const maxSeconds = 86400

// decodeSeconds returns v, a JSON number of seconds more than 0 and at
// most maxSeconds, a fraction allowed, as a duration rounded up to a whole
// millisecond. The number is taken as the exact decimal it is written as,
// so 1.1 is 1100 ms, where floating point, a hair above it, would round up
// to 1101.
func decodeSeconds(v jsonpath.Value) (time.Duration, error) {
	text, err := v.Number()
	if err != nil {
		return 0, err
	}
	bad := v.Errorf("%s is not a number of seconds (more than 0, at most %d)", text, maxSeconds)
	// The float reading bounds the exponent before the exact one, which
	// would otherwise compute 10 to the power written, however large.
	if f, err := strconv.ParseFloat(text, 64); err != nil || !(f > 0 && f <= maxSeconds) {
		return 0, bad
	}
	sec, ok := new(big.Rat).SetString(text)
	if !ok || sec.Sign() <= 0 || sec.Cmp(big.NewRat(maxSeconds, 1)) > 0 {
		return 0, bad
	}
	ms, rest := new(big.Int).QuoRem(new(big.Int).Mul(sec.Num(), big.NewInt(1000)), sec.Denom(), new(big.Int))
	if rest.Sign() > 0 {
		ms.Add(ms, big.NewInt(1))
	}
	return time.Duration(ms.Int64()) * time.Millisecond, nil
}

// splitUpstream splits "host:port" at the last colon; the port must be
// 1–65535, since port 0 cannot be connected to.
func splitUpstream(s string) (host string, port int, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || len(s)-i-1 < 1 || len(s)-i-1 > 5 {
		return "", 0, false
	}
	for _, c := range []byte(s[i+1:]) {
		if !isDigit(c) {
			return "", 0, false
		}
		port = port*10 + int(c-'0')
	}
	if port < 1 || port > 65535 {
		return "", 0, false
	}
	return s[:i], port, true
}

// parseRedirect reads the keys of a redirect route.
func (r *routeConfig) parseRedirect(status, url jsonpath.Value) error {
	if status.Absent() {
		return status.Errorf("needed by a redirect route")
	}
	var err error
	if r.httpStatusCode, err = status.Int(); err != nil {
		return err
	}
	switch r.httpStatusCode {
	case 301, 302, 303, 307, 308:
	default:
		return status.Errorf("%d is not a redirect status (301, 302, 303, 307 or 308)", r.httpStatusCode)
	}
	if url.Absent() {
		return url.Errorf("needed by a redirect route")
	}
	r.redirectURL, err = decodeHeaderValue(url)
	return err
}

// parseGzip reads the gzip keys of a file_serve route, setting the
// defaults of those that are absent.
func (r *routeConfig) parseGzip(enable, level, types, minLength jsonpath.Value) error {
	r.gzipLevel, r.gzipMinLength = defaultGzipLevel, defaultGzipMinLength
	var err error
	if !enable.Absent() {
		if r.gzipEnable, err = enable.Bool(); err != nil {
			return err
		}
	}
	if !level.Absent() {
		if r.gzipLevel, err = level.Int(); err != nil {
			return err
		}
		if r.gzipLevel < 1 || r.gzipLevel > 9 {
			return level.Errorf("%d is not a gzip level (1–9)", r.gzipLevel)
		}
	}
	items, err := types.Array()
	if err != nil {
		return err
	}
	for _, item := range items {
		t, err := item.Text()
		if err != nil {
			return err
		}
		if !isMediaType(t) {
			return item.Errorf("%q is not a media type (type/subtype)", t)
		}
		r.gzipTypes = append(r.gzipTypes, strings.ToLower(t))
	}
	if !minLength.Absent() {
		n, err := minLength.Int()
		if err != nil {
			return err
		}
		if n < 0 {
			return minLength.Errorf("%d is negative", n)
		}
		r.gzipMinLength = int64(n)
	}
	return nil
}

// isMediaType reports whether s is a bare media type as gzip_mime_types
// takes it: a type and a subtype around exactly one "/", neither empty, and
// no space, control character, ";" (a parameter would never match the bare
// Content-Type) or "," (two types in one string).
func isMediaType(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || strings.Contains(sub, "/") {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == 0x7f || c == ';' || c == ',' {
			return false
		}
	}
	return true
}

// decodeHeaderValue reads a string that will be sent verbatim as a header
// value, where a line break would split the response head.
func decodeHeaderValue(v jsonpath.Value) (string, error) {
	s, err := v.Text()
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", v.Errorf("must not be empty")
	}
	for _, c := range []byte(s) {
		if isCtl(c) && c != '\t' {
			return "", v.Errorf("%q contains a control character", s)
		}
	}
	return s, nil
}

// lookup decides how to answer req, received on the listener at host:port.
// It picks the server by listener and Host, then the route
// with the longest req_path matching the cleaned pathname, then resolves
// what the route points at. A malformed pathname gives cleanPathname's
// *httpError (400); no route or no file gives an error wrapping
// fs.ErrNotExist (404); a directory without an index file is left to the
// listing (dirPath); a directory resolving outside the route's dir_path, or
// one the server may not read, gives fs.ErrPermission (403); anything else
// is a plain error (500). When a route matched but what it points at could
// not be resolved, the result comes back beside the error, with the route
// and its access lists, so that the caller applies the lists before it
// answers the error: the course's lookup likewise returns its lookup with
// no file path.
// Mirrors xps_config_lookup.
func (c *config) lookup(req *httpRequest, host string, port int) (*lookupResult, error) {
	pathname, err := cleanPathname(req.pathname)
	if err != nil {
		return nil, err
	}
	s := c.server(listenerConfig{host: host, port: port}, requestHost(req))
	if s == nil {
		return nil, fmt.Errorf("lookup: no server listens on %s:%d", host, port)
	}
	r := s.route(pathname)
	if r == nil {
		return nil, fmt.Errorf("lookup: no route for %s: %w", pathname, fs.ErrNotExist)
	}
	res := &lookupResult{typ: r.typ, route: r, ipWhitelist: r.ipWhitelist, ipBlacklist: r.ipBlacklist}
	switch r.typ {
	case routeFileServe:
		if err := res.resolveFile(r, pathname); err != nil {
			return res, err
		}
	case routeReverseProxy:
		res.balancer = r.balancer
	case routeRedirect:
		res.httpStatusCode, res.redirectURL = r.httpStatusCode, r.redirectURL
	}
	return res, nil
}

// requestHost returns the host the client asked for, without a port: the
// authority of an absolute-form target, which RFC 9112 §3.2.2 says wins,
// else the Host header.
func requestHost(req *httpRequest) string {
	if req.host != "" {
		return req.host
	}
	h, _ := req.getHeader("Host")
	// A colon after an IPv6 literal's "]" starts the port; one inside it
	// does not.
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return h
}

// server returns the first server that lists listener l and either has no
// hostnames or one equal to host; failing that, the first server that lists
// l, as nginx falls back to its default server. nil means no server lists l.
func (c *config) server(l listenerConfig, host string) *serverConfig {
	var fallback *serverConfig
	for _, s := range c.servers {
		if !slices.Contains(s.listeners, l) {
			continue
		}
		if fallback == nil {
			fallback = s
		}
		if len(s.hostnames) == 0 || slices.ContainsFunc(s.hostnames, func(h string) bool {
			return strings.EqualFold(h, host)
		}) {
			return s
		}
	}
	return fallback
}

// route returns the route with the longest req_path matching pathname, the
// first in config order among equals, or nil.
func (s *serverConfig) route(pathname string) *routeConfig {
	var best *routeConfig
	for _, r := range s.routes {
		if routeMatches(pathname, r.reqPath) && (best == nil || len(r.reqPath) > len(best.reqPath)) {
			best = r
		}
	}
	return best
}

// routeMatches reports whether prefix matches pathname on whole segments:
// "/api" matches "/api" and "/api/x" but not "/api2"; a prefix ending in "/"
// matches everything below it.
func routeMatches(pathname, prefix string) bool {
	if !strings.HasPrefix(pathname, prefix) {
		return false
	}
	if strings.HasSuffix(prefix, "/") || len(pathname) == len(prefix) {
		return true
	}
	return pathname[len(prefix)] == '/'
}

// resolveFile finds what the file_serve route r serves for pathname, with
// nginx's root semantics: the req_path stays part of the file path. A file
// is only located here; newFile checks where it really lies when it opens
// it, which costs no more than the open. A directory is confined here,
// before its index files are looked for or its listing is made.
func (res *lookupResult) resolveFile(r *routeConfig, pathname string) error {
	p := joinRoot(r.dirPath, pathname)
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return fmt.Errorf("lookup: %s: %w", p, fileError(err))
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if strings.HasSuffix(pathname, "/") {
			// A trailing slash asks for a directory; joinRoot dropped it.
			return fmt.Errorf("lookup: %s is not a directory: %w", p, fs.ErrNotExist)
		}
		res.filePath = p
		return nil
	case unix.S_IFDIR:
	default:
		return fmt.Errorf("lookup: %s is neither a file nor a directory: %w", p, fs.ErrNotExist)
	}
	real, err := realPathIn(r.dirPath, p)
	if err != nil {
		return err
	}
	for _, name := range r.index {
		index := filepath.Join(real, name)
		if fi, err := os.Stat(index); err == nil && fi.Mode().IsRegular() {
			res.filePath = index
			return nil
		}
	}
	res.dirPath = real
	return nil
}

// realPathIn resolves the symbolic links in p and checks that the result is
// root or lies below it, so that a link cannot lead a request for a
// directory out of the route's folder.
func realPathIn(root, p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("lookup: %s: %w", p, fileError(err))
	}
	if !within(root, real) {
		return "", fmt.Errorf("lookup: %s resolves to %s, outside %s: %w", p, real, root, fs.ErrPermission)
	}
	return real, nil
}

// joinRoot is filepath.Join(root, pathname) for the clean root of a route
// and a pathname from cleanPathname, without Join's cleaning pass, which
// would find nothing to clean and cost three allocations a request: root
// and pathname are simply put together, the pathname's trailing slash
// dropped.
func joinRoot(root, pathname string) string {
	pathname = strings.TrimSuffix(pathname, "/")
	switch {
	case root == "/" && pathname == "":
		return "/"
	case root == "/":
		return pathname
	}
	return root + pathname
}
