package main

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"expserver-go/tools/internal/stagefs"
)

// checkManifests compares each stage's CHANGES manifest with the real
// difference from the stage before it, file by file and, in Go source
// files, declaration by declaration.
func checkManifests(root string) []string {
	stages, err := stagefs.Stages(root)
	if err != nil {
		return []string{problemf("%v", err)}
	}
	var problems []string
	for _, s := range stages {
		if s.Num <= stagefs.FirstStage {
			continue
		}
		prev, err := stagefs.Previous(stages, s)
		if err != nil {
			problems = append(problems, problemf("%v", err))
			continue
		}
		// The stage before prev, if any, tells a fix that was not carried
		// forward from an edit made on purpose.
		before, ok := stagefs.Find(stages, prev.Num-1)
		v := &versions{root: root, cache: map[[2]string]*version{}}
		problems = append(problems, v.checkManifest(prev, s, before, ok)...)
	}
	return problems
}

// versions reads what a stage holds for a file or a declaration, reading
// and parsing each file once.
type versions struct {
	root  string
	cache map[[2]string]*version
}

// version is one stage's copy of one file.
type version struct {
	exists bool
	data   []byte
	decls  map[string]string // name → compared text; nil unless Go source that parses
}

func (v *versions) get(s stagefs.Stage, p string) *version {
	key := [2]string{s.Name, p}
	if got, ok := v.cache[key]; ok {
		return got
	}
	ver := &version{}
	data, err := os.ReadFile(filepath.Join(v.root, filepath.FromSlash(s.Dir()), filepath.FromSlash(p)))
	if err == nil {
		ver.exists, ver.data = true, data
		if stagefs.IsGoSource(p) {
			// A file that does not parse has no declarations here; the
			// imports check reports the syntax error.
			if g, err := stagefs.ParseGo(p, data); err == nil {
				ver.decls = map[string]string{}
				for _, d := range g.Decls {
					ver.decls[d.Name] = d.Text
				}
			}
		}
	}
	v.cache[key] = ver
	return ver
}

// state is what stage s holds for the file or declaration c names:
// whether it exists, and its content.
func (v *versions) state(s stagefs.Stage, c stagefs.Change) (exists bool, content string) {
	ver := v.get(s, c.Path)
	if c.Decl == "" {
		return ver.exists, string(ver.data)
	}
	text, ok := ver.decls[c.Decl]
	return ok, text
}

// checkManifest compares the CHANGES manifest of stage cur with the real
// difference from stage prev. before is the stage before prev, if hasBefore.
func (v *versions) checkManifest(prev, cur, before stagefs.Stage, hasBefore bool) []string {
	manifest := path.Join(cur.Dir(), stagefs.ManifestName)
	data, err := os.ReadFile(filepath.Join(v.root, filepath.FromSlash(manifest)))
	if errors.Is(err, fs.ErrNotExist) {
		return []string{problemf("%s: missing; list each file added (A), modified (M) or removed (D) since %s, and in Go files each declaration added (+), modified (~) or removed (-)", manifest, prev.Name)}
	}
	if err != nil {
		return []string{problemf("%v", err)}
	}
	changes, err := stagefs.ManifestChanges(v.root, prev, cur)
	if err != nil {
		return []string{problemf("%v", err)}
	}

	var problems []string
	entries, lineErrs := stagefs.ParseManifest(data)
	for _, e := range lineErrs {
		problems = append(problems, problemf("%s:%d: %s", manifest, e.Line, e.Msg))
	}
	actual := map[[2]string]stagefs.Kind{}
	for _, c := range changes {
		actual[[2]string{c.Path, c.Decl}] = c.Kind
	}
	declared := map[[2]string]bool{}
	for _, e := range entries {
		key := [2]string{e.Path, e.Decl}
		declared[key] = true
		got, changed := actual[key]
		fileKind, fileChanged := actual[[2]string{e.Path, ""}]
		switch {
		case got == e.Kind && changed:
		case e.Decl != "" && fileChanged && fileKind != stagefs.Modified:
			problems = append(problems, problemf("%s:%d: declares %q but %s was %s since %s; an added or removed file is declared by its file line alone",
				manifest, e.Line, e.String(), e.Path, fileKind.Verb(), prev.Name))
		case changed:
			problems = append(problems, problemf("%s:%d: declares %q but %s was %s since %s (write %q)",
				manifest, e.Line, e.String(), e.Subject(), got.Verb(), prev.Name, stagefs.Change{Kind: got, Path: e.Path, Decl: e.Decl}.String()))
		default:
			if exists, _ := v.state(cur, e.Change); exists {
				problems = append(problems, problemf("%s:%d: declares %q but %s is identical in %s and %s",
					manifest, e.Line, e.String(), e.Subject(), prev.Name, cur.Name))
			} else {
				problems = append(problems, problemf("%s:%d: declares %q but %s exists in neither %s nor %s",
					manifest, e.Line, e.String(), e.Subject(), prev.Name, cur.Name))
			}
		}
	}
	for _, c := range changes {
		if declared[[2]string{c.Path, c.Decl}] {
			continue
		}
		problems = append(problems, v.undeclared(prev, cur, before, hasBefore, c))
	}
	return problems
}

// undeclared reports change c of stage cur that its manifest does not
// list. When cur still holds what the stage before prev held, and prev
// changed or removed it, the likely cause is a fix made in prev and not
// carried forward, and the message says so. (Something prev added and cur
// lacks is more likely a lesson moving on, so it gets the plain message.)
func (v *versions) undeclared(prev, cur, before stagefs.Stage, hasBefore bool, c stagefs.Change) string {
	file := path.Join(cur.Dir(), c.Path)
	what := ""
	if c.Decl != "" {
		what = c.Decl + " "
	}
	if hasBefore {
		curExists, curContent := v.state(cur, c)
		oldExists, oldContent := v.state(before, c)
		prevExists, prevContent := v.state(prev, c)
		if curExists && oldExists && curContent == oldContent && (!prevExists || prevContent != oldContent) {
			return problemf("%s: %sis as in %s, but %s changed it; carry it forward (go run ./tools/stagediff -carry %d), or declare it (add %q)",
				file, what, before.Name, prev.Name, prev.Num, c.String())
		}
	}
	if c.Decl == "" && c.Kind != stagefs.Modified {
		return problemf("%s: %s since %s but not declared in %s (add %q)", file, c.Kind.Verb(), prev.Name, stagefs.ManifestName, c.String())
	}
	return problemf("%s: %s%s since %s but not declared in %s; carry it forward, or declare it (add %q)",
		file, what, c.Kind.Verb(), prev.Name, stagefs.ManifestName, c.String())
}
