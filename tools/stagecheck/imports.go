package main

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"expserver-go/tools/internal/stagefs"
)

// checkImports enforces what stages and common/ may import: stages are
// built from the standard library, raw syscalls and the handed-over common
// packages only, and common/ stays below every stage.
func checkImports(root string) []string {
	mod, err := stagefs.ModulePath(root)
	if err != nil {
		return []string{problemf("go.mod: %v", err)}
	}
	var problems []string
	for _, dir := range []string{stagefs.StagesDir, "common"} {
		err := walkGoFiles(root, dir, func(rel string, imports []importSpec) {
			for _, imp := range imports {
				var why string
				if dir == "common" {
					why = commonRule(mod, imp.path)
				} else {
					why = stageRule(mod, imp.path, strings.HasSuffix(rel, "_test.go"))
				}
				if why != "" {
					problems = append(problems, problemf("%s:%d: imports %q; %s", rel, imp.line, imp.path, why))
				}
			}
		}, func(err error) {
			problems = append(problems, problemf("%v", err))
		})
		if err != nil {
			problems = append(problems, problemf("%v", err))
		}
	}
	return problems
}

// stageRule explains why a file in a stage may not import p, or returns "".
func stageRule(mod, p string, test bool) string {
	switch {
	case !test && (p == "net/http" || strings.HasPrefix(p, "net/http/")):
		return "stage servers are built on raw epoll, never on net/http"
	case !test && p == "net":
		return "stage servers use raw sockets from golang.org/x/sys/unix, and address resolution lives in common/netaddr"
	case isStd(mod, p), p == "golang.org/x/sys/unix", within(p, mod+"/common"):
		return ""
	case test && (within(p, "github.com/google/go-cmp") || within(p, "gotest.tools/v3") || within(p, mod+"/tests/harness")):
		return ""
	case test:
		return "stage tests may import only the standard library, golang.org/x/sys/unix, " + mod + "/common/..., " + mod + "/tests/harness, github.com/google/go-cmp and gotest.tools/v3"
	}
	return "stage code may import only the standard library, golang.org/x/sys/unix and " + mod + "/common/..."
}

// commonRule explains why a file in common/ may not import p, or returns "".
func commonRule(mod, p string) string {
	for _, dir := range []string{"stages", "tests", "tools"} {
		if within(p, mod+"/"+dir) {
			return "common/ is the code the course hands over and must not import stages/, tests/ or tools/"
		}
	}
	return ""
}

// isStd reports whether p is a standard-library package: its first element
// has no dot. The module's own packages look the same, so they are excluded
// by name; "C" is cgo, not a package.
func isStd(mod, p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".") && !within(p, mod) && p != "C"
}

// within reports whether package p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

type importSpec struct {
	path string
	line int
}

// walkGoFiles calls visit with the imports of every Go file under root/dir
// that the go tool would build: like the go tool, it skips testdata and
// folders starting with . or _. A missing dir has no files. A file that
// cannot be parsed goes to bad rather than stopping the walk.
func walkGoFiles(root, dir string, visit func(rel string, imports []importSpec), bad func(error)) error {
	top := filepath.Join(root, dir)
	if _, err := os.Stat(top); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != top && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, rel, src, parser.ImportsOnly)
		if err != nil {
			bad(err)
			return nil
		}
		var imports []importSpec
		for _, spec := range f.Imports {
			ip, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				bad(fmt.Errorf("%s: import %s: %v", rel, spec.Path.Value, err))
				continue
			}
			imports = append(imports, importSpec{ip, fset.Position(spec.Path.Pos()).Line})
		}
		visit(rel, imports)
		return nil
	})
}
