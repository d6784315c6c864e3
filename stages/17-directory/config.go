package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"expserver-go/common/netaddr"

	"golang.org/x/sys/unix"
)

// listDirectories decides what lookup does with a directory that has no
// index file: false answers "not found" (stage 16), true hands the directory
// to the listing module (stage 17). It is the only line of this file that
// stage 17 changes.
const listDirectories = true

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

	upstreams []string // reverse_proxy: every "host:port", for later stages
	// upstreamHost and upstreamPort come from upstreams[0], split at its
	// last colon, once at load time rather than on every request, and
	// upstreamAddr is its address, resolved at load time too.
	upstreamHost string
	upstreamPort int
	upstreamAddr unix.SockaddrInet4

	httpStatusCode int // redirect
	redirectURL    string
}

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

	upstreamHost string // reverse_proxy: as the config names it, for the log
	upstreamPort int
	upstreamAddr unix.SockaddrInet4 // reverse_proxy: where to connect

	httpStatusCode int // redirect
	redirectURL    string
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
	// Checking the syntax of the whole document first lets the walk below
	// assume well-formed JSON and report only what the values mean.
	var doc json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := jsonPosition(data, se.Offset)
			return nil, fmt.Errorf("%d:%d: %s", line, col, se)
		}
		return nil, err
	}
	c, err := parseConfig(doc)
	if err != nil {
		return nil, err
	}
	c.path = path
	return c, nil
}

// jsonPosition returns the 1-based line and column of the byte a
// json.SyntaxError stopped at; Offset counts the bytes read, that one
// included. Columns count characters, as editors do.
func jsonPosition(data []byte, offset int64) (line, col int) {
	i := min(max(int(offset)-1, 0), len(data))
	before := data[:i]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[lineStart:]) + 1
}

// parseConfig builds the config from the top-level JSON value.
func parseConfig(doc json.RawMessage) (*config, error) {
	var name, workers, servers json.RawMessage
	err := decodeObject(doc, "", map[string]*json.RawMessage{
		"server_name": &name,
		"workers":     &workers, // several core/loop pairs come in a later stage
		"servers":     &servers,
	})
	if err != nil {
		return nil, err
	}
	c := &config{serverName: serverName}
	if name != nil {
		if c.serverName, err = decodeHeaderValue(name, "server_name"); err != nil {
			return nil, err
		}
	}
	if workers != nil {
		if _, err := decodeInt(workers, "workers"); err != nil {
			return nil, err
		}
	}
	items, err := decodeArray(servers, "servers")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, errorAt("servers", "at least one server is needed")
	}
	for i, item := range items {
		s, err := parseServer(item, jsonElem("servers", i))
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

// parseServer builds one server block; path is its JSON path.
func parseServer(raw json.RawMessage, path string) (*serverConfig, error) {
	var listeners, hostnames, routes json.RawMessage
	err := decodeObject(raw, path, map[string]*json.RawMessage{
		"listeners": &listeners,
		"hostnames": &hostnames,
		"routes":    &routes,
	})
	if err != nil {
		return nil, err
	}
	s := &serverConfig{}
	lpath := jsonMember(path, "listeners")
	items, err := decodeArray(listeners, lpath)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, errorAt(lpath, "at least one listener is needed")
	}
	for i, item := range items {
		l, err := parseListener(item, jsonElem(lpath, i))
		if err != nil {
			return nil, err
		}
		// Within one server a repeated address is a slip; across servers it
		// is how virtual hosts share a port.
		if j := slices.Index(s.listeners, l); j >= 0 {
			return nil, errorAt(jsonElem(lpath, i), "duplicate of listeners[%d] (%s:%d)", j, l.host, l.port)
		}
		s.listeners = append(s.listeners, l)
	}
	if s.hostnames, err = decodeStrings(hostnames, jsonMember(path, "hostnames")); err != nil {
		return nil, err
	}
	rpath := jsonMember(path, "routes")
	if items, err = decodeArray(routes, rpath); err != nil {
		return nil, err
	}
	for i, item := range items {
		r, err := parseRoute(item, jsonElem(rpath, i))
		if err != nil {
			return nil, err
		}
		s.routes = append(s.routes, r)
	}
	return s, nil
}

