package buffer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBufferAppendConsume(t *testing.T) {
	b := New(8)
	if n := b.Append([]byte("hello world")); n != 8 {
		t.Fatalf("Append copied %d bytes into capacity 8, want 8", n)
	}
	if got := string(b.Bytes()); got != "hello wo" {
		t.Fatalf("Bytes = %q", got)
	}
	b.Consume(6)
	if got, want := string(b.Bytes()), "wo"; got != want {
		t.Fatalf("after Consume(6): %q, want %q", got, want)
	}
	if b.Len() != 2 || b.Cap() != 8 || b.Spare() != 0 {
		t.Fatalf("Len/Cap/Spare = %d/%d/%d, want 2/8/0", b.Len(), b.Cap(), b.Spare())
	}
}

func TestBufferDuplicateIsIndependent(t *testing.T) {
	src := []byte("abcdef")
	b := FromBytes(src)
	src[0] = 'X'
	b.Consume(2)
	d := b.Duplicate()
	b.Bytes()[0] = 'Z'
	if got := string(d.Bytes()); got != "cdef" {
		t.Fatalf("duplicate = %q, want %q", got, "cdef")
	}
}

func TestBufferConsumeOutOfRangePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Consume past the end did not panic")
		}
	}()
	FromBytes([]byte("ab")).Consume(3)
}

// listOf builds a list from separately appended buffers, so reads and clears
// have to cross buffer boundaries.
func listOf(parts ...string) *List {
	l := NewList()
	for _, p := range parts {
		l.Append(FromBytes([]byte(p)))
	}
	return l
}

func contents(l *List) string {
	var out bytes.Buffer
	for _, p := range l.Slices(nil, 0) {
		out.Write(p)
	}
	return out.String()
}

func TestListRead(t *testing.T) {
	l := listOf("abc", "", "defg", "h")
	if l.Len() != 8 {
		t.Fatalf("Len = %d, want 8", l.Len())
	}
	for _, tc := range []struct {
		n    int
		want string
	}{{0, ""}, {2, "ab"}, {3, "abc"}, {5, "abcde"}, {8, "abcdefgh"}} {
		b, err := l.Read(tc.n)
		if err != nil {
			t.Fatalf("Read(%d): %v", tc.n, err)
		}
		if got := string(b.Bytes()); got != tc.want {
			t.Errorf("Read(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if _, err := l.Read(9); !errors.Is(err, ErrShort) {
		t.Fatalf("Read past the end: err = %v, want ErrShort", err)
	}
	if got := contents(l); got != "abcdefgh" {
		t.Fatalf("Read consumed bytes: list now holds %q", got)
	}
}

func TestListClear(t *testing.T) {
	cases := []struct {
		name  string
		clear []int
		want  string
	}{
		{"nothing", []int{0}, "abcdefgh"},
		{"inside the head buffer", []int{1}, "bcdefgh"},
		{"exactly the head buffer", []int{3}, "defgh"},
		{"across buffers", []int{5}, "fgh"},
		{"in steps", []int{1, 1, 1, 1}, "efgh"},
		{"everything", []int{8}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := listOf("abc", "defg", "h")
			for _, n := range tc.clear {
				if err := l.Clear(n); err != nil {
					t.Fatalf("Clear(%d): %v", n, err)
				}
			}
			if got := contents(l); got != tc.want {
				t.Errorf("list holds %q, want %q", got, tc.want)
			}
			if l.Len() != len(tc.want) {
				t.Errorf("Len = %d, want %d", l.Len(), len(tc.want))
			}
		})
	}
	if err := listOf("ab").Clear(3); !errors.Is(err, ErrShort) {
		t.Fatalf("Clear past the end: err = %v, want ErrShort", err)
	}
}

func TestListWritePacksSmallWrites(t *testing.T) {
	var l List
	for i := 0; i < 1000; i++ {
		l.Write([]byte("0123456789"))
	}
	if l.Len() != 10000 {
		t.Fatalf("Len = %d, want 10000", l.Len())
	}
	if k := len(l.Slices(nil, 0)); k != 3 {
		t.Fatalf("1000 writes of 10 bytes used %d buffers, want 3 (4 KiB chunks)", k)
	}
}

func TestListWriteCopies(t *testing.T) {
	var l List
	p := []byte("mutable")
	l.Write(p)
	p[0] = 'X'
	if got := contents(&l); got != "mutable" {
		t.Fatalf("Write kept a reference to the caller's slice: %q", got)
	}
}

func TestListSlicesMax(t *testing.T) {
	l := listOf("a", "b", "c")
	got := l.Slices(nil, 2)
	want := [][]byte{[]byte("a"), []byte("b")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Slices(nil, 2) mismatch (-want +got):\n%s", diff)
	}
}

func TestListMoveTo(t *testing.T) {
	src, dst := listOf("cd", "ef"), listOf("ab")
	src.MoveTo(dst)
	if src.Len() != 0 || contents(src) != "" {
		t.Fatalf("source not empty after MoveTo: %q", contents(src))
	}
	if got := contents(dst); got != "abcdef" || dst.Len() != 6 {
		t.Fatalf("destination = %q (Len %d), want %q (Len 6)", got, dst.Len(), "abcdef")
	}
}

func TestListAgainstModel(t *testing.T) {
	// A long mixed sequence checked against a plain byte slice.
	var l List
	var model []byte
	seed := uint32(1)
	next := func(n int) int { seed = seed*1664525 + 1013904223; return int(seed>>8) % n }
	for i := 0; i < 5000; i++ {
		switch next(3) {
		case 0:
			p := bytes.Repeat([]byte{byte(i)}, next(9000))
			l.Write(p)
			model = append(model, p...)
		case 1:
			p := bytes.Repeat([]byte{byte(i)}, next(300))
			l.Append(FromBytes(p))
			model = append(model, p...)
		case 2:
			n := next(len(model) + 1)
			if err := l.Clear(n); err != nil {
				t.Fatal(err)
			}
			model = model[n:]
		}
		if l.Len() != len(model) {
			t.Fatalf("step %d: Len = %d, model %d", i, l.Len(), len(model))
		}
	}
	b, err := l.Read(l.Len())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), model) {
		t.Fatal("list contents differ from the model")
	}
}

