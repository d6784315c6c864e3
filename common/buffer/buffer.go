package buffer

import "sync"

// Buffer is a byte buffer with a read position. Mirrors xps_buffer_t.
//
// The unread bytes are Bytes(); Consume advances past bytes that were used.
// len(data) is the buffer's length and cap(data) its capacity.
//
// A buffer can instead stand for a region of an open file (NewFileRegion):
// it has a length but no bytes in memory, and a sender hands the region to
// the kernel (sendfile) rather than copying it through the program.
type Buffer struct {
	data   []byte
	pos    int
	pooled bool   // storage came from a chunk pool and goes back to it
	region region // a file region instead of bytes, when region.file is set
}

// region is the part of a file a region buffer stands for. Buffers made
// by NewFileRegion have file set; the others carry the zero region.
type region struct {
	file bool
	fd   int
	off  int64  // where the unread part starts in the file
	left int    // unread bytes
	done func() // called once when the region is released
}

// NewFileRegion returns a buffer standing for n bytes of the file open on
// fd, from offset off. done is called once when the buffer is released —
// its bytes all cleared from a List, or the List reset — so the owner knows
// when it may close the file.
func NewFileRegion(fd int, off int64, n int, done func()) *Buffer {
	return &Buffer{region: region{file: true, fd: fd, off: off, left: n, done: done}}
}

// FileRegion reports whether the buffer is a file region and, if so, the
// file and the offset of its unread part; Len is its length.
func (b *Buffer) FileRegion() (fd int, off int64, ok bool) {
	if !b.region.file {
		return 0, 0, false
	}
	return b.region.fd, b.region.off, true
}

// New returns an empty buffer with the given capacity.
// Mirrors xps_buffer_create(size, 0, NULL).
func New(capacity int) *Buffer {
	return &Buffer{data: make([]byte, 0, capacity)}
}

// FromBytes returns a buffer holding a copy of p.
// Mirrors xps_buffer_create(len, len, data).
func FromBytes(p []byte) *Buffer {
	return &Buffer{data: append(make([]byte, 0, len(p)), p...)}
}

// Wrap returns a buffer that takes ownership of p without copying it. The
// caller must not use p afterwards.
func Wrap(p []byte) *Buffer {
	return &Buffer{data: p}
}

// Bytes returns the unread bytes, or nil for a file region. The slice
// aliases the buffer: it is valid until the next call that modifies the
// buffer.
func (b *Buffer) Bytes() []byte { return b.data[b.pos:] }

// Len returns the number of unread bytes.
func (b *Buffer) Len() int {
	if b.region.file {
		return b.region.left
	}
	return len(b.data) - b.pos
}

// Cap returns the capacity of the underlying storage.
func (b *Buffer) Cap() int { return cap(b.data) }

// Spare returns how many more bytes Append can take without allocating.
func (b *Buffer) Spare() int { return cap(b.data) - len(b.data) }

// Append copies as much of p as fits in the spare capacity and returns how
// many bytes it copied. It never allocates.
func (b *Buffer) Append(p []byte) int {
	n := min(len(p), b.Spare())
	b.data = append(b.data, p[:n]...)
	return n
}

// Consume marks the first n unread bytes as used. It panics if n is negative
// or larger than Len, which is a bug in the caller.
func (b *Buffer) Consume(n int) {
	if n < 0 || n > b.Len() {
		panic("buffer: Consume out of range")
	}
	if b.region.file {
		b.region.off += int64(n)
		b.region.left -= n
		return
	}
	b.pos += n
}

// Duplicate returns an independent copy holding the same unread bytes.
// Mirrors xps_buffer_duplicate.
func (b *Buffer) Duplicate() *Buffer { return FromBytes(b.Bytes()) }

// Reset empties the buffer, keeping its storage for reuse.
func (b *Buffer) Reset() {
	b.data = b.data[:0]
	b.pos = 0
}

// Chunk sizes of the pools List.Write draws from. Small writes share small
// chunks, so a connection with a few bytes queued holds 4 KiB, not 64.
const (
	smallChunk = 4 << 10
	largeChunk = 64 << 10
)

// The pools recycle the chunks of fully sent data. A server streaming a
// gigabyte through a pipe then allocates nothing per chunk, and its memory
// stays flat instead of following the garbage collector's rhythm.
var (
	smallPool = sync.Pool{New: func() any { return &Buffer{data: make([]byte, 0, smallChunk), pooled: true} }}
	largePool = sync.Pool{New: func() any { return &Buffer{data: make([]byte, 0, largeChunk), pooled: true} }}
)

// getChunk returns an empty pooled buffer, small if n bytes fit in one.
func getChunk(n int) *Buffer {
	if n <= smallChunk {
		return smallPool.Get().(*Buffer)
	}
	return largePool.Get().(*Buffer)
}

// NewChunk returns an empty 64 KiB buffer from the pool. A List that holds
// it gives it back to the pool once its bytes are cleared, so a producer can
// read straight into it (Room, Extend) and hand it over (List.Append)
// without a copy.
func NewChunk() *Buffer { return getChunk(largeChunk) }

// Room returns the buffer's spare capacity, for a read straight into it.
func (b *Buffer) Room() []byte { return b.data[len(b.data):cap(b.data)] }

// Extend keeps n more bytes: the ones a read just put at the start of Room.
func (b *Buffer) Extend(n int) {
	if n < 0 || n > b.Spare() {
		panic("buffer: Extend out of range")
	}
	b.data = b.data[:len(b.data)+n]
}

// Release gives the buffer back to its pool if it came from one, or
// releases a file region. Use it for a buffer that was never appended to a
// List.
func (b *Buffer) Release() { b.release() }

// release gives a pooled buffer's storage back to its pool, or tells a
// file region's owner it is done with. The buffer must not be used
// afterwards.
func (b *Buffer) release() {
	if b.region.file {
		done := b.region.done
		b.region = region{}
		if done != nil {
			done()
		}
		return
	}
	if !b.pooled {
		return
	}
	b.Reset()
	if cap(b.data) == smallChunk {
		smallPool.Put(b)
	} else {
		largePool.Put(b)
	}
}
