package stagefs

import (
	"fmt"
	"path"
	"strings"
)

// A CHANGES manifest lists what a stage changes relative to the stage
// before it, one change per line:
//
//	# Prose lines start with #; blank lines are ignored.
//	A pipe.go                      file added
//	M loop.go                      file modified
//	D connection_test.go           file removed
//	+ loop.go handlePipes          declaration added to a modified Go file
//	~ loop.go (*loop).run          declaration modified
//	- loop.go oldThing             declaration removed
//
// Declaration lines name a function, a method as "(*T).m" or "T.m", or
// one name of a const, var or type declaration; see Decl.Name. They are
// written for Go source files listed with M; an added or removed file is
// one line, and files that are not Go source (testdata, JSON) are compared
// as whole files only.

// Entry is one line of a CHANGES manifest.
type Entry struct {
	Change
	Line int // 1-based
}

// LineError is a manifest line that cannot be used.
type LineError struct {
	Line int
	Msg  string
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

const lineSyntax = `want "A path", "M path" or "D path" for a file, "+ path name", "~ path name" or "- path name" for a declaration`

// ParseManifest reads a CHANGES manifest. A file line is a kind letter,
// white space and a path relative to the stage folder; the rest of the
// line is the path, so names with spaces need no quoting. A declaration
// line is a kind symbol, white space, the path of a Go file and the
// declaration's name, which has no spaces. Every line that cannot be used
// is reported, so a student fixes the whole file in one pass.
func ParseManifest(data []byte) ([]Entry, []LineError) {
	var entries []Entry
	var errs []LineError
	seen := map[[2]string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		c, ok, msg := parseLine(line)
		if msg != "" {
			errs = append(errs, LineError{n, msg})
		}
		if !ok {
			continue
		}
		key := [2]string{c.Path, c.Decl}
		if first, dup := seen[key]; dup {
			errs = append(errs, LineError{n, fmt.Sprintf("%s is already listed on line %d", c.Subject(), first)})
			continue
		}
		seen[key] = n
		entries = append(entries, Entry{c, n})
	}
	return entries, errs
}

// parseLine reads one manifest line. ok is false for blank lines, prose
// and lines that cannot be used; msg says why a line cannot be used.
func parseLine(line string) (c Change, ok bool, msg string) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return Change{}, false, ""
	}
	bad := fmt.Sprintf("cannot parse %q: %s", line, lineSyntax)
	rest := line[1:]
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return Change{}, false, bad
	}
	rest = strings.TrimSpace(rest)
	switch line[0] {
	case 'A', 'M', 'D':
		if msg := checkPath(rest); msg != "" {
			return Change{}, false, msg
		}
		return Change{Kind: Kind(line[0]), Path: rest}, true, ""
	case '+', '~', '-':
		i := strings.LastIndexAny(rest, " \t")
		if i < 0 {
			return Change{}, false, bad
		}
		c := Change{Kind: declKinds[line[0]], Path: strings.TrimSpace(rest[:i]), Decl: rest[i+1:]}
		if msg := checkPath(c.Path); msg != "" {
			return Change{}, false, msg
		}
		if !IsGoSource(c.Path) {
			return Change{}, false, fmt.Sprintf("%s is not Go source; it is compared as a whole file, so list it as \"M %s\" alone", c.Path, c.Path)
		}
		return c, true, ""
	}
	return Change{}, false, bad
}

var declKinds = map[byte]Kind{'+': Added, '~': Modified, '-': Removed}

// checkPath explains why p cannot name a compared file, or returns "".
func checkPath(p string) string {
	switch {
	case AboutStage(p):
		return fmt.Sprintf("%s is never compared between stages; do not list it", p)
	case strings.Contains(p, `\`):
		return fmt.Sprintf("%s: write paths with forward slashes", p)
	case path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") || path.Clean(p) != p || p == ".":
		return fmt.Sprintf("%s: want a clean path relative to the stage folder, such as loop.go or testdata/listing.golden", p)
	}
	return ""
}

// RewriteManifest returns the manifest old with its declaration lines
// replaced by those in changes (as ManifestChanges returns them). Every
// other line is kept as written: the # prose, blank lines, file lines (even
// wrong ones, which stagecheck goes on reporting) and lines that cannot be
// parsed. The declaration lines of a file follow its file line; a changed
// file that has no line yet is appended with its declarations.
func RewriteManifest(old []byte, changes []Change) []byte {
	decls := map[string][]string{}
	for _, c := range changes {
		if c.Decl != "" {
			decls[c.Path] = append(decls[c.Path], c.String())
		}
	}
	var out []string
	listed := map[string]bool{}
	text := strings.TrimRight(string(old), "\n")
	if text != "" {
		for _, line := range strings.Split(text, "\n") {
			c, ok, _ := parseLine(line)
			if ok && c.Decl != "" {
				continue
			}
			out = append(out, line)
			if ok && !listed[c.Path] {
				listed[c.Path] = true
				out = append(out, decls[c.Path]...)
			}
		}
	}
	for _, c := range changes {
		if c.Decl == "" && !listed[c.Path] {
			listed[c.Path] = true
			out = append(out, c.String())
			out = append(out, decls[c.Path]...)
		}
	}
	return []byte(strings.Join(out, "\n") + "\n")
}
