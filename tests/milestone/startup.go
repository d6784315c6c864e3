package milestone

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"expserver-go/tests/harness"
)

// startupMilestones are the checks of what a server settles before it
// serves: the names of its upstreams.
var startupMilestones = []Milestone{
	{ID: "upstream-name-unresolvable", Title: "an -upstream whose name does not resolve is refused at start: exit status 2, naming it",
		From: 11, To: 13, Limit: time.Minute, Run: checkUpstreamUnresolvable},
	{ID: "upstream-name-unresolvable", Title: "a config naming an upstream that does not resolve is refused at start: exit status 2, naming its JSON path",
		From: 16, To: 23, Limit: time.Minute, Run: checkUpstreamUnresolvable},
	{ID: "resolver-not-in-loop", Title: "with a name server that never answers, a proxied request stalls no other port: names are resolved at start",
		From: 16, To: 23, Run: checkResolverNotInLoop},
}

// unresolvable is a name no resolver can answer: .invalid is reserved for
// exactly that (RFC 6761).
const unresolvable = "no-such-host.invalid"

// startupTimeout bounds how long a server may take to refuse its
// configuration: resolving a name can wait for a slow name server (two
// tries of five seconds for each name a search list makes of it).
const startupTimeout = 40 * time.Second

// proxyRoutes are the routes of an instance that serves files on its first
// port and proxies to upstream on its second; the others have none.
func proxyRoutes(upstream string) [4][]map[string]any {
	return [4][]map[string]any{
		{{"req_path": "/", "type": "file_serve", "dir_path": "../public"}},
		{{"req_path": "/", "type": "reverse_proxy", "upstreams": []string{upstream}}},
	}
}

func checkUpstreamUnresolvable(e *Env) error {
	ports, err := freeInstancePorts()
	if err != nil {
		return err
	}
	in := Instance{Ports: ports}
	upstream := unresolvable + ":" + strconv.Itoa(e.Upstream.Port)
	want := []string{unresolvable}
	if e.Stage >= 16 {
		in.Config = instanceConfig(ports, proxyRoutes(upstream))
		want = append(want, "servers[1].routes[0].upstreams[0]")
	} else {
		in.Upstream = upstream
	}
	code, out, err := e.RefusedStart(in, startupTimeout)
	if err != nil {
		return err
	}
	what := "exit status 2, naming " + strings.Join(want, " and ")
	if code != 2 {
		return fail(what, "exit status %d; it printed %s", code, harness.Abbrev([]byte(strings.TrimSpace(out)), 200))
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			return fail(what, "%s", harness.Abbrev([]byte(strings.TrimSpace(out)), 200))
		}
	}
	return nil
}

// silentNameServer binds a UDP socket on port 53 of a loopback address that
// reads queries and never answers, and returns its address and a channel
// that receives a value for each query. Each check takes its own address,
// so checks running at the same time never share one.
func silentNameServer() (addr string, queries <-chan struct{}, close func(), err error) {
	for i := 1; i < 255; i++ {
		pc, err := net.ListenPacket("udp4", "127.53.53."+strconv.Itoa(i)+":53")
		if err != nil {
			continue
		}
		q := make(chan struct{}, 1)
		go func() {
			buf := make([]byte, 512)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				select {
				case q <- struct{}{}:
				default:
				}
			}
		}()
		return "127.53.53." + strconv.Itoa(i), q, func() { pc.Close() }, nil
	}
	return "", nil, nil, fmt.Errorf("no address 127.53.53.N:53 could be bound")
}

// bindOver is the shell script that bind-mounts its first three arguments
// over /etc/hosts, /etc/resolv.conf and, when the third is not empty,
// /etc/nsswitch.conf, then runs the rest of its arguments.
const bindOver = `mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf &&
{ [ -z "$3" ] || mount --bind "$3" /etc/nsswitch.conf; } && shift 3 && exec "$@"`

// checkResolverNotInLoop starts a second server in a private mount
// namespace, where /etc/resolv.conf names a name server that never answers
// and /etc/hosts gives the upstream's name. Once the server is up, the name
// is taken out of /etc/hosts: a server that resolved it at start proxies
// to the address it stored; one that resolves it per request asks the
// silent name server and, if it waits for the answer inside its event
// loop, stops serving every port until the resolver gives up.
func checkResolverNotInLoop(e *Env) error {
	if os.Geteuid() != 0 {
		return skip("needs root: the server runs in its own mount namespace with its own resolv.conf, beside a name server on port 53")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return skip("unshare (util-linux) is not installed")
	}
	if out, err := exec.Command(unshare, "-m", "--", "sh", "-c", "mount --bind /etc/hosts /etc/hosts").CombinedOutput(); err != nil {
		return skip("a private mount namespace is not available here (unshare -m: %v %s)", err, bytes.TrimSpace(out))
	}
	nsAddr, queries, closeNS, err := silentNameServer()
	if err != nil {
		return skip("%v", err)
	}
	defer closeNS()

	const name = "xps-upstream.test"
	dir, err := os.MkdirTemp(e.Layout.Root, "resolver-")
	if err != nil {
		return err
	}
	hosts, resolv, nss := filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf"), ""
	files := map[string]string{
		hosts:  "127.0.0.1 localhost\n127.0.0.1 " + name + "\n",
		resolv: "nameserver " + nsAddr + "\noptions timeout:5 attempts:2\n",
	}
	if _, err := os.Stat("/etc/nsswitch.conf"); err == nil {
		nss = filepath.Join(dir, "nsswitch.conf")
		files[nss] = "hosts: files dns\n"
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	ports, err := freeInstancePorts()
	if err != nil {
		return err
	}
	srv, err := e.StartInstance(Instance{
		Ports:  ports,
		Config: instanceConfig(ports, proxyRoutes(name+":"+strconv.Itoa(e.Upstream.Port))),
		Wrap:   []string{unshare, "-m", "--", "sh", "-c", bindOver, "sh", hosts, resolv, nss},
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	// The same file, rewritten in place, so the bind mount shows the change.
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		return err
	}
	want, err := sampleTxt(e)
	if err != nil {
		return err
	}
	proxyAddr := e.Host + ":" + strconv.Itoa(ports[1])
	proxied := make(chan error, 1)
	go func() {
		r, err := harness.Get(proxyAddr, "/sample.txt", replyTimeout)
		switch {
		case err != nil:
			proxied <- fail("the upstream's sample.txt through the proxy, from the address resolved at start", "%v", err)
		case r.Status != 200 || !bytes.Equal(r.Body, want):
			proxied <- fail("the upstream's sample.txt through the proxy, from the address resolved at start", "%d, %s", r.Status, harness.Abbrev(r.Body, 40))
		default:
			proxied <- nil
		}
	}()
	// Ask the other port while the proxied request is being handled: once
	// the name server has been asked, or once the proxied request is done.
	var result error
	asked, done := false, false
	select {
	case result = <-proxied:
		done = true
	case <-queries:
		asked = true
	case <-time.After(replyTimeout):
	}
	const patience = 2 * time.Second
	start := time.Now()
	r, err := harness.Get(e.Host+":"+strconv.Itoa(ports[0]), "/sample.txt", patience)
	if err != nil || r.Status != 200 {
		why := ""
		if asked {
			why = ": the server asked the name server for the upstream's name while proxying, and waited for it"
		}
		return fail(fmt.Sprintf("the file port to answer within %v while a request is proxied", patience),
			"no answer after %v%s", time.Since(start).Round(time.Millisecond), why)
	}
	if !done {
		result = <-proxied
	}
	return result
}
