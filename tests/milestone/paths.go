package milestone

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"expserver-go/tests/harness"
)

// pathMilestones are the checks of what a request path can make the server
// do: the status it gets for paths the file system refuses, what it writes
// to the log, and the folders it may serve from.
var pathMilestones = []Milestone{
	{ID: "no-500-for-client-paths", Title: "a 300-byte path segment gets 404, an 8,192-byte target 414, a symlink loop 403: never 500",
		From: 14, To: 23, Run: checkNo500ForClientPaths},
	{ID: "log-no-forging", Title: "a %0a, %0d or %1b in a request never starts a line of its own in the server's log",
		From: 14, To: 23, Run: checkLogNoForging},
	{ID: "private-folder", Title: "sample.txt reached through a 0700 folder is refused: the file port closes without sending it",
		From: 12, To: 13, Run: checkPrivateFolderRaw},
	{ID: "private-folder", Title: "a file inside a 0700 folder, however deep, gets 403, as does listing a folder others may not read",
		From: 14, To: 23, Run: checkPrivateFolderHTTP},
	{ID: "file-trailing-slash", Title: "GET /sample.txt/ (a file asked for as a folder) gets 404",
		From: 14, To: 23, Run: checkFileTrailingSlash},
	{ID: "listing-control-chars", Title: "a listing shows control characters in names escaped, never raw, and their links still work",
		From: 17, To: 23, Run: checkListingControlChars},
}

