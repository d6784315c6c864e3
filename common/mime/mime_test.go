package mime

import (
	"strings"
	"testing"
)

func TestExtension(t *testing.T) {
	cases := []struct{ path, want string }{
		{"", ""},
		{"/", ""},
		{"file", ""},
		{"/dir/file", ""},
		{"/a.b/c", ""},
		{"/a.b/c/", ""},
		{"x.tar.gz", ".gz"},
		{"/dir/.hidden", ".hidden"},
		{"../public/sample.txt", ".txt"},
		{"/dir/file.", "."},
		{".", "."},
		{"/index.HTML", ".HTML"},
		{"a.b/c.d", ".d"},
	}
	for _, c := range cases {
		if got := Extension(c.path); got != c.want {
			t.Errorf("Extension(%q) = %q, want %q", c.path, got, c.want)
		}
	}
}

func TestLookup(t *testing.T) {
	cases := []struct{ path, want string }{
		{"a.jpg", "image/jpeg"},
		{"a.jpeg", "image/jpeg"},
		{"a.jpe", "image/jpeg"},
		{"a.jfif", "image/jpeg"},
		{"a.jif", "image/jpeg"},
		{"a.pjpg", "image/jpeg"},
		{"a.pdf", "application/pdf"},
		{"a.txt", "text/plain"},
		{"a.text", "text/plain"},
		{"a.log", "text/plain"},
		{"a.json", "application/json"},
		{"a.html", "text/html"},
		{"a.htm", "text/html"},
		{"a.css", "text/css"},
		{"a.js", "text/javascript"},
		{"a.png", "image/png"},
		{"a.gif", "image/gif"},
		{"a.svg", "image/svg+xml"},
		{"a.ico", "image/x-icon"},
		{"a.webp", "image/webp"},
		{"a.wasm", "application/wasm"},
		{"a.mp3", "audio/mpeg"},
		{"a.webm", "video/webm"},
		{"a.zip", "application/zip"},
		{"a.csv", "text/csv"},
		{"a.md", "text/markdown"},
		{"a.woff", "font/woff"},
		{"a.woff2", "font/woff2"},
		{"a.yaml", "application/yaml"},
		{"../public/sample.txt", "text/plain"},
		{"/x.tar.gz", "application/x-gzip"},
		{"/dir/.db-shm", "application/vnd.sqlite3"},

		// The overrides.
		{"movie.mp4", "video/mp4"},
		{"feed.xml", "application/xml"},

		// Case is ignored, including on the overrides.
		{"PHOTO.JPG", "image/jpeg"},
		{"Index.Html", "text/html"},
		{"/DIR.PNG/notes.TXT", "text/plain"},
		{"MOVIE.MP4", "video/mp4"},
		{"DATA.XML", "application/xml"},
	}
	for _, c := range cases {
		got, ok := Lookup(c.path)
		if !ok || got != c.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q, true", c.path, got, ok, c.want)
		}
		if got := TypeByPath(c.path); got != c.want {
			t.Errorf("TypeByPath(%q) = %q, want %q", c.path, got, c.want)
		}
	}
}

func TestLookupMiss(t *testing.T) {
	for _, path := range []string{
		"",
		"Makefile",
		"/a.html/README",
		"file.",
		"file.nosuchext",
		"archive.tar.gz.part",
		"x.j pg",
		"x..jpg.",
		"x.\u212Aml", // Kelvin sign, which full Unicode folding would turn into "k"
	} {
		if got, ok := Lookup(path); ok || got != "" {
			t.Errorf("Lookup(%q) = %q, %v; want \"\", false", path, got, ok)
		}
		if got := TypeByPath(path); got != Fallback {
			t.Errorf("TypeByPath(%q) = %q, want %q", path, got, Fallback)
		}
	}
	if Fallback != "application/octet-stream" {
		t.Errorf("Fallback = %q, want application/octet-stream", Fallback)
	}
}

// distinctExtensions is how many different extensions the course table lists. The
// spec's prose says 888 as well; the table must not silently gain or lose one.
const distinctExtensions = 888

func TestTableShape(t *testing.T) {
	seen := make(map[string]bool, len(courseTable))
	for i, e := range courseTable {
		if e.ext == "" || strings.Contains(e.ext, ".") || lowerASCII(e.ext) != e.ext {
			t.Errorf("courseTable[%d] key %q: want a non-empty lower-case extension without a dot", i, e.ext)
		}
		// The course maps .gcode to the bare word "gcode"; it is kept as the
		// course has it, and any other malformed type is a transcription slip.
		wellFormed := strings.Contains(e.typ, "/") || e == entry{"gcode", "gcode"}
		if !wellFormed || strings.ToLower(e.typ) != e.typ {
			t.Errorf("courseTable[%d] (%q) type %q: want a lower-case type/subtype", i, e.ext, e.typ)
		}
		seen[e.ext] = true
	}
	if len(seen) != distinctExtensions {
		t.Errorf("courseTable has %d distinct extensions, want %d", len(seen), distinctExtensions)
	}
	// The overrides change types, not coverage.
	for _, o := range overrides {
		if !seen[o.ext] {
			t.Errorf("override %q is not in the course table", o.ext)
		}
	}
	if len(types) != distinctExtensions {
		t.Errorf("lookup map has %d extensions, want %d", len(types), distinctExtensions)
	}
}

// TestOverridesAreDeliberate pins what the course table says underneath each
// override, so an override that has become a no-op, or a table edit that
// changes the course value, shows up here.
func TestOverridesAreDeliberate(t *testing.T) {
	course := build(courseTable, nil)
	for _, c := range []struct{ ext, course, ours string }{
		{"mp4", "audio/aac", "video/mp4"},
		{"xml", "application/rss+xml", "application/xml"},
	} {
		if got := course[c.ext]; got != c.course {
			t.Errorf("course table .%s = %q, want %q", c.ext, got, c.course)
		}
		if got := types[c.ext]; got != c.ours {
			t.Errorf("lookup map .%s = %q, want %q", c.ext, got, c.ours)
		}
	}
	if len(overrides) != 2 {
		t.Errorf("%d overrides, want exactly the two documented ones", len(overrides))
	}
}

// TestFirstMatchWins uses the course's own duplicate for .mp4 (audio/aac
// first, video/mp4 later): the table here keeps only the first entry of
// each extension, so it has no duplicate of its own to exercise.
func TestFirstMatchWins(t *testing.T) {
	table := []entry{
		{"mp4", "audio/aac"},
		{"txt", "text/plain"},
		{"mp4", "video/mp4"},
	}
	m := build(table, nil)
	if got := m["mp4"]; got != "audio/aac" {
		t.Errorf("build kept %q for mp4, want the first entry audio/aac", got)
	}
	m = build(table, []entry{{"txt", "text/x-override"}})
	if got := m["txt"]; got != "text/x-override" {
		t.Errorf("build kept %q for txt, want the override text/x-override", got)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	for _, path := range []string{"/images/photo.jpg", "/README", "/x.nosuchext"} {
		if n := testing.AllocsPerRun(100, func() { TypeByPath(path) }); n != 0 {
			t.Errorf("TypeByPath(%q) allocates %v times per call, want 0", path, n)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"lower", "/images/photo.jpg"},
		{"upper", "/images/PHOTO.JPG"},
		{"miss", "/bin/tool.nosuchext"},
		{"none", "/Makefile"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Lookup(bc.path)
			}
		})
	}
}
