package buffer

import "errors"

// ErrShort is returned when a List is asked for more bytes than it holds.
var ErrShort = errors.New("buffer: list holds fewer bytes than requested")

// List is a FIFO of buffers with the total number of unread bytes.
// Mirrors xps_buffer_list_t. The zero value is an empty list ready to use;
// a List must not be copied once used.
type List struct {
	bufs []*Buffer // bufs[head:] are queued, bufs[head] first; each has Len() > 0
	head int
	n    int
	// small is where bufs starts out: most lists — a response head, a
	// small file — never hold more than two buffers at once, and then cost
	// no allocation.
	small [2]*Buffer
}

// init points an unused list at its inline storage.
func (l *List) init() {
	if l.bufs == nil {
		l.bufs = l.small[:0]
	}
}

// NewList returns an empty list. Mirrors xps_buffer_list_create.
func NewList() *List { return &List{} }

// Len returns the total number of unread bytes in the list.
func (l *List) Len() int { return l.n }

// Append adds b at the tail and takes ownership of it.
// Mirrors xps_buffer_list_append. An empty buffer is released at once.
func (l *List) Append(b *Buffer) {
	if b.Len() == 0 {
		b.release()
		return
	}
	l.init()
	l.bufs = append(l.bufs, b)
	l.n += b.Len()
}

// Write appends a copy of p, filling the tail buffer's spare capacity first
// and then pooled chunks: 4 KiB ones while the rest fits in one, 64 KiB ones
// otherwise. Small writes are packed together, so a thousand 10-byte
// messages take three chunks, not a thousand allocations.
func (l *List) Write(p []byte) {
	l.init()
	l.n += len(p)
	if k := len(l.bufs); k > 0 && len(p) > 0 {
		p = p[l.bufs[k-1].Append(p):]
	}
	for len(p) > 0 {
		b := getChunk(len(p))
		p = p[b.Append(p):]
		l.bufs = append(l.bufs, b)
	}
}

// ErrRegion is returned by Read when the bytes asked for include a file
// region, which has no bytes in memory to copy.
var ErrRegion = errors.New("buffer: list holds a file region")

// Read returns a new buffer with a copy of the first n bytes, spanning
// buffers as needed. It consumes nothing. Mirrors xps_buffer_list_read.
func (l *List) Read(n int) (*Buffer, error) {
	if n < 0 || n > l.n {
		return nil, ErrShort
	}
	out := New(n)
	for _, b := range l.bufs[l.head:] {
		if out.Len() == n {
			break
		}
		if b.region.file {
			return nil, ErrRegion
		}
		p := b.Bytes()
		out.Append(p[:min(len(p), n-out.Len())])
	}
	return out, nil
}

// Head returns the first queued buffer, or nil when the list is empty. A
// sender looks at it to choose between sending bytes and a file region.
func (l *List) Head() *Buffer {
	if l.head == len(l.bufs) {
		return nil
	}
	return l.bufs[l.head]
}

// Clear drops the first n bytes: whole buffers from the head, then part of
// the next one. Clearing 0 bytes does nothing. Mirrors xps_buffer_list_clear.
func (l *List) Clear(n int) error {
	if n < 0 || n > l.n {
		return ErrShort
	}
	l.n -= n
	for n > 0 {
		b := l.bufs[l.head]
		if n < b.Len() {
			b.Consume(n)
			break
		}
		n -= b.Len()
		b.release()
		l.bufs[l.head] = nil
		l.head++
	}
	// Reuse the slice of buffers from its start once the queue is empty,
	// and move the queue down when the cleared part dominates, so a list
	// that is appended to and cleared forever neither grows nor reallocates.
	switch {
	case l.head == len(l.bufs):
		l.bufs, l.head = l.bufs[:0], 0
	case l.head > 32 && l.head > len(l.bufs)/2:
		k := copy(l.bufs, l.bufs[l.head:])
		clear(l.bufs[k:])
		l.bufs, l.head = l.bufs[:k], 0
	}
	return nil
}

// Slices appends to dst a view of each queued buffer's unread bytes, head
// first, at most max of them (max <= 0 means all), stopping at the first
// file region, and returns the result. The views alias the list: they are
// valid until the list is next modified, after which their storage may
// already hold other data.
// A sender passes them to one writev/sendmsg call and then Clears what was
// sent, so no byte is copied on the way to the socket.
func (l *List) Slices(dst [][]byte, max int) [][]byte {
	for i, b := range l.bufs[l.head:] {
		if max > 0 && i == max || b.region.file {
			break
		}
		dst = append(dst, b.Bytes())
	}
	return dst
}

// MoveTo moves every queued buffer to the tail of dst, leaving l empty. No
// byte is copied.
func (l *List) MoveTo(dst *List) {
	dst.init()
	dst.bufs = append(dst.bufs, l.bufs[l.head:]...)
	dst.n += l.n
	clear(l.bufs)
	l.bufs, l.head, l.n = l.bufs[:0], 0, 0
}

// Reset drops everything in the list. Mirrors xps_buffer_list_destroy for a
// list that is reused rather than freed.
func (l *List) Reset() {
	for _, b := range l.bufs[l.head:] {
		b.release()
	}
	clear(l.bufs)
	l.bufs, l.head, l.n = nil, 0, 0
}
