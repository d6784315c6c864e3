package milestone

import (
	"bytes"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"expserver-go/tests/harness"
)

// listingMilestones are the checks of directory browsing (stage 17).
var listingMilestones = []Milestone{
	{ID: "listing-headers", Title: "GET // (a path, not an authority): 200 with Content-Type exactly text/html",
		From: 17, To: 23, Grader: true, Run: checkListingHeaders},
	{ID: "listing-links", Title: "the listing of / links /cat.jpg, /sample.pdf, /sample.txt, /xps_config.json and /test",
		From: 17, To: 23, Grader: true, Run: checkListingLinks},
	{ID: "double-slash-file", Title: "GET //sample.pdf: 200, application/pdf",
		From: 17, To: 23, Grader: true, Run: fileType("//sample.pdf", "application/pdf")},
	{ID: "directory-walk", Title: "following every expected link from / reaches listings and files of the right types",
		From: 17, To: 23, Grader: true, Run: checkDirectoryWalk},
	{ID: "listing-escapes-names", Title: "names with &, <, spaces and # are escaped in the text and percent-encoded in links that work",
		From: 17, To: 23, Run: checkListingEscapes},
	{ID: "browser-listing", Title: "a real browser opens the listing, follows a folder link and then a file link",
		From: 17, To: 23, Browser: true, Run: checkBrowserListing},
}

// walkTree is the structure the course's grader expects at the root of its
// stage 17 folder: a link for each entry, and for /test its own links.
var walkTree = map[string]any{
	"/cat.jpg":         "image/jpeg",
	"/sample.pdf":      "application/pdf",
	"/sample.txt":      "text/plain",
	"/xps_config.json": "application/json",
	"/test": map[string]any{
		"/test/cat.jpg":    "image/jpeg",
		"/test/sample.pdf": "application/pdf",
		"/test/sample.txt": "text/plain",
	},
}

var tableLink = regexp.MustCompile(`<a\s[^>]*href="([^"]*)"`)

// listingLinks fetches path and returns the hrefs of the links inside its
// table (where the grader looks: "table tr td a"), HTML-unescaped.
func listingLinks(e *Env, path string) ([]string, error) {
	r, err := getTyped(e, path, "text/html")
	if err != nil {
		return nil, err
	}
	body := string(r.Body)
	start, end := strings.Index(body, "<table"), strings.LastIndex(body, "</table>")
	if start < 0 || end < start {
		return nil, fail("a <table> of entries in the listing of "+path, "%s", harness.Abbrev(r.Body, 80))
	}
	var links []string
	for _, m := range tableLink.FindAllStringSubmatch(body[start:end], -1) {
		links = append(links, html.UnescapeString(m[1]))
	}
	return links, nil
}

func checkListingHeaders(e *Env) error {
	r, err := fetch(e, "//")
	if err != nil {
		return err
	}
	return expectStatus(r, 200, "text/html")
}

func expectLinks(e *Env, path string, want []string) error {
	links, err := listingLinks(e, path)
	if err != nil {
		return err
	}
	var missing []string
	for _, w := range want {
		if !slices.Contains(links, w) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return fail("links "+strings.Join(want, ", ")+" in the listing of "+path, "%s missing among %q", strings.Join(missing, ", "), links)
	}
	return nil
}

func checkListingLinks(e *Env) error {
	return expectLinks(e, "/", []string{"/cat.jpg", "/sample.pdf", "/sample.txt", "/xps_config.json", "/test"})
}

func checkDirectoryWalk(e *Env) error {
	return walk(e, "/", walkTree)
}

func walk(e *Env, path string, node any) error {
	switch n := node.(type) {
	case string:
		if _, err := getTyped(e, path, n); err != nil {
			return err
		}
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if err := expectLinks(e, path, keys); err != nil {
			return err
		}
		for _, k := range keys {
			if err := walk(e, k, n[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkListingEscapes(e *Env) error {
	dir := filepath.Join(e.Layout.Public, "odd names")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	names := []string{"a&b<c>.txt", "with space.txt", "hash#tag.txt"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n+"\n"), 0o644); err != nil {
			return err
		}
	}
	r, err := get(e, "/odd%20names/")
	if err != nil {
		return err
	}
	if r.Status != 200 {
		return fail("200 for the listing of /odd names/", "%d", r.Status)
	}
	if !bytes.Contains(r.Body, []byte("a&amp;b&lt;c&gt;.txt")) || bytes.Contains(r.Body, []byte("a&b<c>")) {
		return fail("the name a&b<c>.txt HTML-escaped in the page", "%s", harness.Abbrev(r.Body, 200))
	}
	links, err := listingLinks(e, "/odd%20names/")
	if err != nil {
		return err
	}
	for _, n := range names {
		var href string
		for _, l := range links {
			if strings.HasPrefix(l, "/odd%20names/") && strings.HasSuffix(l, ".txt") && strings.Contains(l, n[:1]) {
				if r, err := get(e, l); err == nil && string(r.Body) == n+"\n" {
					href = l
				}
			}
		}
		if href == "" {
			return fail("a link that serves "+n, "none among %q", links)
		}
		if strings.ContainsAny(href, " #<>") {
			return fail("the link to "+n+" percent-encoded", "%q", href)
		}
	}
	return nil
}

func checkBrowserListing(e *Env) error {
	want, err := os.ReadFile(filepath.Join(e.Layout.Public, "test", "sample.txt"))
	if err != nil {
		return err
	}
	base := "http://" + e.Addr(0)
	return withBrowser(func(b *harness.Browser) error {
		if err := b.Navigate(base + "/"); err != nil {
			return fail("the browser to load the listing of /", "%v", err)
		}
		if err := b.Click(`table a[href="/test"]`); err != nil {
			return fail("a link to /test the browser can follow", "%v", err)
		}
		var page struct {
			Path  string
			Links []string
		}
		if err := b.Eval(`({Path: location.pathname, Links: [...document.querySelectorAll("table tr td a")].map(a => a.getAttribute("href"))})`, &page); err != nil {
			return err
		}
		if page.Path != "/test" || !slices.Contains(page.Links, "/test/sample.txt") {
			return fail("the listing of /test with a link to /test/sample.txt", "page %s with links %q", page.Path, page.Links)
		}
		if err := b.Click(`a[href="/test/sample.txt"]`); err != nil {
			return fail("a link to /test/sample.txt the browser can follow", "%v", err)
		}
		var text string
		if err := b.Eval("document.body.innerText", &text); err != nil {
			return err
		}
		if text != string(want) {
			return fail("the text of test/sample.txt", "%s", harness.Abbrev([]byte(text), 60))
		}
		return nil
	})
}