// parseListener builds one listener; path is its JSON path.
func parseListener(raw json.RawMessage, path string) (listenerConfig, error) {
	var host, port json.RawMessage
	err := decodeObject(raw, path, map[string]*json.RawMessage{"host": &host, "port": &port})
	if err != nil {
		return listenerConfig{}, err
	}
	var l listenerConfig
	hpath, ppath := jsonMember(path, "host"), jsonMember(path, "port")
	if host == nil {
		return l, errorAt(hpath, "missing")
	}
	if l.host, err = decodeString(host, hpath); err != nil {
		return l, err
	}
	if l.host == "" {
		return l, errorAt(hpath, "must not be empty")
	}
	if port == nil {
		return l, errorAt(ppath, "missing")
	}
	if l.port, err = decodeInt(port, ppath); err != nil {
		return l, err
	}
	// Port 0 would have the kernel pick a port that no client could know.
	if l.port < 1 || l.port > 65535 {
		return l, errorAt(ppath, "%d is not a port (1–65535)", l.port)
	}
	// A host name is looked up now, so that one that does not resolve is
	// a mistake reported with its path, before anything is bound.
	if _, err := netaddr.ResolveIPv4(l.host, l.port); err != nil {
		return l, errorAt(hpath, "%v", err)
	}
	return l, nil
}

// parseRoute builds one route; path is its JSON path. Keys that belong to
// another route type are accepted and ignored, because real configs carry
// such leftovers; keys that no route knows are errors.
func parseRoute(raw json.RawMessage, path string) (*routeConfig, error) {
	var reqPath, typ, dirPath, index, upstreams, status, url json.RawMessage
	var gzipEnable, gzipLevel, whitelist, blacklist json.RawMessage
	err := decodeObject(raw, path, map[string]*json.RawMessage{
		"req_path":         &reqPath,
		"type":             &typ,
		"dir_path":         &dirPath,
		"index":            &index,
		"upstreams":        &upstreams,
		"http_status_code": &status,
		"redirect_url":     &url,
		// Compression and access control come in later stages; until then
		// these keys are only checked for their types.
		"gzip_enable":  &gzipEnable,
		"gzip_level":   &gzipLevel,
		"ip_whitelist": &whitelist,
		"ip_blacklist": &blacklist,
	})
	if err != nil {
		return nil, err
	}
	r := &routeConfig{}
	if r.reqPath, err = parseReqPath(reqPath, jsonMember(path, "req_path")); err != nil {
		return nil, err
	}
	if r.typ, err = parseRouteType(typ, jsonMember(path, "type")); err != nil {
		return nil, err
	}
	switch r.typ {
	case routeFileServe:
		err = r.parseFileServe(dirPath, index, path)
	case routeReverseProxy:
		err = r.parseReverseProxy(upstreams, path)
	case routeRedirect:
		err = r.parseRedirect(status, url, path)
	}
	if err != nil {
		return nil, err
	}
	if gzipEnable != nil {
		if _, err := decodeBool(gzipEnable, jsonMember(path, "gzip_enable")); err != nil {
			return nil, err
		}
	}
	if gzipLevel != nil {
		lpath := jsonMember(path, "gzip_level")
		level, err := decodeInt(gzipLevel, lpath)
		if err != nil {
			return nil, err
		}
		if level < 1 || level > 9 {
			return nil, errorAt(lpath, "%d is not a gzip level (1–9)", level)
		}
	}
	if _, err := decodeStrings(whitelist, jsonMember(path, "ip_whitelist")); err != nil {
		return nil, err
	}
	if _, err := decodeStrings(blacklist, jsonMember(path, "ip_blacklist")); err != nil {
		return nil, err
	}
	return r, nil
}

