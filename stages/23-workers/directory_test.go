package main

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/golden"
)

// listingLink matches one link of a listing: the raw href attribute and the
// raw link text. The listing writes links in exactly this shape, so a
// regular expression is parser enough for the test.
var listingLink = regexp.MustCompile(`<a href="([^"]*)">([^<]*)</a>`)

// listingLinks returns the links of page as [href, text] pairs, both as
// written (still HTML-escaped).
func listingLinks(t *testing.T, page []byte) [][2]string {
	t.Helper()
	var links [][2]string
	for _, m := range listingLink.FindAllSubmatch(page, -1) {
		links = append(links, [2]string{string(m[1]), string(m[2])})
	}
	if n := bytes.Count(page, []byte("<a ")); n != len(links) {
		t.Fatalf("page has %d <a> tags but %d links in the expected shape:\n%s", n, len(links), page)
	}
	return links
}

// listingHrefs returns the hrefs of page as a browser resolves them: HTML
// entities decoded.
func listingHrefs(t *testing.T, page []byte) []string {
	t.Helper()
	var hrefs []string
	for _, l := range listingLinks(t, page) {
		hrefs = append(hrefs, html.UnescapeString(l[0]))
	}
	return hrefs
}

// listingPage returns the listing of dir, asked for as pathname, as a
// client receives it: generated into a small pipe piece by piece, as the
// pipe is drained. It fails unless the page is exactly as long as the
// listing announced, since that is its Content-Length.
func listingPage(dir, pathname string) ([]byte, error) {
	l, err := newListing(&scratch{}, dir, dir, pathname)
	if err != nil {
		return nil, err
	}
	sink := newPipeSink(func() {}, func() {})
	p, err := newPipe(testCore(), 1000, l.source, sink)
	if err != nil {
		return nil, err
	}
	var page []byte
	for !l.closed {
		l.produce()
		if p.buf.Len() > 2*p.thresh {
			return nil, fmt.Errorf("the listing overfilled its pipe: %d bytes", p.buf.Len())
		}
		for _, part := range sink.peek(nil, 0) {
			page = append(page, part...)
		}
		sink.clear(p.buf.Len())
	}
	if int64(len(page)) != l.size {
		return nil, fmt.Errorf("page of %d bytes, announced as %d", len(page), l.size)
	}
	return page, nil
}

// fixedTime is the modification time given to everything in listing tests.
var fixedTime = time.Date(2024, 3, 9, 17, 5, 42, 0, time.UTC)

// makeFile creates dir/name with size bytes and modification time mtime.
func makeFile(t testing.TB, dir, name string, size int, mtime time.Time) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestDirectoryListingGolden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docs")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name string
		size int
	}{
		{"a&b<c>.txt", 1234},
		{"name with spaces.txt", 0},
		{"hash#tag.md", 2048},
		{".hidden", 10},
		{"café.txt", 100},
		{"100%?.txt", 1536000},
		{"bad\xffname.txt", 5},
		{"sub/inner.txt", 1},
	}
	for i, f := range files {
		makeFile(t, dir, f.name, f.size, fixedTime.Add(time.Duration(i)*time.Hour))
	}
	for link, target := range map[string]string{
		"link-to-file": "hash#tag.md",
		"link-to-dir":  "sub",
		"dangling":     "nowhere",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "sub"), fixedTime, fixedTime); err != nil {
		t.Fatal(err)
	}

	got, err := listingPage(dir, "/docs/")
	if err != nil {
		t.Fatal(err)
	}
	// go test -update rewrites testdata/listing.golden; a difference is
	// shown as a unified diff.
	golden.Assert(t, string(got), "listing.golden")
	again, err := listingPage(dir, "/docs/")
	if err != nil || !bytes.Equal(again, got) {
		t.Errorf("a second listing differs from the first (err %v)", err)
	}
}

// TestDirectoryListingHrefs checks the links the course's grader follows,
// for each way of asking for the root and for a subfolder.
func TestDirectoryListingHrefs(t *testing.T) {
	public := t.TempDir()
	for _, f := range []string{"cat.jpg", "sample.pdf", "test/cat.jpg", "test/sample.pdf"} {
		writeFile(t, public, f, f)
	}
	test := filepath.Join(public, "test")
	cases := []struct {
		dir, pathname string
		want          []string
	}{
		{public, "/", []string{"/cat.jpg", "/sample.pdf", "/test"}},
		{public, "//", []string{"/cat.jpg", "/sample.pdf", "/test"}},
		{test, "/test", []string{"/", "/test/cat.jpg", "/test/sample.pdf"}},
		{test, "/test/", []string{"/", "/test/cat.jpg", "/test/sample.pdf"}},
		{test, "//test//", []string{"/", "/test/cat.jpg", "/test/sample.pdf"}},
		{test, "/a/b/", []string{"/a", "/a/b/cat.jpg", "/a/b/sample.pdf"}},
		{test, "/my docs/", []string{"/", "/my%20docs/cat.jpg", "/my%20docs/sample.pdf"}},
	}
	for _, tc := range cases {
		page, err := listingPage(tc.dir, tc.pathname)
		if err != nil {
			t.Fatalf("listingPage(%q): %v", tc.pathname, err)
		}
		if got := listingHrefs(t, page); !slices.Equal(got, tc.want) {
			t.Errorf("listingPage(%q) hrefs = %q, want %q", tc.pathname, got, tc.want)
		}
	}
}

