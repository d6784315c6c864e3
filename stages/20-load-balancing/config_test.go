package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"expserver-go/common/jsonpath"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// courseConfig is the configuration the course's tester uses for stages 16
// and 17, stored as public/xps_config.json.
const courseConfig = `{
  "server_name": "eXpServer",
  "workers": 4,
  "servers": [
    {
      "listeners": [{ "host": "0.0.0.0", "port": 8001 }],
      "routes": [
        {
          "req_path": "/",
          "type": "file_serve",
          "dir_path": "../public",
          "index": ["index.html"],
          "gzip_enable": true,
          "gzip_level": 8
        },
        {
          "req_path": "/redirect",
          "type": "redirect",
          "http_status_code": 302,
          "redirect_url": "http://localhost:8002/"
        }
      ]
    },
    {
      "listeners": [{ "host": "0.0.0.0", "port": 8002 }],
      "routes": [
        { "req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:3000"] }
      ]
    },
    {
      "listeners": [{ "host": "0.0.0.0", "port": 8003 }],
      "routes": [
        {
          "req_path": "/",
          "type": "redirect",
          "http_status_code": 302,
          "redirect_url": "https://expserver.github.io"
        }
      ]
    },
    {
      "listeners": [{ "host": "0.0.0.0", "port": 8004 }]
    }
  ]
}
`

// writeFile creates the file dir/name holding data and returns its path.
func writeFile(t testing.TB, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// courseLayout builds the tester's layout in a temp dir — app/ as the
// working directory, public/ beside it with the config inside — and
// returns the config path and the real path of public/.
func courseLayout(t *testing.T) (cfgPath, public string) {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath = writeFile(t, root, "public/xps_config.json", courseConfig)
	writeFile(t, root, "public/cat.jpg", "jpeg")
	writeFile(t, root, "public/test/cat.jpg", "jpeg")
	t.Chdir(filepath.Join(root, "app"))
	public, err := filepath.EvalSymlinks(filepath.Join(root, "public"))
	if err != nil {
		t.Fatal(err)
	}
	return cfgPath, public
}

// localhost3000 is the course's upstream, localhost:3000, resolved.
var localhost3000 = unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 3000}

// upstreamDefaults is the upstream name at addr as the string form of an
// upstreams entry configures it.
func upstreamDefaults(name string, addr unix.SockaddrInet4) *upstreamServer {
	return &upstreamServer{name: name, addr: addr, weight: 1, maxFails: 1, failTimeout: 10 * time.Second}
}

func TestLoadCourseConfig(t *testing.T) {
	cfgPath, public := courseLayout(t)
	c, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	l := func(port int) []listenerConfig { return []listenerConfig{{host: "0.0.0.0", port: port}} }
	want := &config{
		path:       cfgPath,
		serverName: "eXpServer",
		servers: []*serverConfig{
			{listeners: l(8001), routes: []*routeConfig{
				{reqPath: "/", typ: routeFileServe, dirPath: public, index: []string{"index.html"},
					gzipEnable: true, gzipLevel: 8, gzipMinLength: defaultGzipMinLength},
				{reqPath: "/redirect", typ: routeRedirect, httpStatusCode: 302, redirectURL: "http://localhost:8002/"},
			}},
			{listeners: l(8002), routes: []*routeConfig{
				{reqPath: "/", typ: routeReverseProxy, balancer: &balancer{method: roundRobin,
					upstreams: []*upstreamServer{upstreamDefaults("localhost:3000", localhost3000)}, total: 1}},
			}},
			{listeners: l(8003), routes: []*routeConfig{
				{reqPath: "/", typ: routeRedirect, httpStatusCode: 302, redirectURL: "https://expserver.github.io"},
			}},
			{listeners: l(8004)},
		},
		listeners: []listenerConfig{
			{"0.0.0.0", 8001}, {"0.0.0.0", 8002}, {"0.0.0.0", 8003}, {"0.0.0.0", 8004},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("loadConfig:\n got %s\nwant %s", dumpConfig(c), dumpConfig(want))
	}

	// The docs' variant writes the folder with a trailing slash.
	docs := strings.Replace(courseConfig, `"../public"`, `"../public/"`, 1)
	c, err = loadConfig(writeFile(t, t.TempDir(), "docs.json", docs))
	if err != nil {
		t.Fatalf("loadConfig(docs variant): %v", err)
	}
	if got := c.servers[0].routes[0].dirPath; got != public {
		t.Errorf("dir_path \"../public/\" resolved to %q, want %q", got, public)
	}
}

// TestCourseConfigLookup walks the tester's requests through lookup.
func TestCourseConfigLookup(t *testing.T) {
	cfgPath, public := courseLayout(t)
	c, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		port   int
		target string
		want   lookupResult
	}{
		{8001, "/cat.jpg", lookupResult{typ: routeFileServe, filePath: public + "/cat.jpg"}},
		{8001, "//cat.jpg", lookupResult{typ: routeFileServe, filePath: public + "/cat.jpg"}},
		{8001, "/test/cat.jpg", lookupResult{typ: routeFileServe, filePath: public + "/test/cat.jpg"}},
		{8001, "/xps_config.json", lookupResult{typ: routeFileServe, filePath: public + "/xps_config.json"}},
		{8001, "/redirect", lookupResult{typ: routeRedirect, httpStatusCode: 302, redirectURL: "http://localhost:8002/"}},
		{8001, "/redirect/x?y=1", lookupResult{typ: routeRedirect, httpStatusCode: 302, redirectURL: "http://localhost:8002/"}},
		{8002, "/cat.jpg", lookupResult{typ: routeReverseProxy, balancer: c.servers[1].routes[0].balancer}},
		{8003, "/anything", lookupResult{typ: routeRedirect, httpStatusCode: 302, redirectURL: "https://expserver.github.io"}},
	}
	for _, tc := range cases {
		got, err := c.lookup(configRequest(t, tc.target, "localhost"), "0.0.0.0", tc.port)
		if err != nil {
			t.Errorf(":%d%s: %v", tc.port, tc.target, err)
			continue
		}
		got.route = nil
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf(":%d%s = %+v, want %+v", tc.port, tc.target, *got, tc.want)
		}
	}
	for _, tc := range []struct {
		port   int
		target string
	}{{8001, "/missing.txt"}, {8001, "/cat.jpg/"}, {8004, "/"}, {8004, "/cat.jpg"}} {
		if _, err := c.lookup(configRequest(t, tc.target, "localhost"), "0.0.0.0", tc.port); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf(":%d%s: error %v, want fs.ErrNotExist", tc.port, tc.target, err)
		}
	}
	// The public folder has no index.html, as in the tester.
	for _, tc := range []struct{ target, dir string }{{"/", public}, {"//", public}, {"/test", public + "/test"}} {
		res, err := c.lookup(configRequest(t, tc.target, "localhost"), "0.0.0.0", 8001)
		checkNoIndex(t, tc.target, res, err, tc.dir)
	}
}

