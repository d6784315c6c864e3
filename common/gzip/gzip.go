// Package gzip is the compressor the course hands over for its gzip stage.
// The C course links zlib and writes gzip streams with deflateInit2; the Go
// edition hands over github.com/klauspost/compress/gzip, behind the standard
// library's compress/gzip API (NewWriterLevel, Write, Flush, Close, Reset),
// so that stage code reads as it would with the standard library.
//
// Why not compress/gzip itself: serving text gzipped at level 6 beside
// nginx (zlib at gzip_comp_level 6), the standard library's compressor
// gave 0.65× nginx's requests per CPU-second: 14 MB/s on the benchmark's
// 1 MiB text, where klauspost/compress does 102 MB/s, for a stream 5 %
// larger than zlib's (325,514 bytes against 310,573; the standard
// library's, 302,160), and on Go source 114 MB/s against 36 MB/s, 3 %
// larger than zlib's. A compressor is a library a server links, as
// nginx links zlib, not a lesson of this course; the one that spends a
// seventh of the CPU per response serves users better. The benchmark in
// this package's tests repeats the comparison.
package gzip

import (
	"io"

	kgzip "github.com/klauspost/compress/gzip"
)

// Writer compresses what is written to it into a gzip stream.
type Writer = kgzip.Writer

// The compression levels, as in compress/gzip.
const (
	NoCompression      = kgzip.NoCompression
	BestSpeed          = kgzip.BestSpeed
	BestCompression    = kgzip.BestCompression
	DefaultCompression = kgzip.DefaultCompression
	HuffmanOnly        = kgzip.HuffmanOnly
)

// NewWriterLevel returns a Writer compressing at level (HuffmanOnly,
// NoCompression, or BestSpeed to BestCompression) into w; any other level
// is an error.
func NewWriterLevel(w io.Writer, level int) (*Writer, error) {
	return kgzip.NewWriterLevel(w, level)
}