// withTree creates the folders and files of tree under public/, the
// folders with the modes given (files get 0644), runs fn, and removes
// what it created. Folders are created in the order given.
func withTree(e *Env, folders []folderMode, files map[string]string, fn func() error) error {
	var created []string
	defer func() {
		for i := len(created) - 1; i >= 0; i-- {
			os.Chmod(created[i], 0o755) // so that it can be emptied
		}
		for _, p := range created {
			os.RemoveAll(p)
		}
	}()
	for _, f := range folders {
		p := filepath.Join(e.Layout.Public, f.path)
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		created = append(created, p)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(e.Layout.Public, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// Modes last: a folder closed to everyone but its owner still takes
	// files when the checks do not run as root.
	for i := len(folders) - 1; i >= 0; i-- {
		if err := os.Chmod(filepath.Join(e.Layout.Public, folders[i].path), folders[i].mode); err != nil {
			return err
		}
	}
	return fn()
}

type folderMode struct {
	path string
	mode os.FileMode
}

// expectStatuses GETs each target on the first port and requires its
// status, collecting every mismatch.
func expectStatuses(e *Env, want []targetStatus) error {
	var errs []error
	for _, w := range want {
		r, raw, err := harness.RoundTrip(e.Addr(0), "GET "+w.target+" HTTP/1.1\r\nHost: "+e.Addr(0)+"\r\n\r\n", replyTimeout)
		switch {
		case err != nil:
			errs = append(errs, fail(fmt.Sprintf("%d for %s", w.status, w.what), "%v (%s)", err, harness.Abbrev(raw, 40)))
		case r.Status != w.status:
			errs = append(errs, fail(fmt.Sprintf("%d for %s", w.status, w.what), "%d %s", r.Status, r.Reason))
		}
	}
	return errors.Join(errs...)
}

type targetStatus struct {
	what, target string
	status       int
}

func checkNo500ForClientPaths(e *Env) error {
	long := strings.Repeat("a", 300)
	target := "/" + strings.Repeat("t", 8191)
	links := []struct{ name, to string }{{"loop-a", "loop-b"}, {"loop-b", "loop-a"}, {"loop-self", "loop-self"}}
	for _, l := range links {
		p := filepath.Join(e.Layout.Public, l.name)
		if err := os.Symlink(l.to, p); err != nil {
			return err
		}
		defer os.Remove(p)
	}
	return expectStatuses(e, []targetStatus{
		{"a 300-byte name (ENAMETOOLONG)", "/" + long, 404},
		{"a 300-byte name inside a folder", "/test/" + long + ".txt", 404},
		{"a 300-byte folder name on the way", "/" + long + "/sample.txt", 404},
		{"a request target of exactly 8,192 bytes", target, 414},
		{"a symbolic link loop", "/loop-a", 403},
		{"a path through a symbolic link loop", "/loop-a/sample.txt", 403},
		{"a symbolic link to itself", "/loop-self", 403},
	})
}

// checkLogNoForging sends requests whose paths carry encoded line breaks
// and terminal escapes, on paths that lead the server to log them — an
// overlong name, a symlink loop, a proxied request — and requires that no
// marker that follows such a byte in a request starts a line of the log, or
// follows a raw control character there: the log escapes them.
func checkLogNoForging(e *Env) error {
	link := filepath.Join(e.Layout.Public, "loop-log")
	if err := os.Symlink("loop-log", link); err != nil {
		return err
	}
	defer os.Remove(link)
	var markers []string
	marker := func() string {
		m := fmt.Sprintf("FORGED-%08X", e.Rand().Uint32())
		markers = append(markers, m)
		return m
	}
	pad := strings.Repeat("a", 200)
	targets := []struct {
		role   int
		target string
	}{
		{0, "/" + pad + "%0a" + marker() + "%20ERROR%20" + pad},
		{0, "/" + pad + "%0d%0a%20ERROR%20%20main%20:%20" + marker() + pad},
		{0, "/" + pad + "%1b[2K%0d" + marker() + pad},
		{0, "/%0a" + marker()},
		{0, "/loop-log/%0a" + marker()},
		{0, "/loop-log%0d" + marker()},
	}
	if e.Stage >= 16 {
		targets = append(targets, struct {
			role   int
			target string
		}{1, "/%0a" + marker() + "%0d"})
	}
	for _, t := range targets {
		if _, _, err := harness.RoundTrip(e.Addr(t.role), "GET "+t.target+" HTTP/1.1\r\nHost: "+e.Addr(t.role)+"\r\n\r\n", replyTimeout); err != nil {
			return fail("a response to GET "+harness.Abbrev([]byte(t.target), 40), "%v", err)
		}
	}
	log := e.Server.Log()
	for _, m := range markers {
		for at := strings.Index(log, m); at >= 0; {
			if at == 0 || log[at-1] < 0x20 || log[at-1] == 0x7f {
				return fail("control characters from a request escaped in the log, never a line the request wrote",
					"the log reads …%s…", strconv.Quote(log[max(0, at-30):min(len(log), at+len(m)+30)]))
			}
			next := strings.Index(log[at+len(m):], m)
			if next < 0 {
				break
			}
			at += len(m) + next
		}
	}
	return nil
}

// checkPrivateFolderRaw replaces sample.txt with a link to a copy inside a
// folder only its owner may enter (0700). The server runs as its owner, or
// as root, and so could open it; its own rule — every folder on the way
// lets others in, the file lets others read — must refuse it, as the
// kernel would refuse a server running as nobody.
func checkPrivateFolderRaw(e *Env) error {
	sample, err := sampleTxt(e)
	if err != nil {
		return err
	}
	path := filepath.Join(e.Layout.Public, "sample.txt")
	saved := path + ".saved"
	if err := os.Rename(path, saved); err != nil {
		return err
	}
	defer os.Rename(saved, path)
	return withTree(e, []folderMode{{"private", 0o700}}, map[string]string{"private/sample.txt": string(sample)}, func() error {
		if err := os.Symlink("private/sample.txt", path); err != nil {
			return err
		}
		defer os.Remove(path)
		c, err := harness.Dial(e.Addr(1))
		if err != nil {
			return err
		}
		defer c.Close()
		return expectSilentClose(c, "a close without data: sample.txt now lies in a folder others may not enter")
	})
}

func checkPrivateFolderHTTP(e *Env) error {
	folders := []folderMode{
		{"private", 0o700}, {"private/open", 0o755},
		{"outer", 0o755}, {"outer/inner", 0o700},
		{"unlisted", 0o711},
	}
	files := map[string]string{
		"private/secret.txt":      "private\n",
		"private/open/secret.txt": "private\n",
		"outer/inner/secret.txt":  "private\n",
		"unlisted/public.txt":     "public\n",
	}
	return withTree(e, folders, files, func() error {
		want := []targetStatus{
			{"a file in a 0700 folder", "/private/secret.txt", 403},
			{"a file in an open folder inside a 0700 one", "/private/open/secret.txt", 403},
			{"a file in a 0700 folder inside an open one", "/outer/inner/secret.txt", 403},
			{"a file in a folder others may enter but not read (0711)", "/unlisted/public.txt", 200},
		}
		if e.Stage >= 17 {
			want = append(want,
				targetStatus{"the listing of a 0700 folder", "/private/", 403},
				targetStatus{"the listing of an open folder inside a 0700 one", "/private/open/", 403},
				targetStatus{"the listing of a folder others may enter but not read (0711)", "/unlisted/", 403})
		}
		return expectStatuses(e, want)
	})
}

func checkFileTrailingSlash(e *Env) error {
	return expectStatuses(e, []targetStatus{{"a file asked for as a folder", "/sample.txt/", 404}})
}

// checkListingControlChars lists a folder holding a file whose name has a
// bell, an escape sequence and a line break in it.
func checkListingControlChars(e *Env) error {
	const name = "bell\a esc\x1b[31m nl\nend.txt"
	content := "a name with control characters\n"
	return withTree(e, []folderMode{{"ctl", 0o755}}, map[string]string{"ctl/" + name: content}, func() error {
		r, err := get(e, "/ctl/")
		if err != nil {
			return err
		}
		if r.Status != 200 {
			return fail("200 for the listing of /ctl/", "%d", r.Status)
		}
		for i, b := range r.Body {
			if b < 0x20 && b != '\n' && b != '\r' && b != '\t' || b == 0x7f || b == '\n' && bytes.HasPrefix(r.Body[i+1:], []byte("end.txt")) {
				start := max(0, i-30)
				return fail("the name's control characters escaped in the page", "%s", harness.Abbrev(r.Body[start:min(len(r.Body), i+30)], 80))
			}
		}
		links, err := listingLinks(e, "/ctl/")
		if err != nil {
			return err
		}
		for _, l := range links {
			if !strings.HasSuffix(l, "end.txt") {
				continue
			}
			if r, err := get(e, l); err != nil || r.Status != 200 || string(r.Body) != content {
				return fail("the link "+l+" to serve the file", "%v", describeResponse(r, err))
			}
			return nil
		}
		return fail("a link to the file", "none among %q", links)
	})
}

// describeResponse says what came back for a failure message.
func describeResponse(r *harness.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d %s", r.Status, harness.Abbrev(r.Body, 40))
}
