package gzip

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// text returns n bytes of line-broken words and numbers, the same on every
// run, which compress about as English prose does.
func text(n int) []byte {
	words := []string{"the", "server", "event", "loop", "reads", "a", "request", "from", "each", "client", "and", "writes", "its", "response", "pipe", "buffer", "upstream", "header", "body", "timer"}
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(7) == 0 {
			fmt.Fprintf(&b, "%d ", r.IntN(100000))
		} else {
			b.WriteString(words[r.IntN(len(words))] + " ")
		}
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		}
	}
	return b.Bytes()[:n]
}

// TestRoundTrip checks that every level writes a stream the standard
// library's reader decodes to the input, also after Flush, which a server
// calls at the end of each chunk it sends, and after Reset, which reuses a
// Writer for the next response.
func TestRoundTrip(t *testing.T) {
	in := text(200 << 10)
	var out bytes.Buffer
	for _, level := range []int{HuffmanOnly, NoCompression, BestSpeed, 6, BestCompression} {
		w, err := NewWriterLevel(io.Discard, level)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		for round := range 2 {
			out.Reset()
			w.Reset(&out)
			for i := 0; i < len(in); i += 30000 {
				w.Write(in[i:min(i+30000, len(in))])
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := stdgzip.NewReader(&out)
			if err != nil {
				t.Fatalf("level %d, round %d: %v", level, round, err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("level %d, round %d: decoded %d bytes (%v), want the %d written", level, round, len(got), err, len(in))
			}
		}
	}
	if _, err := NewWriterLevel(io.Discard, 10); err == nil {
		t.Fatal("level 10 accepted")
	}
}

// BenchmarkLevel6 compares this compressor with the standard library's at
// the level nginx and the sample config use: MB/s of input and the size of
// the stream.
func BenchmarkLevel6(b *testing.B) {
	in := text(1 << 20)
	for _, c := range []struct {
		name string
		new  func(io.Writer) (io.WriteCloser, error)
	}{
		{"klauspost", func(w io.Writer) (io.WriteCloser, error) { return NewWriterLevel(w, 6) }},
		{"stdlib", func(w io.Writer) (io.WriteCloser, error) { return stdgzip.NewWriterLevel(w, 6) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				out.Reset()
				w, _ := c.new(&out)
				w.Write(in)
				w.Close()
			}
			b.ReportMetric(float64(out.Len()), "bytes/stream")
		})
	}
}
