package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"expserver-go/common/jsonpath"
	"expserver-go/common/netaddr"

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
	var reqPath, typ, dirPath, index, upstreams, status, url jsonpath.Value
	var gzipEnable, gzipLevel, whitelist, blacklist jsonpath.Value
	err := v.Object(map[string]*jsonpath.Value{
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
		err = r.parseReverseProxy(upstreams)
	case routeRedirect:
		err = r.parseRedirect(status, url)
	}
	if err != nil {
		return nil, err
	}
	if !gzipEnable.Absent() {
		if _, err := gzipEnable.Bool(); err != nil {
			return nil, err
		}
	}
	if !gzipLevel.Absent() {
		level, err := gzipLevel.Int()
		if err != nil {
			return nil, err
		}
		if level < 1 || level > 9 {
			return nil, gzipLevel.Errorf("%d is not a gzip level (1–9)", level)
		}
	}
	if _, err := whitelist.Strings(); err != nil {
		return nil, err
	}
	if _, err := blacklist.Strings(); err != nil {
		return nil, err
	}
	return r, nil
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

// parseReverseProxy reads the keys of a reverse_proxy route. Every upstream
// is checked, though only the first is used until load balancing arrives.
// Each name is resolved here, once, as nginx does: looking a name up waits
// for the name server, and on every request, inside the loop, that wait
// would stall every client. A name that does not resolve is a mistake in
// the config.
func (r *routeConfig) parseReverseProxy(upstreams jsonpath.Value) error {
	items, err := upstreams.Array()
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return upstreams.Errorf("at least one upstream is needed")
	}
	for i, item := range items {
		u, err := item.Text()
		if err != nil {
			return err
		}
		host, port, ok := splitUpstream(u)
		if !ok {
			return item.Errorf("%q is not host:port", u)
		}
		addr, err := netaddr.ResolveIPv4(host, port)
		if err != nil {
			return item.Errorf("%v", err)
		}
		r.upstreams = append(r.upstreams, u)
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
// *httpError (400); no route, no file, or a directory without an index file
// give an error wrapping fs.ErrNotExist (404); a directory resolving outside
// the route's dir_path, or one the server may not read, gives
// fs.ErrPermission (403); anything else is a plain error (500).
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
// before its index files are looked for.
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
	return fmt.Errorf("lookup: %s has no index file: %w", real, fs.ErrNotExist)
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