func TestListLargeWriteUsesLargeChunks(t *testing.T) {
	var l List
	l.Write(make([]byte, 100000))
	if k := len(l.Slices(nil, 0)); k != 2 {
		t.Fatalf("a 100000-byte write used %d buffers, want 2 (64 KiB chunks)", k)
	}
}

func TestListRecyclesChunks(t *testing.T) {
	var l List
	p := make([]byte, 100000)
	l.Write(p)
	_ = l.Clear(l.Len())
	if allocs := testing.AllocsPerRun(100, func() {
		l.Write(p)
		_ = l.Clear(l.Len())
	}); allocs > 0.5 {
		t.Fatalf("a write and clear of 100000 bytes allocated %.1f times per run, want 0", allocs)
	}
}

func BenchmarkListWriteClear(b *testing.B) {
	p := make([]byte, 16*1024)
	var l List
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		l.Write(p)
		if l.Len() > 1<<20 {
			_ = l.Clear(l.Len())
		}
	}
}

func TestChunkFillAndRecycle(t *testing.T) {
	c := NewChunk()
	c.Extend(copy(c.Room(), "file data"))
	if string(c.Bytes()) != "file data" || c.Cap() != largeChunk || len(c.Room()) != largeChunk-9 {
		t.Fatalf("chunk %q cap %d room %d", c.Bytes(), c.Cap(), len(c.Room()))
	}
	var l List
	l.Append(c)
	if err := l.Clear(l.Len()); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		c := NewChunk()
		c.Extend(len(c.Room()))
		l.Append(c)
		_ = l.Clear(l.Len())
	}); allocs > 0.5 {
		t.Fatalf("a chunk read into and cleared allocated %.1f times per run, want 0", allocs)
	}
}

func TestFileRegion(t *testing.T) {
	released := 0
	var l List
	l.Write([]byte("head\r\n"))
	l.Append(NewFileRegion(7, 100, 50, func() { released++ }))
	l.Write([]byte("tail")) // after a region: a new chunk, never written into the region
	if l.Len() != 6+50+4 {
		t.Fatalf("Len = %d, want 60", l.Len())
	}
	if got := l.Slices(nil, 0); len(got) != 1 || string(got[0]) != "head\r\n" {
		t.Fatalf("Slices = %q, want only the bytes before the region", got)
	}
	if _, err := l.Read(l.Len()); !errors.Is(err, ErrRegion) {
		t.Fatalf("Read across a region: %v, want ErrRegion", err)
	}
	if err := l.Clear(6 + 20); err != nil {
		t.Fatal(err)
	}
	fd, off, ok := l.Head().FileRegion()
	if !ok || fd != 7 || off != 120 || l.Head().Len() != 30 || released != 0 {
		t.Fatalf("after clearing 20 bytes of the region: fd %d off %d len %d released %d", fd, off, l.Head().Len(), released)
	}
	if err := l.Clear(30); err != nil {
		t.Fatal(err)
	}
	if released != 1 {
		t.Fatalf("the sent region was released %d times, want 1", released)
	}
	l.Append(NewFileRegion(8, 0, 10, func() { released++ }))
	l.Reset()
	if released != 2 {
		t.Fatalf("Reset did not release the queued region")
	}
}

func TestShortListsDoNotAllocate(t *testing.T) {
	var a, b List
	if allocs := testing.AllocsPerRun(100, func() {
		a.Append(NewFileRegion(3, 0, 10, nil))
		a.MoveTo(&b)
		_ = b.Clear(b.Len())
	}); allocs > 1 { // the region buffer itself
		t.Fatalf("moving one buffer between lists allocated %.1f times per run", allocs)
	}
}
