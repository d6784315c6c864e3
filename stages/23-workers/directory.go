package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"expserver-go/common/xlog"

	"golang.org/x/sys/unix"
)

// The fixed parts of a listing: listingHead runs up to the title text,
// listingMid from the title to the heading text, listingTable from the
// heading to the first row, and listingTail closes the document.
const (
	listingHead = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Directory: `
	listingMid = `</title>
<style>
body { font-family: monospace; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { padding: 0.15em 1.5em 0.15em 0; text-align: left; }
td:nth-child(2) { text-align: right; }
</style>
</head>
<body>
<h1>eXpServer</h1>
<h3>Index of `
	listingTable = `</h3>
<hr>
<table>
<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>
`
	listingTail = `</table>
</body>
</html>
`
)

// listingThreshold is the capacity of the pipe a listing is generated into.
// Every byte in it is memory — a file's pipe holds regions of the file,
// which cost none — so it is small, yet enough to keep a fast client busy.
const listingThreshold = 64 << 10

// listing is a directory listing exposed as a pipe source, as a file is: its
// page flows into whatever pipe its source is attached to. The page is
// generated only as the pipe has room, so it is never held whole: a folder
// of forty thousand entries makes a page of megabytes, and clients that do
// not read would otherwise keep one each in memory. What is held is a
// compact table of the entries, read and looked at once, from which the
// exact length of the page — its Content-Length — is known before its first
// byte is sent. The course builds the whole page in one buffer.
type listing struct {
	source *pipeSource
	size   int64    // bytes in the whole page
	title  string   // the requested path, as the page shows it
	base   string   // what entry names are appended to in links (listingBase)
	names  []byte   // every entry's name, each followed by a NUL
	starts []uint32 // where each listed entry's name starts in names, in order
	sizes  []int64  // each entry's size, or -1 for a folder
	mtimes []int64  // each entry's modification time, in seconds
	next   int      // the next part to generate (see appendPart)
	closed bool
	// scratch is the working space of the worker that serves the page:
	// parts are generated into scratch.listing before they are copied
	// into a pipe, so one buffer serves every listing of the worker.
	scratch *scratch
}

// newListing reads the directory dirPath, which lies inside the route's
// folder root and which the client asked for as pathname (the cleaned,
// percent-decoded request path, cleanPathname's result). The listing has
// every entry but "." and "..", hidden ones included, that is a file or a
// directory once symbolic links are followed, sorted by name, after a row
// for the parent directory. Links are root-absolute ("/test/cat.jpg", and
// "/test" for a directory, without a trailing slash), because the course's
// grader follows them as given. The page depends only on the directory,
// not on the clock. A folder others may not list gives an error wrapping
// fs.ErrPermission. sc is the serving worker's working space.
// Mirrors xps_directory_browsing.
func newListing(sc *scratch, root, dirPath, pathname string) (*listing, error) {
	if err := listable(root, dirPath); err != nil {
		return nil, err
	}
	fd, err := unix.Open(dirPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("directory listing: %s: %w", dirPath, err)
	}
	defer unix.Close(fd)
	names, starts, err := readNames(fd, sc.dirents[:])
	if err != nil {
		return nil, fmt.Errorf("directory listing: %s: %w", dirPath, err)
	}
	// Byte order, as os.ReadDir sorts.
	slices.SortFunc(starts, func(a, b uint32) int { return bytes.Compare(nameAt(names, a), nameAt(names, b)) })
	l := &listing{
		base:    listingBase(pathname),
		title:   string(appendText(nil, []byte(pathname))),
		names:   names,
		scratch: sc,
		sizes:   make([]int64, 0, len(starts)),
		mtimes:  make([]int64, 0, len(starts)),
	}
	var st unix.Stat_t
	listed := starts[:0]
	for _, start := range starts {
		// Stat, not the entry's own type: a link to a file is listed as
		// the file it leads to, and a dangling link is left out.
		name := nameAt(names, start)
		if err := unix.Fstatat(fd, string(name), &st, 0); err != nil {
			continue
		}
		size := st.Size
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFDIR:
			size = -1
		default:
			continue
		}
		listed = append(listed, start)
		l.sizes = append(l.sizes, size)
		l.mtimes = append(l.mtimes, st.Mtim.Sec)
	}
	l.starts = listed
	// The page is generated once here only to be measured.
	for i := range l.parts() {
		sc.listing = l.appendPart(sc.listing[:0], i)
		l.size += int64(len(sc.listing))
	}
	l.source = newPipeSource(l.produce, l.close)
	// A listing, like a file, has data until its end.
	l.source.ready = true
	return l, nil
}

// readNames reads the names of the entries of the open directory fd, but
// "." and "..", through buf, where the kernel writes its records, into one
// byte slice, each followed by a NUL (which no name
// contains), and returns where each starts. Taking the names straight from
// the kernel's records, rather than through os.File.Readdirnames, makes no
// string per entry; and a first pass that only counts lets the second put
// the names where they fit, rather than grow the slice as it goes, leaving
// each outgrown copy behind. For a folder of forty thousand entries that is
// megabytes the garbage collector never has to find.
func readNames(fd int, buf []byte) (names []byte, starts []uint32, err error) {
	size, count := 0, 0
	err = eachName(fd, buf, func(name []byte) {
		size += len(name) + 1
		count++
	})
	if err != nil {
		return nil, nil, err
	}
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		return nil, nil, os.NewSyscallError("lseek", err)
	}
	names, starts = make([]byte, 0, size), make([]uint32, 0, count)
	err = eachName(fd, buf, func(name []byte) {
		starts = append(starts, uint32(len(names)))
		names = append(append(names, name...), 0)
	})
	return names, starts, err
}

// eachName calls f with the name of every entry of the open directory fd
// from where its offset stands, but "." and "..", reading the kernel's
// records into buf. The name is valid until f returns.
func eachName(fd int, buf []byte, f func(name []byte)) error {
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return os.NewSyscallError("getdents64", err)
		}
		if n == 0 {
			return nil
		}
		// A record is a linux_dirent64: inode (8 bytes), offset (8), its
		// own length (2), type (1), then the name and a NUL.
		for rec := buf[:n]; len(rec) > 0; {
			reclen := binary.NativeEndian.Uint16(rec[16:])
			name := rec[19:reclen]
			name = name[:bytes.IndexByte(name, 0)]
			if string(name) != "." && string(name) != ".." {
				f(name)
			}
			rec = rec[reclen:]
		}
	}
}

// nameAt returns the name that starts at start in names.
func nameAt(names []byte, start uint32) []byte {
	name := names[start:]
	return name[:bytes.IndexByte(name, 0)]
}

// listable checks that others may list dir: read it (o+r), look at its
// entries and enter it (o+x), and enter every folder on the way from root.
// root itself is the operator's choice and is not checked. A server run as
// root could otherwise list a folder that its owner keeps private.
func listable(root, dir string) error {
	if dir == root {
		return nil
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	for i := range len(rel) + 1 {
		if i < len(rel) && rel[i] != '/' {
			continue
		}
		folder := filepath.Join(root, rel[:i])
		if err := unix.Stat(folder, &st); err != nil {
			return fmt.Errorf("directory listing: %w", os.NewSyscallError("stat "+folder, err))
		}
		want := uint32(0o001)
		if i == len(rel) {
			want = 0o005
		}
		if st.Mode&want != want {
			return fmt.Errorf("directory listing: %s: others may not list it: %w", dir, fs.ErrPermission)
		}
	}
	return nil
}

// parts is how many parts the page has: the part before the entries, one
// for each entry, and the tail.
func (l *listing) parts() int { return len(l.starts) + 2 }

// appendPart appends part i of the page to b: 0 is everything before the
// first entry (the document's head and the parent row), 1 to len(starts) are
// the entries' rows, and the last part closes the document.
func (l *listing) appendPart(b []byte, i int) []byte {
	switch {
	case i == 0:
		b = append(b, listingHead...)
		b = append(b, l.title...)
		b = append(b, listingMid...)
		b = append(b, l.title...)
		b = append(b, listingTable...)
		if l.base != "" {
			parent := l.base[:strings.LastIndexByte(l.base, '/')]
			if parent == "" {
				parent = "/"
			}
			b = append(b, `<tr><td><a href="`...)
			b = append(b, parent...)
			b = append(b, `">../</a></td><td></td><td></td></tr>`+"\n"...)
		}
		return b
	case i <= len(l.starts):
		return l.appendEntry(b, i-1)
	}
	return append(b, listingTail...)
}