// checkNoIndex checks lookup's answer for the directory dir, which has no
// index file: the directory, for its listing.
func checkNoIndex(t *testing.T, target string, res *lookupResult, err error, dir string) {
	t.Helper()
	if err != nil || res.typ != routeFileServe || res.dirPath != dir || res.filePath != "" {
		t.Errorf("lookup(%s) = %+v, %v; want dirPath %s", target, res, err, dir)
	}
}

// dumpConfig renders c with its pointers followed, for failure messages.
func dumpConfig(c *config) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "{path:%s serverName:%s listeners:%v servers:[", c.path, c.serverName, c.listeners)
	for _, s := range c.servers {
		fmt.Fprintf(&sb, "{listeners:%v hostnames:%q routes:[", s.listeners, s.hostnames)
		for _, r := range s.routes {
			fmt.Fprintf(&sb, "%+v ", *r)
			if r.balancer != nil {
				fmt.Fprintf(&sb, "balancer %+v ", *r.balancer)
				for _, u := range r.balancer.upstreams {
					fmt.Fprintf(&sb, "%+v ", *u)
				}
			}
		}
		sb.WriteString("]} ")
	}
	sb.WriteString("]}")
	return sb.String()
}

func TestLoadConfigUniqueListeners(t *testing.T) {
	doc := `{"servers": [
	  {"listeners": [{"host": "0.0.0.0", "port": 8001}, {"host": "127.0.0.1", "port": 8001}], "hostnames": ["a.test"]},
	  {"listeners": [{"host": "0.0.0.0", "port": 8002}, {"host": "0.0.0.0", "port": 8001}], "hostnames": ["b.test"]},
	  {"listeners": [{"host": "127.0.0.1", "port": 8001}]}
	]}`
	c, err := loadConfig(writeFile(t, t.TempDir(), "c.json", doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []listenerConfig{{"0.0.0.0", 8001}, {"127.0.0.1", 8001}, {"0.0.0.0", 8002}}
	if !reflect.DeepEqual(c.listeners, want) {
		t.Errorf("listeners = %v, want %v", c.listeners, want)
	}
}

// TestLoadConfigErrors checks the exact message of every validation error.
// Working directory: app/, with public/ (holding file.txt) beside it.
func TestLoadConfigErrors(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "public/file.txt", "x")
	if err := os.Mkdir(filepath.Join(root, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "app"))

	const l8001 = `"listeners": [{"host": "0.0.0.0", "port": 8001}]`
	// route wraps one route into a config with one server.
	route := func(r string) string { return `{"servers": [{` + l8001 + `, "routes": [` + r + `]}]}` }
	// listener wraps one listener into a config with one server.
	listener := func(l string) string { return `{"servers": [{"listeners": [` + l + `]}]}` }
	const fileServe = `"req_path": "/", "type": "file_serve", "dir_path": "../public"`
	const redirect = `"req_path": "/", "type": "redirect", "http_status_code": 302, "redirect_url": "http://x/"`

	cases := []struct {
		name, doc, want string
	}{
		// Syntax.
		{"syntax", `{"servers": [}`, `1:14: invalid character '}' looking for beginning of value`},
		{"syntax line", "{\n  \"servers\": [\n    {\"listeners\" []}\n  ]\n}", `3:18: invalid character '[' after object key`},
		{"syntax column counts characters", "{\"ü\": x}", `1:7: invalid character 'x' looking for beginning of value`},
		{"syntax end", "{\"servers\": [\n", `1:14: unexpected end of JSON input`},
		{"empty file", "", `1:1: unexpected end of JSON input`},
		{"trailing data", "{} {}", `1:4: invalid character '{' after top-level value`},

		// Top level.
		{"top level not an object", `[]`, `top level: want an object, got array`},
		{"unknown top-level key", `{"servers": [], "servr": 1}`, `servr: unknown key`},
		{"unknown key quoted", `{"dir pth": 1}`, `"dir pth": unknown key`},
		{"server_name type", `{"server_name": 1}`, `server_name: want a string, got number 1`},
		{"server_name empty", `{"server_name": ""}`, `server_name: must not be empty`},
		{"server_name line break", `{"server_name": "a\r\nX-Evil: 1"}`, `server_name: "a\r\nX-Evil: 1" contains a control character`},
		{"workers type", `{"workers": "4"}`, `workers: want a number, got string "4"`},
		{"workers fraction", `{"workers": 4.5}`, `workers: want an integer, got number 4.5`},
		{"servers missing", `{"server_name": "x"}`, `servers: at least one server is needed`},
		{"servers empty", `{"servers": []}`, `servers: at least one server is needed`},
		{"servers null", `{"servers": null}`, `servers: want an array, got null`},
		{"servers type", `{"servers": {}}`, `servers: want an array, got object`},
		{"server type", `{"servers": [true]}`, `servers[0]: want an object, got boolean true`},
		{"unknown server key", `{"servers": [{` + l8001 + `, "root": "/"}]}`, `servers[0].root: unknown key`},

		// Listeners.
		{"listeners missing", `{"servers": [{}]}`, `servers[0].listeners: at least one listener is needed`},
		{"listeners empty", `{"servers": [{"listeners": []}]}`, `servers[0].listeners: at least one listener is needed`},
		{"listener type", listener(`"0.0.0.0:8001"`), `servers[0].listeners[0]: want an object, got string "0.0.0.0:8001"`},
		{"host missing", listener(`{"port": 8001}`), `servers[0].listeners[0].host: missing`},
		{"host empty", listener(`{"host": "", "port": 8001}`), `servers[0].listeners[0].host: must not be empty`},
		{"port missing", listener(`{"host": "0.0.0.0"}`), `servers[0].listeners[0].port: missing`},
		{"port string", listener(`{"host": "0.0.0.0", "port": "8001"}`), `servers[0].listeners[0].port: want a number, got string "8001"`},
		{"port too large", listener(`{"host": "0.0.0.0", "port": 70000}`), `servers[0].listeners[0].port: 70000 is not a port (1–65535)`},
		{"port negative", listener(`{"host": "0.0.0.0", "port": -1}`), `servers[0].listeners[0].port: -1 is not a port (1–65535)`},
		{"port 0", listener(`{"host": "0.0.0.0", "port": 0}`), `servers[0].listeners[0].port: 0 is not a port (1–65535)`},
		{"host unresolvable", listener(`{"host": "no-such-host!", "port": 8001}`),
			`servers[0].listeners[0].host: cannot resolve "no-such-host!": lookup no-such-host!: no such host`},
		{"duplicate key", listener(`{"host": "0.0.0.0", "port": 8001, "host": "127.0.0.1"}`), `servers[0].listeners[0]: duplicate key "host"`},
		{"duplicate route key", route(`{` + redirect + `, "type": "file_serve"}`), `servers[0].routes[0]: duplicate key "type"`},
		{"duplicate top-level key", `{"servers": [], "servers": []}`, `top level: duplicate key "servers"`},
		{"port fraction", listener(`{"host": "0.0.0.0", "port": 8001.5}`), `servers[0].listeners[0].port: want an integer, got number 8001.5`},
		{"port exponent", listener(`{"host": "0.0.0.0", "port": 8e3}`), `servers[0].listeners[0].port: want an integer, got number 8e3`},
		{"port huge", listener(`{"host": "0.0.0.0", "port": 99999999999999999999}`), `servers[0].listeners[0].port: 99999999999999999999 is out of range`},
		{"unknown listener key", listener(`{"host": "0.0.0.0", "port": 8001, "ssl": true}`), `servers[0].listeners[0].ssl: unknown key`},
		{"duplicate listener", listener(`{"host": "0.0.0.0", "port": 8001}, {"host": "0.0.0.0", "port": 8002}, {"host": "0.0.0.0", "port": 8001}`),
			`servers[0].listeners[2]: duplicate of listeners[0] (0.0.0.0:8001)`},

		// Hostnames.
		{"hostnames type", `{"servers": [{` + l8001 + `, "hostnames": "a.test"}]}`, `servers[0].hostnames: want an array, got string "a.test"`},
		{"hostname type", `{"servers": [{` + l8001 + `, "hostnames": ["a.test", 7]}]}`, `servers[0].hostnames[1]: want a string, got number 7`},

		// Routes in general.
		{"routes type", `{"servers": [{` + l8001 + `, "routes": {}}]}`, `servers[0].routes: want an array, got object`},
		{"route type", route(`"/"`), `servers[0].routes[0]: want an object, got string "/"`},
		{"unknown route key", route(`{` + fileServe + `, "dir_pth": "x"}`), `servers[0].routes[0].dir_pth: unknown key`},
		{"req_path missing", route(`{"type": "file_serve", "dir_path": "../public"}`), `servers[0].routes[0].req_path: missing`},
		{"req_path relative", `{"servers": [{` + l8001 + `, "routes": [{` + fileServe + `}, {"req_path": "api", "type": "file_serve", "dir_path": "../public"}]}]}`,
			`servers[0].routes[1].req_path: must start with "/"`},
		{"req_path not clean", route(`{"req_path": "/a//b/../c", "type": "redirect"}`), `servers[0].routes[0].req_path: "/a//b/../c" is not a clean path (want "/a/c")`},
		{"req_path bad escape", route(`{"req_path": "/%zz", "type": "redirect"}`), `servers[0].routes[0].req_path: "/%zz" is not a clean path`},
		{"type missing", route(`{"req_path": "/"}`), `servers[0].routes[0].type: missing`},
		{"type not a string", route(`{"req_path": "/", "type": 1}`), `servers[0].routes[0].type: want a string, got number 1`},
		{"unknown type", `{"servers": [{` + l8001 + `}, {` + l8001 + `, "routes": [{"req_path": "/", "type": "fileserve"}]}]}`,
			`servers[1].routes[0].type: unknown route type "fileserve" (want file_serve, reverse_proxy or redirect)`},

		// file_serve.
		{"dir_path missing", route(`{"req_path": "/", "type": "file_serve"}`), `servers[0].routes[0].dir_path: needed by a file_serve route`},
		{"dir_path type", route(`{"req_path": "/", "type": "file_serve", "dir_path": ["../public"]}`), `servers[0].routes[0].dir_path: want a string, got array`},
		{"dir_path empty", route(`{"req_path": "/", "type": "file_serve", "dir_path": ""}`), `servers[0].routes[0].dir_path: must not be empty`},
		{"dir_path missing folder", route(`{"req_path": "/", "type": "file_serve", "dir_path": "../pub"}`), `servers[0].routes[0].dir_path: ../pub: no such directory`},
		{"dir_path through a file", route(`{"req_path": "/", "type": "file_serve", "dir_path": "../public/file.txt/x"}`),
			`servers[0].routes[0].dir_path: ../public/file.txt/x: no such directory`},
		{"dir_path a file", route(`{"req_path": "/", "type": "file_serve", "dir_path": "../public/file.txt"}`),
			`servers[0].routes[0].dir_path: ../public/file.txt: not a directory`},
		{"index type", route(`{` + fileServe + `, "index": "index.html"}`), `servers[0].routes[0].index: want an array, got string "index.html"`},
		{"index entry type", route(`{` + fileServe + `, "index": [null]}`), `servers[0].routes[0].index[0]: want a string, got null`},
		{"index entry path", route(`{` + fileServe + `, "index": ["index.html", "../index.html"]}`), `servers[0].routes[0].index[1]: "../index.html" is not a file name`},
		{"index entry empty", route(`{` + fileServe + `, "index": [""]}`), `servers[0].routes[0].index[0]: "" is not a file name`},

		// reverse_proxy.
		{"upstreams missing", `{"servers": [{` + l8001 + `}, {` + l8001 + `, "routes": [{"req_path": "/", "type": "reverse_proxy"}]}]}`,
			`servers[1].routes[0].upstreams: at least one upstream is needed`},
		{"upstreams empty", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": []}`), `servers[0].routes[0].upstreams: at least one upstream is needed`},
		{"upstreams type", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": "localhost:3000"}`),
			`servers[0].routes[0].upstreams: want an array, got string "localhost:3000"`},
		{"upstream no port", `{"servers": [{` + l8001 + `}, {` + l8001 + `, "routes": [{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost"]}]}]}`,
			`servers[1].routes[0].upstreams[0]: "localhost" is not host:port`},
		{"upstream no host", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [":3000"]}`), `servers[0].routes[0].upstreams[0]: ":3000" is not host:port`},
		{"upstream port 0", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:0"]}`), `servers[0].routes[0].upstreams[0]: "localhost:0" is not host:port`},
		{"upstream port range", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:65536"]}`),
			`servers[0].routes[0].upstreams[0]: "localhost:65536" is not host:port`},
		{"upstream port sign", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:+80"]}`),
			`servers[0].routes[0].upstreams[0]: "localhost:+80" is not host:port`},
		{"second upstream", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:3000", "localhost:"]}`),
			`servers[0].routes[0].upstreams[1]: "localhost:" is not host:port`},
		{"upstream unresolvable", `{"servers": [{` + l8001 + `}, {` + l8001 + `, "routes": [{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:3000", "no-such-host!:80"]}]}]}`,
			`servers[1].routes[0].upstreams[1]: cannot resolve "no-such-host!": lookup no-such-host!: no such host`},
		{"upstream IPv6", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["[::1]:8080"]}`),
			`servers[0].routes[0].upstreams[0]: cannot resolve "[::1]": lookup [::1]: no such host`},

		// Load balancing.
		{"load_balancing unknown", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:3000"], "load_balancing": "random"}`),
			`servers[0].routes[0].load_balancing: unknown method "random" (want round_robin, ip_hash or least_conn)`},
		{"load_balancing type", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:3000"], "load_balancing": 1}`),
			`servers[0].routes[0].load_balancing: want a string, got number 1`},
		{"upstream entry type", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:3000", 5]}`),
			`servers[0].routes[0].upstreams[1]: want a "host:port" string or an object, got number`},
		{"upstream address missing", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"weight": 2}]}`),
			`servers[0].routes[0].upstreams[0].address: missing`},
		{"upstream address bad", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "x"}]}`),
			`servers[0].routes[0].upstreams[0].address: "x" is not host:port`},
		{"upstream address type", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": 3000}]}`),
			`servers[0].routes[0].upstreams[0].address: want a string, got number 3000`},
		{"upstream unknown field", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "backup": true}]}`),
			`servers[0].routes[0].upstreams[0].backup: unknown key`},
		{"weight 0", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "weight": 0}]}`),
			`servers[0].routes[0].upstreams[0].weight: 0 is not a weight (1–1000)`},
		{"weight 1001", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "weight": 1001}]}`),
			`servers[0].routes[0].upstreams[0].weight: 1001 is not a weight (1–1000)`},
		{"weight fraction", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "weight": 1.5}]}`),
			`servers[0].routes[0].upstreams[0].weight: want an integer, got number 1.5`},
		{"max_fails negative", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "max_fails": -1}]}`),
			`servers[0].routes[0].upstreams[0].max_fails: -1 is negative (0 turns failure accounting off)`},
		{"fail_timeout 0", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "fail_timeout": 0}]}`),
			`servers[0].routes[0].upstreams[0].fail_timeout: 0 is not a number of seconds (more than 0, at most 86400)`},
		{"fail_timeout huge", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "fail_timeout": 1e300}]}`),
			`servers[0].routes[0].upstreams[0].fail_timeout: 1e300 is not a number of seconds (more than 0, at most 86400)`},
		{"fail_timeout huge exponent", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "fail_timeout": 1e999999999}]}`),
			`servers[0].routes[0].upstreams[0].fail_timeout: 1e999999999 is not a number of seconds (more than 0, at most 86400)`},
		{"fail_timeout string", route(`{"req_path": "/", "type": "reverse_proxy", "upstreams": [{"address": "localhost:3000", "fail_timeout": "10s"}]}`),
			`servers[0].routes[0].upstreams[0].fail_timeout: want a number, got string "10s"`},

		// redirect.
		{"status missing", route(`{"req_path": "/", "type": "redirect", "redirect_url": "http://x/"}`), `servers[0].routes[0].http_status_code: needed by a redirect route`},
		{"status type", route(`{"req_path": "/", "type": "redirect", "http_status_code": "302", "redirect_url": "http://x/"}`),
			`servers[0].routes[0].http_status_code: want a number, got string "302"`},
		{"status not a redirect", `{"servers": [{` + l8001 + `}, {` + l8001 + `}, {` + l8001 + `, "routes": [{"req_path": "/", "type": "redirect", "http_status_code": 200, "redirect_url": "http://x/"}]}]}`,
			`servers[2].routes[0].http_status_code: 200 is not a redirect status (301, 302, 303, 307 or 308)`},
		{"redirect_url missing", route(`{"req_path": "/", "type": "redirect", "http_status_code": 301}`), `servers[0].routes[0].redirect_url: needed by a redirect route`},
		{"redirect_url empty", route(`{"req_path": "/", "type": "redirect", "http_status_code": 301, "redirect_url": ""}`), `servers[0].routes[0].redirect_url: must not be empty`},
		{"redirect_url line break", route(`{"req_path": "/", "type": "redirect", "http_status_code": 301, "redirect_url": "http://x/\n"}`),
			`servers[0].routes[0].redirect_url: "http://x/\n" contains a control character`},

		// gzip, on file_serve routes.
		{"gzip_enable type", route(`{` + fileServe + `, "gzip_enable": "yes"}`), `servers[0].routes[0].gzip_enable: want a boolean, got string "yes"`},
		{"gzip_level type", route(`{` + fileServe + `, "gzip_level": true}`), `servers[0].routes[0].gzip_level: want a number, got boolean true`},
		{"gzip_level range", route(`{` + fileServe + `, "gzip_level": 12}`), `servers[0].routes[0].gzip_level: 12 is not a gzip level (1–9)`},
		{"gzip_level zero", route(`{` + fileServe + `, "gzip_level": 0}`), `servers[0].routes[0].gzip_level: 0 is not a gzip level (1–9)`},
		{"gzip_level zlib default", route(`{` + fileServe + `, "gzip_level": -1}`), `servers[0].routes[0].gzip_level: -1 is not a gzip level (1–9)`},
		{"gzip_mime_types type", route(`{` + fileServe + `, "gzip_mime_types": "text/x-c"}`),
			`servers[0].routes[0].gzip_mime_types: want an array, got string "text/x-c"`},
		{"gzip_mime_types entry type", route(`{` + fileServe + `, "gzip_mime_types": ["text/x-c", 1]}`),
			`servers[0].routes[0].gzip_mime_types[1]: want a string, got number 1`},
		{"gzip_mime_types no slash", route(`{` + fileServe + `, "gzip_mime_types": ["text"]}`),
			`servers[0].routes[0].gzip_mime_types[0]: "text" is not a media type (type/subtype)`},
		{"gzip_mime_types two slashes", route(`{` + fileServe + `, "gzip_mime_types": ["text/x/c"]}`),
			`servers[0].routes[0].gzip_mime_types[0]: "text/x/c" is not a media type (type/subtype)`},
		{"gzip_mime_types empty subtype", route(`{` + fileServe + `, "gzip_mime_types": ["text/"]}`),
			`servers[0].routes[0].gzip_mime_types[0]: "text/" is not a media type (type/subtype)`},
		{"gzip_mime_types empty type", route(`{` + fileServe + `, "gzip_mime_types": ["/plain"]}`),
			`servers[0].routes[0].gzip_mime_types[0]: "/plain" is not a media type (type/subtype)`},
		{"gzip_mime_types parameter", route(`{` + fileServe + `, "gzip_mime_types": ["text/x-c;charset=utf-8"]}`),
			`servers[0].routes[0].gzip_mime_types[0]: "text/x-c;charset=utf-8" is not a media type (type/subtype)`},
		{"gzip_mime_types list in one", route(`{` + fileServe + `, "gzip_mime_types": ["text/x-c,text/csv"]}`),
			`servers[0].routes[0].gzip_mime_types[0]: "text/x-c,text/csv" is not a media type (type/subtype)`},
		{"gzip_mime_types space", route(`{` + fileServe + `, "gzip_mime_types": ["text/x-c "]}`),
			`servers[0].routes[0].gzip_mime_types[0]: "text/x-c " is not a media type (type/subtype)`},
		{"gzip_mime_types tab", route(`{` + fileServe + `, "gzip_mime_types": ["text/x\tc"]}`),
			`servers[0].routes[0].gzip_mime_types[0]: "text/x\tc" is not a media type (type/subtype)`},
		{"gzip_min_length type", route(`{` + fileServe + `, "gzip_min_length": "20"}`),
			`servers[0].routes[0].gzip_min_length: want a number, got string "20"`},
		{"gzip_min_length negative", route(`{` + fileServe + `, "gzip_min_length": -1}`), `servers[0].routes[0].gzip_min_length: -1 is negative`},
		{"gzip_min_length fraction", route(`{` + fileServe + `, "gzip_min_length": 1.5}`),
			`servers[0].routes[0].gzip_min_length: want an integer, got number 1.5`},

		// The access lists are type-checked.
		{"ip_whitelist type", route(`{` + redirect + `, "ip_whitelist": "10.0.0.1"}`), `servers[0].routes[0].ip_whitelist: want an array, got string "10.0.0.1"`},
		{"ip_blacklist entry type", route(`{` + redirect + `, "ip_blacklist": ["10.0.0.1", {}]}`), `servers[0].routes[0].ip_blacklist[1]: want a string, got object`},

		// Access lists: only the strict forms of addresses and prefixes.
		{"ip shorthand", route(`{` + fileServe + `, "ip_whitelist": ["127.0.0.1", "127.1"]}`),
			`servers[0].routes[0].ip_whitelist[1]: "127.1" is not an IP address or CIDR prefix`},
		{"ip leading zero", route(`{` + fileServe + `, "ip_blacklist": ["127.0.0.01"]}`),
			`servers[0].routes[0].ip_blacklist[0]: "127.0.0.01" is not an IP address or CIDR prefix`},
		{"ip octal", route(`{` + fileServe + `, "ip_blacklist": ["0177.0.0.1"]}`),
			`servers[0].routes[0].ip_blacklist[0]: "0177.0.0.1" is not an IP address or CIDR prefix`},
		{"ip hex", route(`{` + fileServe + `, "ip_blacklist": ["0x7f.0.0.1"]}`),
			`servers[0].routes[0].ip_blacklist[0]: "0x7f.0.0.1" is not an IP address or CIDR prefix`},
		{"ip octet range", route(`{` + fileServe + `, "ip_blacklist": ["300.1.1.1"]}`),
			`servers[0].routes[0].ip_blacklist[0]: "300.1.1.1" is not an IP address or CIDR prefix`},
		{"ip prefix too long", route(`{` + redirect + `, "ip_whitelist": ["1.2.3.4/33"]}`),
			`servers[0].routes[0].ip_whitelist[0]: "1.2.3.4/33" is not an IP address or CIDR prefix`},
		{"ip prefix leading zero", route(`{` + redirect + `, "ip_whitelist": ["10.0.0.0/08"]}`),
			`servers[0].routes[0].ip_whitelist[0]: "10.0.0.0/08" is not an IP address or CIDR prefix`},
		{"ip prefix without length", route(`{` + redirect + `, "ip_whitelist": ["10.0.0.0/"]}`),
			`servers[0].routes[0].ip_whitelist[0]: "10.0.0.0/" is not an IP address or CIDR prefix`},
		{"ip empty", route(`{` + redirect + `, "ip_whitelist": [""]}`), `servers[0].routes[0].ip_whitelist[0]: "" is not an IP address or CIDR prefix`},
		{"ip host name", route(`{` + redirect + `, "ip_whitelist": ["localhost"]}`),
			`servers[0].routes[0].ip_whitelist[0]: "localhost" is not an IP address or CIDR prefix`},
		{"ip all", route(`{` + redirect + `, "ip_blacklist": ["all"]}`), `servers[0].routes[0].ip_blacklist[0]: "all" is not an IP address or CIDR prefix`},
		{"ip spaces", route(`{` + redirect + `, "ip_blacklist": [" 10.0.0.1"]}`),
			`servers[0].routes[0].ip_blacklist[0]: " 10.0.0.1" is not an IP address or CIDR prefix`},
		{"ip number", route(`{` + redirect + `, "ip_blacklist": ["10.0.0.1", 5]}`), `servers[0].routes[0].ip_blacklist[1]: want a string, got number 5`},
		{"ip zone", route(`{` + redirect + `, "ip_blacklist": ["fe80::1%eth0"]}`),
			`servers[0].routes[0].ip_blacklist[0]: "fe80::1%eth0" has a zone, which no client address has`},
		{"ip mapped prefix too short", route(`{` + redirect + `, "ip_blacklist": ["::ffff:127.0.0.0/80"]}`),
			`servers[0].routes[0].ip_blacklist[0]: "::ffff:127.0.0.0/80" is IPv4-mapped but shorter than /96`},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeFile(t, dir, "c.json", tc.doc))
			if err == nil {
				t.Fatalf("loadConfig(%s) succeeded, want %q", tc.doc, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("loadConfig(%s)\n got %s\nwant %s", tc.doc, err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// TestLoadConfigLenient checks what is accepted: keys with no effect yet,
// and keys that belong to another route type, which are not looked at.
func TestLoadConfigLenient(t *testing.T) {
	t.Chdir(t.TempDir())
	doc := `{"workers": 4, "servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
	  {"req_path": "/", "type": "redirect", "http_status_code": 308, "redirect_url": "https://x/",
	   "dir_path": "/no/such/folder", "index": 3, "upstreams": "nope", "ip_whitelist": [], "ip_blacklist": ["1.2.3.4"],
	   "gzip_level": 0, "gzip_mime_types": "text"},
	  {"req_path": "/p/", "type": "reverse_proxy", "upstreams": ["10.0.0.1:80", "localhost:8080"], "http_status_code": 200,
	   "gzip_enable": true, "gzip_level": 12, "gzip_min_length": -5}
	]}]}`
	c, err := loadConfig(writeFile(t, t.TempDir(), "c.json", doc))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if c.serverName != serverName {
		t.Errorf("serverName = %q, want %q", c.serverName, serverName)
	}
	r := c.servers[0].routes[0]
	if r.dirPath != "" || r.index != nil || r.balancer != nil {
		t.Errorf("redirect route kept another type's keys: %+v", *r)
	}
	p := c.servers[0].routes[1]
	if p.balancer == nil || len(p.balancer.upstreams) != 2 || p.balancer.upstreams[0].addr.Addr != [4]byte{10, 0, 0, 1} ||
		p.balancer.upstreams[0].addr.Port != 80 || p.httpStatusCode != 0 || p.gzipEnable {
		t.Errorf("reverse_proxy route = %+v", *p)
	}
}

// TestLoadConfigGzip checks the gzip keys of file_serve routes: their
// defaults, and the values given, media types in lower case.
func TestLoadConfigGzip(t *testing.T) {
	dir := t.TempDir()
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
	  {"req_path": "/", "type": "file_serve", "dir_path": "` + dir + `"},
	  {"req_path": "/z", "type": "file_serve", "dir_path": "` + dir + `", "gzip_enable": true, "gzip_level": 9,
	   "gzip_mime_types": ["Text/X-C", "application/wasm"], "gzip_min_length": 0}
	]}]}`
	c, err := loadConfig(writeFile(t, t.TempDir(), "c.json", doc))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	type gzipKeys struct {
		Enable    bool
		Level     int
		Types     []string
		MinLength int64
	}
	var got []gzipKeys
	for _, r := range c.servers[0].routes {
		got = append(got, gzipKeys{r.gzipEnable, r.gzipLevel, r.gzipTypes, r.gzipMinLength})
	}
	want := []gzipKeys{{false, 6, nil, 20}, {true, 9, []string{"text/x-c", "application/wasm"}, 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gzip keys (-want +got):\n%s", diff)
	}
}

// TestLoadUpstreamObjects checks both forms of an upstreams entry, the
// defaults of the string form and of absent fields, and fail_timeout read
// as an exact decimal rounded up to a whole millisecond.
func TestLoadUpstreamObjects(t *testing.T) {
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
	  {"req_path": "/", "type": "reverse_proxy", "load_balancing": "least_conn", "upstreams": [
	    "localhost:3000",
	    {"address": "127.0.0.2:3001", "weight": 5, "max_fails": 0, "fail_timeout": 0.0004},
	    {"address": "localhost:3002", "fail_timeout": 1.1}]},
	  {"req_path": "/h", "type": "reverse_proxy", "load_balancing": "ip_hash", "upstreams": ["localhost:3000"]}
	]}]}`
	c, err := loadConfig(writeFile(t, t.TempDir(), "c.json", doc))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	second := upstreamDefaults("127.0.0.2:3001", unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 2}, Port: 3001})
	second.weight, second.maxFails, second.failTimeout = 5, 0, time.Millisecond // rounded up to a whole ms
	third := upstreamDefaults("localhost:3002", unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 3002})
	third.failTimeout = 1100 * time.Millisecond // not 1101: 1.1 is read as written
	want := &balancer{method: leastConn, upstreams: []*upstreamServer{upstreamDefaults("localhost:3000", localhost3000), second, third}, total: 7}
	if got := c.servers[0].routes[0].balancer; !reflect.DeepEqual(got, want) {
		t.Errorf("balancer = %+v %+v, want %+v %+v", *got, got.upstreams, *want, want.upstreams)
	}
	if got := c.servers[0].routes[1].balancer.method; got != ipHash {
		t.Errorf("load_balancing ip_hash read as %v", got)
	}
}

