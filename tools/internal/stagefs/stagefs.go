// Package stagefs knows the shape of the stages/ tree that stagecheck and
// stagediff both read: which folders are stages, which files in a stage are
// compared with the stage before, what changed between two stages, and the
// CHANGES manifest that declares it.
package stagefs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// FirstStage is the number of the stage that has no predecessor, so it has
// no CHANGES manifest and no generated diff.
const FirstStage = 6

// Names of the files in a stage folder that are about the stage rather
// than part of it: they always differ between stages, so they are never
// compared. DiffName is the generated diff from the stage before.
const (
	ManifestName = "CHANGES"
	ReadmeName   = "README.md"
	DiffName     = "CHANGES.diff"
)

// AboutStage reports whether rel, relative to a stage folder, is one of the
// files about the stage that are never compared.
func AboutStage(rel string) bool {
	return rel == ManifestName || rel == ReadmeName || rel == DiffName
}

// StagesDir is the folder, relative to the repository root, that holds the
// stage folders.
const StagesDir = "stages"

// Stage is one stage folder, such as stages/10-pipe.
type Stage struct {
	Num  int    // 10
	Name string // "10-pipe"
}

// Dir is the stage folder relative to the repository root, slash-separated,
// as students see it in messages and diff headers.
func (s Stage) Dir() string { return path.Join(StagesDir, s.Name) }

// ModulePath returns the module path declared in root/go.mod.
func ModulePath(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", errors.New("go.mod: no module line")
}

// Stages lists the stage folders under root/stages in number order. A stage
// folder is a directory whose name is two digits, a dash and a name; other
// entries (the public web root, stray files) are not stages.
func Stages(root string) ([]Stage, error) {
	entries, err := os.ReadDir(filepath.Join(root, StagesDir))
	if err != nil {
		return nil, err
	}
	var stages []Stage
	for _, e := range entries {
		num, ok := Number(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		if i := slices.IndexFunc(stages, func(s Stage) bool { return s.Num == num }); i >= 0 {
			return nil, fmt.Errorf("%s and %s both claim stage %d", stages[i].Dir(), path.Join(StagesDir, e.Name()), num)
		}
		stages = append(stages, Stage{Num: num, Name: e.Name()})
	}
	slices.SortFunc(stages, func(a, b Stage) int { return a.Num - b.Num })
	return stages, nil
}

// Number reports the stage number in a stage folder name: 10 for "10-pipe".
// The name must be two digits, a dash and at least one more character.
func Number(name string) (int, bool) {
	if len(name) < 4 || name[2] != '-' || name[0] < '0' || name[0] > '9' || name[1] < '0' || name[1] > '9' {
		return 0, false
	}
	n, err := strconv.Atoi(name[:2])
	return n, err == nil
}

// Find returns the stage numbered n.
func Find(stages []Stage, n int) (Stage, bool) {
	i := slices.IndexFunc(stages, func(s Stage) bool { return s.Num == n })
	if i < 0 {
		return Stage{}, false
	}
	return stages[i], true
}

// Previous returns the stage before s, the one its CHANGES manifest and its
// README diff are written against. Stage folders must be consecutive, so a
// missing one is an error.
func Previous(stages []Stage, s Stage) (Stage, error) {
	prev, ok := Find(stages, s.Num-1)
	if !ok {
		return Stage{}, fmt.Errorf("%s: there is no stage %d folder before it; stage folders must be consecutive", s.Dir(), s.Num-1)
	}
	return prev, nil
}

// Files lists the compared files of stage s: every regular file in its
// folder tree except the top-level README.md, CHANGES and CHANGES.diff, as
// sorted, slash-separated paths relative to the stage folder. Nothing else is
// skipped, because a file left out of the comparison is a file that can
// drift unnoticed. Anything that is neither a regular file nor a directory
// is an error for the same reason: its content cannot be compared.
func Files(root string, s Stage) ([]string, error) {
	dir := filepath.Join(root, StagesDir, s.Name)
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path.Join(s.Dir(), rel))
		}
		if !AboutStage(rel) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	return files, nil
}

// Kind is what happened to a file or a declaration between two stages.
type Kind int

// The kinds of change, as the CHANGES manifest spells them for files.
const (
	Added    Kind = 'A'
	Modified Kind = 'M'
	Removed  Kind = 'D'
)

// String returns the manifest letter of k for a file.
func (k Kind) String() string { return string(rune(k)) }