// appendEntry appends the table row of entry i: a link to it, its size and
// its modification time. A directory's size cell is empty.
func (l *listing) appendEntry(b []byte, i int) []byte {
	name, size := nameAt(l.names, l.starts[i]), l.sizes[i]
	b = append(b, `<tr><td><a href="`...)
	b = append(b, l.base...)
	b = append(b, '/')
	b = appendSegment(b, name)
	b = append(b, `">`...)
	b = appendText(b, name)
	if size < 0 {
		b = append(b, '/')
	}
	b = append(b, `</a></td><td>`...)
	if size >= 0 {
		b = strconv.AppendFloat(b, float64(size)/1024, 'f', 1, 64)
		b = append(b, " KB"...)
	}
	b = append(b, `</td><td>`...)
	b = time.Unix(l.mtimes[i], 0).UTC().AppendFormat(b, "2006-01-02 15:04:05")
	return append(b, "</td></tr>\n"...)
}

// produce is the source's handler: it generates the next parts of the page
// into the pipe, as many as fill the room the pipe has, so the page is made
// as fast as the client reads it and no faster. Once the last part is
// written the listing is closed: its source detaches, and the reader is
// told, once the pipe has drained, that the page is complete.
func (l *listing) produce() {
	room := l.source.pipe.room()
	b := l.scratch.listing[:0]
	for l.next < l.parts() && len(b) < room {
		b = l.appendPart(b, l.next)
		l.next++
	}
	l.scratch.listing = b
	if err := l.source.write(b); err != nil {
		xlog.Errorf("%v", err)
		l.close()
		return
	}
	if l.next == l.parts() {
		l.close()
	}
}