// TestIPEntries checks what each accepted form of an access-list entry
// stands for.
func TestIPEntries(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{"127.0.0.1", "127.0.0.1/32"},
		{"0.0.0.0", "0.0.0.0/32"}, // one address, not "any"
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"192.168.1.7/24", "192.168.1.0/24"}, // host bits cleared, with a warning
		{"::ffff:127.0.0.2", "127.0.0.2/32"},
		{"::ffff:7f00:2", "127.0.0.2/32"},
		{"::ffff:127.0.1.0/120", "127.0.1.0/24"},
		{"::ffff:127.0.1.9/120", "127.0.1.0/24"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"::1", "::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::/0", "::/0"},
	} {
		p, err := parseIPEntry(tc.entry, jsonpath.Value{})
		if err != nil || p.String() != tc.want {
			t.Errorf("parseIPEntry(%q) = %v, %v; want %s", tc.entry, p, err, tc.want)
		}
	}
}

func TestIPListContains(t *testing.T) {
	list := func(entries ...string) ipList {
		var l ipList
		for _, e := range entries {
			p, err := parseIPEntry(e, jsonpath.Value{})
			if err != nil {
				t.Fatal(err)
			}
			l = append(l, p)
		}
		return l
	}
	cases := []struct {
		list ipList
		ip   string
		want bool
	}{
		{list("127.0.1.0/24"), "127.0.1.0", true},
		{list("127.0.1.0/24"), "127.0.1.255", true},
		{list("127.0.1.0/24"), "127.0.0.255", false},
		{list("127.0.1.0/24"), "127.0.2.0", false},
		{list("127.0.0.0/8"), "127.255.255.254", true},
		{list("127.0.0.2/32"), "127.0.0.2", true},
		{list("127.0.0.2/32"), "127.0.0.3", false},
		{list("0.0.0.0/0"), "203.0.113.9", true},
		{list("0.0.0.0"), "127.0.0.1", false},
		{list("0.0.0.0"), "0.0.0.0", true},
		{list("::ffff:127.0.0.2"), "127.0.0.2", true},
		{list("::ffff:127.0.1.0/120"), "127.0.1.9", true},
		{list("::/0", "::1", "2001:db8::/32"), "127.0.0.1", false}, // IPv6 entries match no IPv4 client
		{list("::/0"), "2001:db8::1", true},
		{list("10.0.0.0/8", "127.0.0.1"), "127.0.0.1", true},
		{nil, "127.0.0.1", false},
		{list("0.0.0.0/0"), "", false}, // a client without an address is in no list
	}
	for _, tc := range cases {
		var ip netip.Addr
		if tc.ip != "" {
			ip = netip.MustParseAddr(tc.ip)
		}
		if got := tc.list.contains(ip); got != tc.want {
			t.Errorf("%v contains %s = %v, want %v", tc.list, tc.ip, got, tc.want)
		}
	}
}