// parseReqPath checks a route's req_path. Requests are matched on cleaned
// pathnames, so a req_path that cleaning would change could never match.
func parseReqPath(raw json.RawMessage, path string) (string, error) {
	if raw == nil {
		return "", errorAt(path, "missing")
	}
	p, err := decodeString(raw, path)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(p, "/") {
		return "", errorAt(path, `must start with "/"`)
	}
	clean, err := cleanPathname(p)
	if err != nil {
		return "", errorAt(path, "%q is not a clean path", p)
	}
	if clean != p {
		return "", errorAt(path, "%q is not a clean path (want %q)", p, clean)
	}
	return p, nil
}

// parseRouteType reads a route's type.
func parseRouteType(raw json.RawMessage, path string) (routeType, error) {
	if raw == nil {
		return 0, errorAt(path, "missing")
	}
	s, err := decodeString(raw, path)
	if err != nil {
		return 0, err
	}
	for _, t := range []routeType{routeFileServe, routeReverseProxy, routeRedirect} {
		if s == t.String() {
			return t, nil
		}
	}
	return 0, errorAt(path, "unknown route type %q (want file_serve, reverse_proxy or redirect)", s)
}

// parseFileServe reads the keys of a file_serve route; path is the route's
// JSON path.
func (r *routeConfig) parseFileServe(dirPath, index json.RawMessage, path string) error {
	dpath := jsonMember(path, "dir_path")
	if dirPath == nil {
		return errorAt(dpath, "needed by a file_serve route")
	}
	dir, err := decodeString(dirPath, dpath)
	if err != nil {
		return err
	}
	if r.dirPath, err = resolveDir(dir, dpath); err != nil {
		return err
	}
	ipath := jsonMember(path, "index")
	if r.index, err = decodeStrings(index, ipath); err != nil {
		return err
	}
	// An index entry is looked up inside the requested directory, so a
	// slash or a dot-segment would make it name some other place.
	for i, name := range r.index {
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			return errorAt(jsonElem(ipath, i), "%q is not a file name", name)
		}
	}
	return nil
}