// close detaches the listing's source, and with it lets go of the table.
// It is also the source's close callback: when the reader goes away, the
// listing goes too.
func (l *listing) close() {
	if l.closed {
		return
	}
	l.closed = true
	l.source.close()
}

// appendHTML appends s escaped for HTML text or an attribute value, as
// html.EscapeString escapes it, without building a string.
func appendHTML(b []byte, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '\'':
			b = append(b, "&#39;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '"':
			b = append(b, "&#34;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendText appends s as the page shows a name: escaped for HTML, with
// each run of bytes that are not UTF-8 and each control character (a line
// break, an ESC) shown as U+FFFD. The page is declared UTF-8, and a reader
// should see neither bytes the browser would guess at nor invisible
// characters; the href keeps the bytes, so the link still works.
func appendText(b []byte, s []byte) []byte {
	invalid := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			if !invalid {
				b = append(b, "\uFFFD"...)
			}
			invalid = true
			i++
			continue
		case unicode.IsControl(r):
			b = append(b, "\uFFFD"...)
		default:
			b = appendHTML(b, s[i:i+size])
		}
		invalid = false
		i += size
	}
	return b
}

// appendSegment appends s as one segment of a link: every byte but the
// unreserved characters, the sub-delims, ":" and "@" (RFC 3986 §3.3 pchar)
// percent-encoded — "/", "?", "#", "%", spaces and non-ASCII bytes among
// them — and the "&" and "'" left escaped for the HTML attribute.
func appendSegment(b []byte, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '&':
			b = append(b, "&amp;"...)
		case c == '\'':
			b = append(b, "&#39;"...)
		case isPathChar(c):
			b = append(b, c)
		default:
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return b
}

// listingBase returns the path that entry names are appended to in links:
// pathname with repeated slashes collapsed and the trailing one removed
// ("/" and "//" give "", "/test/" gives "/test"), each segment encoded by
// appendSegment, so it is ready for the href attribute.
func listingBase(pathname string) string {
	var b []byte
	for seg := range strings.SplitSeq(pathname, "/") {
		if seg != "" {
			b = append(b, '/')
			b = appendSegment(b, []byte(seg))
		}
	}
	return string(b)
}

// isPathChar reports whether c may appear unencoded in a path segment.
func isPathChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@", c) >= 0
}
