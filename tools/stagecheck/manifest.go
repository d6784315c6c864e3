package main

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"expserver-go/tools/internal/stagefs"
)

// checkManifests compares each stage's CHANGES manifest with the real
// difference from the stage before it.
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
		problems = append(problems, checkManifest(root, prev, s)...)
	}
	return problems
}

// checkManifest compares the CHANGES manifest of stage cur with the real
// difference from stage prev.
func checkManifest(root string, prev, cur stagefs.Stage) []string {
	manifest := path.Join(cur.Dir(), stagefs.ManifestName)
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(manifest)))
	if errors.Is(err, fs.ErrNotExist) {
		return []string{problemf("%s: missing; list each file added (A), modified (M) or removed (D) since %s", manifest, prev.Name)}
	}
	if err != nil {
		return []string{problemf("%v", err)}
	}
	changes, err := stagefs.Compare(root, prev, cur)
	if err != nil {
		return []string{problemf("%v", err)}
	}
	current, err := stagefs.Files(root, cur)
	if err != nil {
		return []string{problemf("%v", err)}
	}

	var problems []string
	entries, lineErrs := stagefs.ParseManifest(data)
	for _, e := range lineErrs {
		problems = append(problems, problemf("%s:%d: %s", manifest, e.Line, e.Msg))
	}
	actual := map[string]stagefs.Kind{}
	for _, c := range changes {
		actual[c.Path] = c.Kind
	}
	declared := map[string]bool{}
	for _, e := range entries {
		declared[e.Path] = true
		got, changed := actual[e.Path]
		switch {
		case got == e.Kind:
		case changed:
			problems = append(problems, problemf("%s:%d: declares %q but %s was %s since %s (write %q)",
				manifest, e.Line, e.Kind.String()+" "+e.Path, e.Path, got.Verb(), prev.Name, got.String()+" "+e.Path))
		case slices.Contains(current, e.Path):
			problems = append(problems, problemf("%s:%d: declares %q but %s is identical in %s and %s",
				manifest, e.Line, e.Kind.String()+" "+e.Path, e.Path, prev.Name, cur.Name))
		default:
			problems = append(problems, problemf("%s:%d: declares %q but %s exists in neither %s nor %s",
				manifest, e.Line, e.Kind.String()+" "+e.Path, e.Path, prev.Name, cur.Name))
		}
	}
	for _, c := range changes {
		if declared[c.Path] {
			continue
		}
		problems = append(problems, problemf("%s: %s since %s but not declared in %s (add %q)",
			path.Join(cur.Dir(), c.Path), c.Kind.Verb(), prev.Name, stagefs.ManifestName, c.Kind.String()+" "+c.Path))
	}
	return problems
}