// resolveDir returns the real path of the directory dir, given in the
// config at path. Resolving once here means lookups compare real paths
// without resolving the root each time.
func resolveDir(dir, path string) (string, error) {
	if dir == "" {
		return "", errorAt(path, "must not be empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", errorAt(path, "%s: %v", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if isNotFound(err) {
		return "", errorAt(path, "%s: no such directory", dir)
	}
	if err != nil {
		return "", errorAt(path, "%s: %v", dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", errorAt(path, "%s: %v", dir, err)
	}
	if !fi.IsDir() {
		return "", errorAt(path, "%s: not a directory", dir)
	}
	return real, nil
}

// parseReverseProxy reads the keys of a reverse_proxy route; path is the
// route's JSON path. Every upstream is checked, though only the first is
// used until load balancing arrives. Each name is resolved here, once, as
// nginx does: looking a name up waits for the name server, and on every
// request, inside the loop, that wait would stall every client. A name
// that does not resolve is a mistake in the config.
func (r *routeConfig) parseReverseProxy(upstreams json.RawMessage, path string) error {
	upath := jsonMember(path, "upstreams")
	var err error
	if r.upstreams, err = decodeStrings(upstreams, upath); err != nil {
		return err
	}
	if len(r.upstreams) == 0 {
		return errorAt(upath, "at least one upstream is needed")
	}
	for i, u := range r.upstreams {
		host, port, ok := splitUpstream(u)
		if !ok {
			return errorAt(jsonElem(upath, i), "%q is not host:port", u)
		}
		addr, err := netaddr.ResolveIPv4(host, port)
		if err != nil {
			return errorAt(jsonElem(upath, i), "%v", err)
		}
		if i == 0 {
			r.upstreamHost, r.upstreamPort, r.upstreamAddr = host, port, *addr
		}
	}
	return nil
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

// parseRedirect reads the keys of a redirect route; path is the route's
// JSON path.
func (r *routeConfig) parseRedirect(status, url json.RawMessage, path string) error {
	spath := jsonMember(path, "http_status_code")
	if status == nil {
		return errorAt(spath, "needed by a redirect route")
	}
	var err error
	if r.httpStatusCode, err = decodeInt(status, spath); err != nil {
		return err
	}
	switch r.httpStatusCode {
	case 301, 302, 303, 307, 308:
	default:
		return errorAt(spath, "%d is not a redirect status (301, 302, 303, 307 or 308)", r.httpStatusCode)
	}
	upath := jsonMember(path, "redirect_url")
	if url == nil {
		return errorAt(upath, "needed by a redirect route")
	}
	r.redirectURL, err = decodeHeaderValue(url, upath)
	return err
}

// decodeHeaderValue decodes a string that will be sent verbatim as a header
// value, where a line break would split the response head.
func decodeHeaderValue(raw json.RawMessage, path string) (string, error) {
	s, err := decodeString(raw, path)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", errorAt(path, "must not be empty")
	}
	for _, c := range []byte(s) {
		if isCtl(c) && c != '\t' {
			return "", errorAt(path, "%q contains a control character", s)
		}
	}
	return s, nil
}

// decodeObject checks that raw is a JSON object and stores the raw value of
// each key into fields[key]; a key fields lacks, or one given twice, is an
// error, reported in the order the keys appear. path is the object's JSON path. raw must be
// well-formed, as loadConfig checked.
func decodeObject(raw json.RawMessage, path string, fields map[string]*json.RawMessage) error {
	if jsonKind(raw) != "object" {
		return typeError(raw, path, "an object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return errorAt(path, "%v", err)
	}
	// encoding/json would keep the last of two equal keys without a word;
	// a config that says one thing twice is a slip its author should see.
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errorAt(path, "%v", err)
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return errorAt(jsonMember(path, key), "%v", err)
		}
		dst, ok := fields[key]
		if !ok {
			return errorAt(jsonMember(path, key), "unknown key")
		}
		if seen[key] {
			return errorAt(path, "duplicate key %q", key)
		}
		seen[key] = true
		*dst = val
	}
	return nil
}

// decodeArray returns the elements of the JSON array raw. An absent value
// (nil) is an empty array, since every array key is optional or needs at
// least one element anyway.
func decodeArray(raw json.RawMessage, path string) ([]json.RawMessage, error) {
	if raw == nil {
		return nil, nil
	}
	if jsonKind(raw) != "array" {
		return nil, typeError(raw, path, "an array")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errorAt(path, "%v", err)
	}
	return items, nil
}

// decodeStrings returns the JSON array of strings raw; nil is empty.
func decodeStrings(raw json.RawMessage, path string) ([]string, error) {
	items, err := decodeArray(raw, path)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	out := make([]string, len(items))
	for i, item := range items {
		if out[i], err = decodeString(item, jsonElem(path, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeString returns the JSON string raw.
func decodeString(raw json.RawMessage, path string) (string, error) {
	if jsonKind(raw) != "string" {
		return "", typeError(raw, path, "a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errorAt(path, "%v", err)
	}
	return s, nil
}

// decodeInt returns the JSON number raw, which must be an integer written
// without a fraction or exponent.
func decodeInt(raw json.RawMessage, path string) (int, error) {
	if jsonKind(raw) != "number" {
		return 0, typeError(raw, path, "a number")
	}
	n, err := strconv.Atoi(string(raw))
	if errors.Is(err, strconv.ErrRange) {
		return 0, errorAt(path, "%s is out of range", raw)
	}
	if err != nil {
		return 0, errorAt(path, "want an integer, got number %s", raw)
	}
	return n, nil
}

// decodeBool returns the JSON boolean raw.
func decodeBool(raw json.RawMessage, path string) (bool, error) {
	if jsonKind(raw) != "boolean" {
		return false, typeError(raw, path, "a boolean")
	}
	return string(raw) == "true", nil
}

// jsonKind names the kind of the well-formed JSON value raw from its first
// byte.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// typeError reports that the value at path is not the kind wanted, showing
// it as written when it is a scalar.
func typeError(raw json.RawMessage, path, want string) error {
	got := jsonKind(raw)
	switch got {
	case "string", "number", "boolean":
		got += " " + string(bytes.TrimSpace(raw))
	}
	return errorAt(path, "want %s, got %s", want, got)
}

// errorAt returns the one-line error "PATH: MESSAGE".
func errorAt(path, format string, args ...any) error {
	if path == "" {
		path = "top level"
	}
	return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
}

// jsonMember returns the JSON path of key inside the object at path. A key
// that is not a plain word is quoted, so that the path stays readable.
func jsonMember(path, key string) string {
	plain := key != ""
	for _, c := range []byte(key) {
		if !isAlpha(c) && !isDigit(c) && c != '_' {
			plain = false
		}
	}
	if !plain {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonElem returns the JSON path of element i of the array at path.
func jsonElem(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// lookup decides how to answer req, received on the listener at host:port.
// It picks the server by listener and Host, then the route
// with the longest req_path matching the cleaned pathname, then resolves
// what the route points at. A malformed pathname gives cleanPathname's
// *httpError (400); no route, no file, or a directory without an index file
// while listDirectories is off give an error wrapping fs.ErrNotExist (404);
// a directory resolving outside the route's dir_path, or one the server may not
// read, gives fs.ErrPermission (403); anything else is a plain error (500).
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
	res := &lookupResult{typ: r.typ, route: r}
	switch r.typ {
	case routeFileServe:
		if err := res.resolveFile(r, pathname); err != nil {
			return nil, err
		}
	case routeReverseProxy:
		res.upstreamHost, res.upstreamPort, res.upstreamAddr = r.upstreamHost, r.upstreamPort, r.upstreamAddr
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
	p := filepath.Join(r.dirPath, pathname)
	fi, err := os.Stat(p)
	if err != nil {
		return fileError(err)
	}
	switch {
	case fi.Mode().IsRegular() && strings.HasSuffix(pathname, "/"):
		// A trailing slash asks for a directory; filepath.Join dropped it.
		return fmt.Errorf("lookup: %s is not a directory: %w", p, fs.ErrNotExist)
	case fi.Mode().IsRegular():
		res.filePath = p
		return nil
	case !fi.IsDir():
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
	return res.noIndex(real, listDirectories)
}

// noIndex settles a directory without an index file: when list is set the
// directory is left to the listing module, otherwise it is not found. list
// is a parameter rather than a read of listDirectories so that both stages'
// behaviour can be tested.
func (res *lookupResult) noIndex(dir string, list bool) error {
	if !list {
		return fmt.Errorf("lookup: %s has no index file: %w", dir, fs.ErrNotExist)
	}
	res.dirPath = dir
	return nil
}

// realPathIn resolves the symbolic links in p and checks that the result is
// root or lies below it, so that a link cannot lead a request for a
// directory out of the route's folder.
func realPathIn(root, p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fileError(err)
	}
	if !within(root, real) {
		return "", fmt.Errorf("lookup: %s resolves to %s, outside %s: %w", p, real, root, fs.ErrPermission)
	}
	return real, nil
}

// fileError classifies a failure to find a file as nginx answers it: a
// missing file, a path through a file as if it were a folder, or a name too
// long to exist, is not found; a loop of symbolic links is refused, as is
// EACCES, which already matches fs.ErrPermission. What a client asks for
// never makes a 500.
func fileError(err error) error {
	switch {
	case isNotFound(err) && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("lookup: %w (%w)", err, fs.ErrNotExist)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("lookup: %w (%w)", err, fs.ErrPermission)
	}
	return fmt.Errorf("lookup: %w", err)
}

// isNotFound reports whether err means the path does not exist, including
// ENOTDIR ("/a.txt/b" does not exist when a.txt is a file) and ENAMETOOLONG
// (no file has a name longer than the file system allows).
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG)
}