// DeclSymbol returns the manifest symbol of k for a declaration: + ~ -.
// Declaration lines use symbols rather than letters so that they stand out
// under their file's letter line.
func (k Kind) DeclSymbol() string {
	switch k {
	case Added:
		return "+"
	case Modified:
		return "~"
	case Removed:
		return "-"
	}
	return "?"
}

// Verb returns k as a past participle for messages: "added".
func (k Kind) Verb() string {
	switch k {
	case Added:
		return "added"
	case Modified:
		return "modified"
	case Removed:
		return "removed"
	}
	return "changed"
}

// Change is one file, or one declaration in a Go file, that differs
// between two stages.
type Change struct {
	Kind Kind
	Path string // relative to the stage folder, slash-separated
	Decl string // the declaration's name (see Decl.Name); "" for a whole file
}

// String returns c as a manifest line: "M loop.go" or "~ loop.go handlePipes".
func (c Change) String() string {
	if c.Decl == "" {
		return c.Kind.String() + " " + c.Path
	}
	return c.Kind.DeclSymbol() + " " + c.Path + " " + c.Decl
}

// Subject names what changed in messages: "loop.go" or "handlePipes in loop.go".
func (c Change) Subject() string {
	if c.Decl == "" {
		return c.Path
	}
	return c.Decl + " in " + c.Path
}

// Compare returns the files that differ between stage prev and stage cur,
// sorted by path: a file only in cur is Added, only in prev is Removed, and
// in both with different bytes is Modified.
func Compare(root string, prev, cur Stage) ([]Change, error) {
	before, err := Files(root, prev)
	if err != nil {
		return nil, err
	}
	after, err := Files(root, cur)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, p := range before {
		if _, found := slices.BinarySearch(after, p); !found {
			changes = append(changes, Change{Kind: Removed, Path: p})
		}
	}
	for _, p := range after {
		if _, found := slices.BinarySearch(before, p); !found {
			changes = append(changes, Change{Kind: Added, Path: p})
			continue
		}
		a, b, err := ReadPair(root, prev, cur, p)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a, b) {
			changes = append(changes, Change{Kind: Modified, Path: p})
		}
	}
	slices.SortFunc(changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return changes, nil
}

// ManifestChanges returns everything the CHANGES manifest of cur must
// declare: the files that differ from prev (as Compare returns them), each
// modified Go source file followed by its declarations that differ.
func ManifestChanges(root string, prev, cur Stage) ([]Change, error) {
	files, err := Compare(root, prev, cur)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, c := range files {
		changes = append(changes, c)
		if c.Kind != Modified || !IsGoSource(c.Path) {
			continue
		}
		decls, err := DeclChanges(root, prev, cur, c.Path)
		if err != nil {
			return nil, err
		}
		changes = append(changes, decls...)
	}
	return changes, nil
}

// DeclChanges returns the declarations of Go file p that differ from
// stage prev to stage cur. A side where the file does not exist has no
// declarations.
func DeclChanges(root string, prev, cur Stage, p string) ([]Change, error) {
	before, after, err := ReadPair(root, prev, cur, p)
	if err != nil {
		return nil, err
	}
	old, err := parseOptional(path.Join(prev.Dir(), p), before)
	if err != nil {
		return nil, err
	}
	new, err := parseOptional(path.Join(cur.Dir(), p), after)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, d := range CompareDecls(old, new) {
		changes = append(changes, Change{Kind: d.Kind, Path: p, Decl: d.Name})
	}
	return changes, nil
}

// parseOptional parses src, treating a missing or empty file as one with
// no declarations.
func parseOptional(name string, src []byte) (*GoFile, error) {
	if len(src) == 0 {
		return &GoFile{}, nil
	}
	return ParseGo(name, src)
}

// ReadPair reads file p of stage prev and of stage cur; a side where the
// file does not exist reads as empty, which is how an added or removed file
// is diffed.
func ReadPair(root string, prev, cur Stage, p string) (before, after []byte, err error) {
	if before, err = readOptional(filepath.Join(root, StagesDir, prev.Name, filepath.FromSlash(p))); err != nil {
		return nil, nil, err
	}
	if after, err = readOptional(filepath.Join(root, StagesDir, cur.Name, filepath.FromSlash(p))); err != nil {
		return nil, nil, err
	}
	return before, after, nil
}

func readOptional(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