// TestIPListContainsAllocates checks that matching, which every request to a
// route with a list pays for, allocates nothing.
func TestIPListContainsAllocates(t *testing.T) {
	var l ipList
	for _, e := range []string{"10.0.0.0/8", "192.168.0.0/16", "::1", "127.0.0.2", "172.16.0.0/12"} {
		p, err := parseIPEntry(e, jsonpath.Value{})
		if err != nil {
			t.Fatal(err)
		}
		l = append(l, p)
	}
	ip := netip.MustParseAddr("127.0.0.1")
	if n := testing.AllocsPerRun(1000, func() { l.contains(ip) }); n != 0 {
		t.Errorf("contains allocates %v times per call, want 0", n)
	}
}

// TestLookupCopiesLists checks that the lookup carries the chosen route's
// lists, even beside a "not found": the session applies them before it
// answers that.
func TestLookupCopiesLists(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "x.txt", "x")
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
	  {"req_path": "/", "type": "file_serve", "dir_path": "` + root + `", "ip_whitelist": ["10.0.0.0/8", "127.0.0.1"], "ip_blacklist": ["10.1.2.0/24"]},
	  {"req_path": "/open", "type": "redirect", "http_status_code": 302, "redirect_url": "http://x/", "ip_whitelist": []}
	]}]}`
	c, err := loadConfig(writeFile(t, t.TempDir(), "c.json", doc))
	if err != nil {
		t.Fatal(err)
	}
	white := ipList{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	black := ipList{netip.MustParsePrefix("10.1.2.0/24")}
	for _, target := range []string{"/x.txt", "/missing.txt", "/x.txt/"} {
		res, err := c.lookup(configRequest(t, target, "x"), "0.0.0.0", 8001)
		if res == nil || !reflect.DeepEqual(res.ipWhitelist, white) || !reflect.DeepEqual(res.ipBlacklist, black) {
			t.Errorf("lookup(%s) = %+v, %v; want the lists %v and %v", target, res, err, white, black)
		}
		if target != "/x.txt" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lookup(%s): %v, want fs.ErrNotExist beside the result", target, err)
		}
	}
	res, err := c.lookup(configRequest(t, "/open", "x"), "0.0.0.0", 8001)
	if err != nil || res.ipWhitelist != nil || res.ipBlacklist != nil {
		t.Errorf("lookup(/open) = %+v, %v; want no lists", res, err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := loadConfig(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loadConfig(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestRouteTypeString(t *testing.T) {
	for typ, want := range map[routeType]string{
		routeFileServe: "file_serve", routeReverseProxy: "reverse_proxy", routeRedirect: "redirect", 0: "routeType(0)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("routeType(%d).String() = %q, want %q", int(typ), got, want)
		}
	}
}

func TestRouteMatches(t *testing.T) {
	cases := []struct {
		pathname, prefix string
		want             bool
	}{
		{"/api", "/api", true},
		{"/api/", "/api", true},
		{"/api/x", "/api", true},
		{"/api2", "/api", false},
		{"/ap", "/api", false},
		{"/", "/api", false},
		{"/anything", "/", true},
		{"/", "/", true},
		{"/api/x", "/api/", true},
		{"/api/", "/api/", true},
		{"/api", "/api/", false},
		{"/api2", "/api/", false},
		{"/a/b/c", "/a/b", true},
		{"/a/bc", "/a/b", false},
	}
	for _, tc := range cases {
		if got := routeMatches(tc.pathname, tc.prefix); got != tc.want {
			t.Errorf("routeMatches(%q, %q) = %v, want %v", tc.pathname, tc.prefix, got, tc.want)
		}
	}
}

func TestServerRoute(t *testing.T) {
	s := &serverConfig{routes: []*routeConfig{
		{reqPath: "/"},
		{reqPath: "/api"},
		{reqPath: "/api/v1/"},
		{reqPath: "/docs", httpStatusCode: 1},
		{reqPath: "/docs", httpStatusCode: 2},
		{reqPath: "/static/"},
	}}
	cases := []struct {
		pathname string
		want     int // index into s.routes
	}{
		{"/", 0},
		{"/ap", 0},
		{"/api2", 0},
		{"/api", 1},
		{"/api/x", 1},
		{"/api/v1", 1},
		{"/api/v1/", 2},
		{"/api/v1/users", 2},
		{"/docs/a", 3}, // equal req_paths: the first in config order
		{"/static", 0},
		{"/static/", 5},
	}
	for _, tc := range cases {
		if got := s.route(tc.pathname); got != s.routes[tc.want] {
			t.Errorf("route(%q) = %+v, want routes[%d]", tc.pathname, got, tc.want)
		}
	}
	if got := (&serverConfig{routes: []*routeConfig{{reqPath: "/api"}}}).route("/other"); got != nil {
		t.Errorf("route with no match = %+v, want nil", got)
	}
}

// configRequest parses a GET for target carrying Host host; an empty host
// makes it an HTTP/1.0 request without one.
func configRequest(tb testing.TB, target, host string) *httpRequest {
	tb.Helper()
	head := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	if host == "" {
		head = "GET " + target + " HTTP/1.0\r\n\r\n"
	}
	var p requestParser
	if res, err := p.parse([]byte(head)); err != nil || res != parseDone {
		tb.Fatalf("parse(%q) = %d, %v", head, res, err)
	}
	r, err := newHTTPRequest([]byte(head), &p)
	if err != nil {
		tb.Fatalf("newHTTPRequest(%q): %v", head, err)
	}
	return r
}

// lookupTree builds a web root with neighbours it must not reach into:
//
//	public/a.txt, public/sub/index.htm, public/noindex/x.txt,
//	public/fileindex/index.html/ (a folder named like an index),
//	public/in.txt -> a.txt, public/out.txt -> ../secret.txt,
//	public/outdir -> ../secretdir, public/sibling -> ../public2/b.txt,
//	public/evil/index.html -> ../../secret.txt, public/fifo,
//	etc/passwd, x, secret.txt, secretdir/s.txt, public2/b.txt
//
// and a config serving it from "/" with index ["index.html", "index.htm"].
// It returns the config and the real path of public/.
func lookupTree(t *testing.T) (*config, string) {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{"public/a.txt", "public/sub/index.htm", "public/noindex/x.txt",
		"public/evil/.keep", "etc/passwd", "x", "secret.txt", "secretdir/s.txt", "public2/b.txt"} {
		writeFile(t, root, f, f)
	}
	if err := os.MkdirAll(filepath.Join(root, "public/fileindex/index.html"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"public/in.txt":           "a.txt",
		"public/out.txt":          "../secret.txt",
		"public/outdir":           "../secretdir",
		"public/sibling":          "../public2/b.txt",
		"public/evil/index.html":  "../../secret.txt",
		"public/fileindex/x.link": "../a.txt",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "public/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	public, err := filepath.EvalSymlinks(filepath.Join(root, "public"))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := json.Marshal(public)
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [
	  {"req_path": "/", "type": "file_serve", "dir_path": ` + string(dir) + `, "index": ["index.html", "index.htm"]},
	  {"req_path": "/files/", "type": "file_serve", "dir_path": ` + string(dir) + `}
	]}]}`
	c, err := loadConfig(writeFile(t, root, "c.json", doc))
	if err != nil {
		t.Fatal(err)
	}
	return c, public
}

