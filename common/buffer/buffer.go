package buffer

import "sync"

// Buffer is a byte buffer with a read position. Mirrors xps_buffer_t.
//
// The unread bytes are Bytes(); Consume advances past bytes that were used.
// len(data) is the buffer's length and cap(data) its capacity.
type Buffer struct {
	data   []byte
	pos    int
	pooled bool // storage came from a chunk pool and goes back to it
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

// Bytes returns the unread bytes. The slice aliases the buffer: it is valid
// until the next call that modifies the buffer.
func (b *Buffer) Bytes() []byte { return b.data[b.pos:] }

// Len returns the number of unread bytes.
func (b *Buffer) Len() int { return len(b.data) - b.pos }

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

// release gives a pooled buffer's storage back to its pool. The buffer must
// not be used afterwards.
func (b *Buffer) release() {
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
