package stagefs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseManifest(t *testing.T) {
	entries, errs := ParseManifest([]byte("# comment\n\nA pipe.go\r\nM\tloop.go\n  D old file.go  \nA testdata/listing.golden\n" +
		"+ loop.go handlePipes\n~\tloop.go\t(*loop).run\n- my file.go init#2\n"))
	want := []Entry{
		{Change{Kind: Added, Path: "pipe.go"}, 3},
		{Change{Kind: Modified, Path: "loop.go"}, 4},
		{Change{Kind: Removed, Path: "old file.go"}, 5},
		{Change{Kind: Added, Path: "testdata/listing.golden"}, 6},
		{Change{Kind: Added, Path: "loop.go", Decl: "handlePipes"}, 7},
		{Change{Kind: Modified, Path: "loop.go", Decl: "(*loop).run"}, 8},
		{Change{Kind: Removed, Path: "my file.go", Decl: "init#2"}, 9},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}

	_, errs = ParseManifest([]byte("A\nR x.go\nM ./x.go\nM /x.go\nA CHANGES\nM a\\b.go\nM x.go\nD x.go\n" +
		"~ x.go\n+x.go f\n~ x.json f\n~ testdata/a.go f\n~ x.go f\n- x.go f\nM CHANGES.diff\n"))
	syntax := `want "A path", "M path" or "D path" for a file, "+ path name", "~ path name" or "- path name" for a declaration`
	wantErrs := []LineError{
		{1, `cannot parse "A": ` + syntax},
		{2, `cannot parse "R x.go": ` + syntax},
		{3, "./x.go: want a clean path relative to the stage folder, such as loop.go or testdata/listing.golden"},
		{4, "/x.go: want a clean path relative to the stage folder, such as loop.go or testdata/listing.golden"},
		{5, "CHANGES is never compared between stages; do not list it"},
		{6, `a\b.go: write paths with forward slashes`},
		{8, "x.go is already listed on line 7"},
		{9, `cannot parse "~ x.go": ` + syntax},
		{10, `cannot parse "+x.go f": ` + syntax},
		{11, `x.json is not Go source; it is compared as a whole file, so list it as "M x.json" alone`},
		{12, `testdata/a.go is not Go source; it is compared as a whole file, so list it as "M testdata/a.go" alone`},
		{14, "f in x.go is already listed on line 13"},
		{15, "CHANGES.diff is never compared between stages; do not list it"},
	}
	if diff := cmp.Diff(wantErrs, errs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestChangeString(t *testing.T) {
	for c, want := range map[Change]string{
		{Kind: Added, Path: "pipe.go"}:                         "A pipe.go",
		{Kind: Removed, Path: "old.go"}:                        "D old.go",
		{Kind: Modified, Path: "loop.go", Decl: "(*loop).run"}: "~ loop.go (*loop).run",
		{Kind: Added, Path: "loop.go", Decl: "handlePipes"}:    "+ loop.go handlePipes",
		{Kind: Removed, Path: "loop.go", Decl: "oldThing"}:     "- loop.go oldThing",
	} {
		if got := c.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", c, got, want)
		}
	}
}

func TestRewriteManifest(t *testing.T) {
	old := "# Stage 8 relative to stage 7: prose\n# kept as written.\n\nM loop.go\n~ loop.go stale\nA pipe.go\n\n# A note on main.go.\nM main.go\n+ main.go stale\nX unparsable\nM gone.go\n"
	changes := []Change{
		{Kind: Modified, Path: "loop.go"},
		{Kind: Modified, Path: "loop.go", Decl: "(*loop).run"},
		{Kind: Added, Path: "loop.go", Decl: "handlePipes"},
		{Kind: Modified, Path: "main.go"},
		{Kind: Added, Path: "pipe.go"},
		{Kind: Modified, Path: "session.go"},
		{Kind: Removed, Path: "session.go", Decl: "old"},
		{Kind: Added, Path: "testdata/x"},
	}
	want := "# Stage 8 relative to stage 7: prose\n# kept as written.\n\nM loop.go\n~ loop.go (*loop).run\n+ loop.go handlePipes\nA pipe.go\n\n# A note on main.go.\nM main.go\nX unparsable\nM gone.go\n" +
		"M session.go\n- session.go old\nA testdata/x\n"
	if diff := cmp.Diff(want, string(RewriteManifest([]byte(old), changes))); diff != "" {
		t.Errorf("RewriteManifest (-want +got):\n%s", diff)
	}
	if got := string(RewriteManifest(nil, changes[:3])); got != "M loop.go\n~ loop.go (*loop).run\n+ loop.go handlePipes\n" {
		t.Errorf("RewriteManifest of no manifest = %q", got)
	}
}