func TestLookupFileServe(t *testing.T) {
	c, public := lookupTree(t)
	found := []struct{ target, file string }{
		{"/a.txt", "a.txt"},
		{"/a.txt?download=1", "a.txt"},
		{"/%61.txt", "a.txt"},
		{"//a.txt", "a.txt"},
		{"/sub/../a.txt", "a.txt"},
		{"/in.txt", "a.txt"}, // a link that stays inside
		{"/sub", "sub/index.htm"},
		{"/sub/", "sub/index.htm"},
		{"/fileindex/x.link", "a.txt"},
		{"/files/a.txt", "files/a.txt"}, // nginx root: the req_path stays in the path
	}
	writeFile(t, public, "files/a.txt", "files")
	for _, tc := range found {
		res, err := c.lookup(configRequest(t, tc.target, "x"), "0.0.0.0", 8001)
		if err != nil {
			t.Errorf("lookup(%s): %v", tc.target, err)
			continue
		}
		// lookup locates the file; where it really is, links resolved, is
		// what newFile checks.
		real, _ := filepath.EvalSymlinks(res.filePath)
		if want := filepath.Join(public, tc.file); res.typ != routeFileServe || real != want || res.dirPath != "" {
			t.Errorf("lookup(%s) = %+v, want the file %s", tc.target, *res, want)
		}
	}

	missing := []string{
		"/missing.txt",
		"/a.txt/x",       // through a file
		"/a.txt/",        // a file asked for as a directory
		"/fifo",          // neither a file nor a directory
		"/../etc/passwd", // cleaned to /etc/passwd inside the root
		"/%2e%2e/x",
		"/..%2f..%2fx",
	}
	for _, target := range missing {
		res, err := c.lookup(configRequest(t, target, "x"), "0.0.0.0", 8001)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lookup(%s) = %+v, %v; want fs.ErrNotExist", target, res, err)
		}
	}

	for _, tc := range []struct{ target, dir string }{
		{"/noindex", "noindex"},
		{"/noindex/", "noindex"},
		{"/fileindex/", "fileindex"}, // the only "index.html" is a folder
		{"/files/", "files"},         // a route without index names
	} {
		res, err := c.lookup(configRequest(t, tc.target, "x"), "0.0.0.0", 8001)
		checkNoIndex(t, tc.target, res, err, filepath.Join(public, tc.dir))
	}

	// What leaves the route's folder is refused: a directory by lookup, a
	// file by newFile when it opens it and sees where it really is.
	forbidden := []string{
		"/out.txt",        // a link to a file outside
		"/outdir/s.txt",   // through a link to a folder outside
		"/outdir",         // the link itself
		"/sibling",        // public2 only shares a prefix with public
		"/evil/",          // an index file linking outside
		"/%6Futdir/s.txt", // the same, percent-encoded
	}
	for _, target := range forbidden {
		res, err := c.lookup(configRequest(t, target, "x"), "0.0.0.0", 8001)
		if err == nil && res.filePath != "" {
			var f *file
			if f, err = newFile(testCore(), res.filePath, res.route.dirPath); f != nil {
				f.close()
			}
		}
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("lookup(%s) then newFile: %v; want fs.ErrPermission", target, err)
		}
	}
}

func TestLookupUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every folder")
	}
	c, public := lookupTree(t)
	locked := filepath.Join(public, "noindex")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	if _, err := c.lookup(configRequest(t, "/noindex/x.txt", "x"), "0.0.0.0", 8001); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("lookup in an unreadable folder: %v, want fs.ErrPermission", err)
	}
}

func TestLookupBadPathname(t *testing.T) {
	c, _ := lookupTree(t)
	_, err := c.lookup(configRequest(t, "/%zz", "x"), "0.0.0.0", 8001)
	var he *httpError
	if !errors.As(err, &he) || he.status != 400 {
		t.Errorf("lookup(/%%zz) = %v, want an *httpError with status 400", err)
	}
}

func TestLookupServerSelection(t *testing.T) {
	t.Chdir(t.TempDir())
	doc := `{"servers": [
	  {"listeners": [{"host": "0.0.0.0", "port": 8001}], "hostnames": ["example.com", "www.example.com"],
	   "routes": [{"req_path": "/", "type": "redirect", "http_status_code": 301, "redirect_url": "A"}]},
	  {"listeners": [{"host": "0.0.0.0", "port": 8002}, {"host": "0.0.0.0", "port": 8001}], "hostnames": ["Other.Test"],
	   "routes": [{"req_path": "/", "type": "redirect", "http_status_code": 302, "redirect_url": "B"}]},
	  {"listeners": [{"host": "0.0.0.0", "port": 8001}],
	   "routes": [{"req_path": "/", "type": "redirect", "http_status_code": 303, "redirect_url": "C"}]},
	  {"listeners": [{"host": "127.0.0.1", "port": 8001}],
	   "routes": [{"req_path": "/", "type": "redirect", "http_status_code": 307, "redirect_url": "D"}]},
	  {"listeners": [{"host": "0.0.0.0", "port": 8003}], "hostnames": ["only.test"],
	   "routes": [{"req_path": "/", "type": "redirect", "http_status_code": 308, "redirect_url": "E"}]},
	  {"listeners": [{"host": "0.0.0.0", "port": 8004}]}
	]}`
	c, err := loadConfig(writeFile(t, t.TempDir(), "c.json", doc))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		target, host string
		lhost        string
		lport        int
		want         string
	}{
		{"/", "example.com", "0.0.0.0", 8001, "A"},
		{"/", "example.com:8001", "0.0.0.0", 8001, "A"},
		{"/", "WWW.EXAMPLE.COM", "0.0.0.0", 8001, "A"},
		{"/", "other.test:8001", "0.0.0.0", 8001, "B"},
		{"/", "other.test", "0.0.0.0", 8002, "B"},
		{"/", "example.com", "0.0.0.0", 8002, "B"},                  // the only server on 8002
		{"/", "unknown.test", "0.0.0.0", 8001, "C"},                 // no hostnames: any Host
		{"/", "", "0.0.0.0", 8001, "C"},                             // HTTP/1.0 without Host
		{"/", "[::1]:8001", "0.0.0.0", 8001, "C"},                   // an IPv6 literal with a port
		{"/", "example.com", "127.0.0.1", 8001, "D"},                // 127.0.0.1 is another listener
		{"/", "unknown.test", "0.0.0.0", 8003, "E"},                 // default server
		{"http://other.test/", "example.com", "0.0.0.0", 8001, "B"}, // the target's authority wins
	}
	for _, tc := range cases {
		res, err := c.lookup(configRequest(t, tc.target, tc.host), tc.lhost, tc.lport)
		if err != nil {
			t.Errorf("lookup(%s, Host %q, %s:%d): %v", tc.target, tc.host, tc.lhost, tc.lport, err)
			continue
		}
		if res.typ != routeRedirect || res.redirectURL != tc.want || res.httpStatusCode != res.route.httpStatusCode {
			t.Errorf("lookup(%s, Host %q, %s:%d) = %+v, want server %s", tc.target, tc.host, tc.lhost, tc.lport, *res, tc.want)
		}
	}

	if _, err := c.lookup(configRequest(t, "/", "x"), "0.0.0.0", 8004); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lookup on a server without routes: %v, want fs.ErrNotExist", err)
	}
	_, err = c.lookup(configRequest(t, "/", "x"), "0.0.0.0", 9999)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		t.Errorf("lookup on a listener no server has: %v, want a plain error", err)
	}
}