func TestDirectoryListingEscaping(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, href, text string // href and text as written in the page
	}{
		{"a&b<c>.txt", "/a&amp;b%3Cc%3E.txt", "a&amp;b&lt;c&gt;.txt"},
		{"name with spaces.txt", "/name%20with%20spaces.txt", "name with spaces.txt"},
		{"hash#tag.md", "/hash%23tag.md", "hash#tag.md"},
		{"q?.txt", "/q%3F.txt", "q?.txt"},
		{"100%.txt", "/100%25.txt", "100%.txt"},
		{`say "hi".txt`, "/say%20%22hi%22.txt", "say &#34;hi&#34;.txt"},
		{"it's.txt", "/it&#39;s.txt", "it&#39;s.txt"},
		{"a+b=c;d,e!$(x)*:@.txt", "/a+b=c;d,e!$(x)*:@.txt", "a+b=c;d,e!$(x)*:@.txt"},
		{"~user_1-2.txt", "/~user_1-2.txt", "~user_1-2.txt"},
		{"back\\slash`.txt", "/back%5Cslash%60.txt", "back\\slash`.txt"},
		{"café.txt", "/caf%C3%A9.txt", "café.txt"},
		{"\xff.txt", "/%FF.txt", "\uFFFD.txt"},
		// Control characters are shown as U+FFFD; the link keeps them.
		{"tab\t.txt", "/tab%09.txt", "tab\uFFFD.txt"},
		{"line\nbreak\x1b[31m.txt", "/line%0Abreak%1B%5B31m.txt", "line\uFFFDbreak\uFFFD[31m.txt"},
	}
	for _, tc := range cases {
		writeFile(t, dir, tc.name, "x")
	}
	page, err := listingPage(dir, "/")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range listingLinks(t, page) {
		got[l[1]] = l[0]
	}
	for _, tc := range cases {
		href, ok := got[tc.text]
		if !ok {
			t.Errorf("%q: no link with text %q", tc.name, tc.text)
			continue
		}
		if href != tc.href {
			t.Errorf("%q: href %q, want %q", tc.name, href, tc.href)
		}
		// What a browser requests must name the file again.
		if p, err := url.PathUnescape(html.UnescapeString(href)); err != nil || p != "/"+tc.name {
			t.Errorf("%q: href %q decodes to %q, %v", tc.name, href, p, err)
		}
	}
}

func TestDirectoryListingDocument(t *testing.T) {
	dir := t.TempDir()
	page, err := listingPage(dir, `/<b>&"x"/`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<!DOCTYPE html>\n",
		`<meta charset="utf-8">`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		"<title>Directory: /&lt;b&gt;&amp;&#34;x&#34;/</title>",
		"<h1>eXpServer</h1>",
		"<h3>Index of /&lt;b&gt;&amp;&#34;x&#34;/</h3>\n<hr>\n<table>\n",
		`<tr><td><a href="/">../</a></td><td></td><td></td></tr>`,
		"</table>\n</body>\n</html>\n",
	} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if got := listingHrefs(t, page); !slices.Equal(got, []string{"/"}) {
		t.Errorf("empty folder hrefs = %q, want just the parent", got)
	}
}

func TestDirectoryListingErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	if _, err := listingPage(missing, "/none/"); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("listing a missing folder: %v, want an error naming it", err)
	}
	file := writeFile(t, t.TempDir(), "f.txt", "x")
	if _, err := listingPage(file, "/f.txt"); err == nil {
		t.Error("listing a file succeeded")
	}
}

// TestListable checks the folders a listing may show: others must be able
// to read the folder and to enter it and every folder on the way, the root
// excepted.
func TestListable(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{
		{"open", 0o755}, {"open/sub", 0o755}, {"private", 0o700}, {"private/sub", 0o755},
		{"enter-only", 0o711}, {"enter-only/sub", 0o755}, {"list-only", 0o754},
	} {
		p := filepath.Join(root, d.name)
		if err := os.Mkdir(p, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	for dir, ok := range map[string]bool{
		"": true, "open": true, "open/sub": true, "enter-only/sub": true,
		"private": false, "private/sub": false, "enter-only": false, "list-only": false,
	} {
		err := listable(root, filepath.Join(root, dir))
		if ok && err != nil || !ok && !errors.Is(err, fs.ErrPermission) {
			t.Errorf("listable(%q) = %v, want ok %v", dir, err, ok)
		}
	}
}

func TestListingBase(t *testing.T) {
	for pathname, want := range map[string]string{
		"":          "",
		"/":         "",
		"//":        "",
		"/test":     "/test",
		"/test/":    "/test",
		"/test//":   "/test",
		"//a//b/":   "/a/b",
		"/a b/#/":   "/a%20b/%23",
		"/docs/sub": "/docs/sub",
	} {
		if got := listingBase(pathname); got != want {
			t.Errorf("listingBase(%q) = %q, want %q", pathname, got, want)
		}
	}
}

func BenchmarkDirectoryListing(b *testing.B) {
	dir := b.TempDir()
	for i := range 200 {
		makeFile(b, dir, fmt.Sprintf("file %03d & more.txt", i), i*37, fixedTime)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := listingPage(dir, "/bench/"); err != nil {
			b.Fatal(err)
		}
	}
}
