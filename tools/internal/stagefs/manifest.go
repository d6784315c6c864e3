package stagefs

import (
	"fmt"
	"path"
	"strings"
)

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

// ParseManifest reads a CHANGES manifest. Each non-blank line that does not
// start with # is a kind letter (A, M or D), white space, and a path
// relative to the stage folder; the rest of the line is the path, so names
// with spaces need no quoting. Every line that cannot be used is reported,
// so a student fixes the whole file in one pass.
func ParseManifest(data []byte) ([]Entry, []LineError) {
	var entries []Entry
	var errs []LineError
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind := Kind(line[0])
		rest := line[1:]
		if (kind != Added && kind != Modified && kind != Removed) || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			errs = append(errs, LineError{n, fmt.Sprintf(`cannot parse %q: want "A path", "M path" or "D path"`, line)})
			continue
		}
		p := strings.TrimSpace(rest)
		if msg := checkPath(p); msg != "" {
			errs = append(errs, LineError{n, msg})
			continue
		}
		if first, ok := seen[p]; ok {
			errs = append(errs, LineError{n, fmt.Sprintf("%s is already listed on line %d", p, first)})
			continue
		}
		seen[p] = n
		entries = append(entries, Entry{Change{kind, p}, n})
	}
	return entries, errs
}

// checkPath explains why p cannot name a compared file, or returns "".
func checkPath(p string) string {
	switch {
	case p == ReadmeName || p == ManifestName:
		return fmt.Sprintf("%s is never compared between stages; do not list it", p)
	case strings.Contains(p, `\`):
		return fmt.Sprintf("%s: write paths with forward slashes", p)
	case path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") || path.Clean(p) != p || p == ".":
		return fmt.Sprintf("%s: want a clean path relative to the stage folder, such as loop.go or testdata/listing.golden", p)
	}
	return ""
}