// BenchmarkLookup measures lookup over a server with 20 routes, for a
// redirect (no file system work) and for a file.
func BenchmarkLookup(b *testing.B) {
	root := b.TempDir()
	writeFile(b, root, "static/css/site.css", "body {}")
	dir, _ := json.Marshal(root)
	routes := make([]string, 0, 20)
	for i := range 18 {
		routes = append(routes, fmt.Sprintf(`{"req_path": "/api%d", "type": "redirect", "http_status_code": 302, "redirect_url": "http://x/%d"}`, i, i))
	}
	routes = append(routes,
		`{"req_path": "/static/", "type": "file_serve", "dir_path": `+string(dir)+`}`,
		`{"req_path": "/", "type": "reverse_proxy", "upstreams": ["localhost:3000"]}`)
	doc := `{"servers": [{"listeners": [{"host": "0.0.0.0", "port": 8001}], "routes": [` + strings.Join(routes, ",") + `]}]}`
	c, err := loadConfig(writeFile(b, root, "c.json", doc))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, target string }{
		{"redirect", "/api17/users/42"},
		{"file", "/static/css/site.css"},
	} {
		req := configRequest(b, bc.target, "localhost:8001")
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.lookup(req, "0.0.0.0", 8001); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestJoinRoot checks that joinRoot is filepath.Join for every root a
// config can hold (clean, absolute, "/" included) and every pathname
// cleanPathname can return.
func TestJoinRoot(t *testing.T) {
	for _, root := range []string{"/", "/srv", "/srv/www"} {
		for _, pathname := range []string{"/", "/a", "/a/", "/a/b.txt", "/a/b/", "/...", "/.hidden"} {
			if got, want := joinRoot(root, pathname), filepath.Join(root, pathname); got != want {
				t.Errorf("joinRoot(%q, %q) = %q, want %q", root, pathname, got, want)
			}
		}
	}
}
