package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWithin(t *testing.T) {
	cases := []struct {
		root, path string
		want       bool
	}{
		{"/srv/public", "/srv/public", true},
		{"/srv/public", "/srv/public/a.txt", true},
		{"/srv/public", "/srv/public/sub/a.txt", true},
		{"/srv/public", "/srv/public2/a.txt", false},
		{"/srv/public", "/srv/publi", false},
		{"/srv/public", "/srv", false},
		{"/srv/public", "/etc/passwd", false},
		{"/", "/anything", true},
	}
	for _, tc := range cases {
		if got := within(tc.root, tc.path); got != tc.want {
			t.Errorf("within(%q, %q) = %v, want %v", tc.root, tc.path, got, tc.want)
		}
	}
}

// TestNewFileChecks runs the file module's four checks against a real tree:
// a public folder with readable, unreadable and linked files, and a folder
// beside it that must stay out of reach.
func TestNewFileChecks(t *testing.T) {
	dir := t.TempDir()
	public := filepath.Join(dir, "public")
	outside := filepath.Join(dir, "public2")
	for _, d := range []string{public, outside, filepath.Join(public, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A folder others may not enter, and one they may enter but not list.
	for d, mode := range map[string]os.FileMode{"hidden": 0o700, "enter-only": 0o711} {
		if err := os.Mkdir(filepath.Join(public, d), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(public, d), mode) // not subject to the umask
	}
	write := func(path string, mode os.FileMode) {
		if err := os.WriteFile(path, []byte("data"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode) // not subject to the umask
	}
	write(filepath.Join(public, "ok.txt"), 0o644)
	write(filepath.Join(public, "private.txt"), 0o640)
	write(filepath.Join(outside, "secret.txt"), 0o644)
	write(filepath.Join(public, "sub", "deep.txt"), 0o644)
	write(filepath.Join(public, "hidden", "ok.txt"), 0o644)
	write(filepath.Join(public, "enter-only", "ok.txt"), 0o644)
	for link, target := range map[string]string{
		"link-hidden.txt": filepath.Join("hidden", "ok.txt"),
		"loop":            "loop",
	} {
		if err := os.Symlink(target, filepath.Join(public, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(public, "link-out.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("ok.txt", filepath.Join(public, "link-in.txt")); err != nil {
		t.Fatal(err)
	}

	c := testCore()
	root, err := filepath.EvalSymlinks(public)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		want error // nil, fs.ErrNotExist or fs.ErrPermission
	}{
		{filepath.Join(public, "ok.txt"), nil},
		{filepath.Join(public, "sub", "..", "ok.txt"), nil},
		{filepath.Join(public, "link-in.txt"), nil},
		{filepath.Join(public, "sub", "deep.txt"), nil},
		{filepath.Join(public, "enter-only", "ok.txt"), nil},
		{filepath.Join(public, "hidden", "ok.txt"), fs.ErrPermission},
		{filepath.Join(public, "link-hidden.txt"), fs.ErrPermission},
		{filepath.Join(public, "loop"), fs.ErrPermission},
		{filepath.Join(public, "missing.txt"), fs.ErrNotExist},
		{filepath.Join(public, "sub"), fs.ErrNotExist}, // a directory is not a file to send
		{filepath.Join(public, "private.txt"), fs.ErrPermission},
		{filepath.Join(public, "link-out.txt"), fs.ErrPermission},
		{filepath.Join(public, "..", "public2", "secret.txt"), fs.ErrPermission},
		{filepath.Join(outside, "secret.txt"), fs.ErrPermission},
	}
	for _, tc := range cases {
		f, err := newFile(c, tc.path, root)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("newFile(%s): %v, want success", tc.path, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("newFile(%s): %v, want %v", tc.path, err, tc.want)
		}
		if f != nil {
			if f.size != 4 || f.mimeType != "text/plain" || !f.source.ready {
				t.Errorf("newFile(%s) = size %d type %q ready %v", tc.path, f.size, f.mimeType, f.source.ready)
			}
			f.close()
		}
	}
}

// TestFileReuse checks that a closed file is reused only once its last
// region has been released — a region in flight still calls back into it —
// and from the loop's next iteration on, then as if it were new.
func TestFileReuse(t *testing.T) {
	public := t.TempDir()
	path := filepath.Join(public, "ok.txt")
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644) // not subject to the umask
	c := testCore()
	root, err := filepath.EvalSymlinks(public)
	if err != nil {
		t.Fatal(err)
	}
	open := func() *file {
		t.Helper()
		f, err := newFile(c, path, root)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	first := open()
	snk := newPipeSink(func() {}, func() {})
	if _, err := newPipe(c, 16, first.source, snk); err != nil {
		t.Fatal(err)
	}
	first.read() // hands on the whole file as one region, and closes the file
	if !first.closed || first.regions != 1 {
		t.Fatalf("after the read: closed %v, %d regions in flight; want closed, 1", first.closed, first.regions)
	}
	c.recycle()
	// The files opened meanwhile stay open, so that only first can be on
	// the free list.
	if again := open(); again == first {
		t.Fatal("a file was reused while a region of it was in flight")
	} else {
		defer again.close()
	}
	snk.clear(4) // the region is sent
	if again := open(); again == first {
		t.Fatal("a file was reused in the iteration that released it")
	} else {
		defer again.close()
	}
	c.recycle()
	reused := open()
	if reused != first {
		t.Fatal("the released file was not reused")
	}
	if reused.closed || reused.regions != 0 || reused.offset != 0 || reused.left != 4 || reused.source.pipe != nil || !reused.source.ready {
		t.Errorf("reused file: closed %v, %d regions, offset %d, %d left, attached %v, ready %v; want it as new",
			reused.closed, reused.regions, reused.offset, reused.left, reused.source.pipe != nil, reused.source.ready)
	}
	reused.close()
}
