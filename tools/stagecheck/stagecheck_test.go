package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/harness"
)

// TestRepository runs every check on the real repository, so go test ./...
// fails on an undeclared edit, a forbidden import or a roadmap mismatch.
func TestRepository(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.run(root) {
				t.Error(p)
			}
		})
	}
}

const roadmap = `# Roadmap

| # | Folder | Module introduced | Milestone |
|---|--------|-------------------|-----------|
| 6 | ` + "`06-listener`" + ` | listener, connection | reversal |
| 7 | ` + "`07-core-loop`" + ` | core, loop | reversal |
| 8 | ` + "`08-nonblocking`" + ` | nonblocking | no blocking |

Text after the table.
`

// session6 is session.go of stages 6 and 7; stage 8 modifies check and
// adds listing.
const (
	session6   = "package main\n\n// check validates.\nfunc check() int { return 1 }\n\n// serve serves.\nfunc serve() {}\n"
	session8   = "package main\n\n// check validates.\nfunc check() int { return 2 }\n\n// serve serves.\nfunc serve() {}\n\nfunc listing() {}\n"
	manifest8  = "M session.go\n~ session.go check\n+ session.go listing\n"
	serveFixed = "func serve() { fixed() }"
)

// baseTree is a small clean repository: three stages whose manifests match,
// a roadmap that lists them, and a common package.
func baseTree() map[string]string {
	return map[string]string{
		"go.mod":                              "module expserver-go\n\ngo 1.26\n",
		"docs/roadmap.md":                     roadmap,
		"common/xlog/xlog.go":                 "package xlog\n\nimport \"os\"\n\nvar _ = os.Stderr\n",
		"stages/public/index.html":            "<h1>hi</h1>\n",
		"stages/06-listener/main.go":          "package main\n\nimport (\n\t\"os\"\n\n\t\"expserver-go/common/xlog\"\n\n\t\"golang.org/x/sys/unix\"\n)\n",
		"stages/06-listener/listener.go":      "package main\n// listener v1\n",
		"stages/06-listener/old.go":           "package main\n",
		"stages/06-listener/README.md":        "# Stage 6\n",
		"stages/06-listener/session.go":       session6,
		"stages/07-core-loop/main.go":         "package main\n\nimport (\n\t\"os\"\n\n\t\"expserver-go/common/xlog\"\n\n\t\"golang.org/x/sys/unix\"\n)\n// now with a loop\n",
		"stages/07-core-loop/listener.go":     "package main\n// listener v1\n",
		"stages/07-core-loop/old.go":          "package main\n",
		"stages/07-core-loop/loop.go":         "package main\n// loop\n",
		"stages/07-core-loop/README.md":       "# Stage 7\n",
		"stages/07-core-loop/session.go":      session6,
		"stages/07-core-loop/CHANGES":         "# Stage 7 adds the loop.\nA loop.go\n\nM main.go\n",
		"stages/08-nonblocking/main.go":       "package main\n\nimport (\n\t\"os\"\n\n\t\"expserver-go/common/xlog\"\n\n\t\"golang.org/x/sys/unix\"\n)\n// now with a loop\n",
		"stages/08-nonblocking/listener.go":   "package main\n// listener v2\n",
		"stages/08-nonblocking/loop.go":       "package main\n// loop\n",
		"stages/08-nonblocking/main_test.go":  "package main\n\nimport (\n\t\"net/http\"\n\t\"testing\"\n\n\t\"github.com/google/go-cmp/cmp\"\n\t\"gotest.tools/v3/poll\"\n)\n",
		"stages/08-nonblocking/testdata/a.go": "package main\n\nimport \"net/http\"\n",
		"stages/08-nonblocking/README.md":     "# Stage 8\n",
		"stages/08-nonblocking/CHANGES.diff":  "generated, never compared\n",
		"stages/08-nonblocking/session.go":    session8,
		"stages/08-nonblocking/CHANGES":       "M listener.go\nA main_test.go\nA testdata/a.go\nD old.go\n" + manifest8,
	}
}

// writeTree writes files into a fresh temporary repository.
func writeTree(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	if err := harness.WriteTree(root, files); err != nil {
		t.Fatal(err)
	}
	return root
}

// runAll runs every check, as main does.
func runAll(root string) []string {
	var problems []string
	for _, c := range checks {
		problems = append(problems, c.run(root)...)
	}
	return problems
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(files map[string]string)
		remove []string
		want   []string
	}{
		{
			name: "clean",
			edit: func(map[string]string) {},
		},
		{
			name: "readme and manifest differences are not changes",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/README.md"] = "# Something else entirely\n"
			},
		},
		{
			name: "undeclared modification",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/loop.go"] = "package main\n// loop, edited\n"
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/loop.go: modified since 07-core-loop but not declared in CHANGES; carry it forward, or declare it (add "M loop.go")`,
			},
		},
		{
			name: "undeclared addition in a subfolder",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/testdata/listing.golden"] = "<ul></ul>\n"
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/testdata/listing.golden: added since 07-core-loop but not declared in CHANGES (add "A testdata/listing.golden")`,
			},
		},
		{
			name: "declared but unchanged",
			edit: func(f map[string]string) {
				f["stages/07-core-loop/CHANGES"] = "A loop.go\nM main.go\nM listener.go\n"
			},
			want: []string{
				`stagecheck: stages/07-core-loop/CHANGES:3: declares "M listener.go" but listener.go is identical in 06-listener and 07-core-loop`,
			},
		},
		{
			name: "declared file that exists nowhere",
			edit: func(f map[string]string) {
				f["stages/07-core-loop/CHANGES"] = "A loop.go\nM main.go\nA pipe.go\n"
			},
			want: []string{
				`stagecheck: stages/07-core-loop/CHANGES:3: declares "A pipe.go" but pipe.go exists in neither 06-listener nor 07-core-loop`,
			},
		},
		{
			name: "added declared for a file that existed before",
			edit: func(f map[string]string) {
				f["stages/07-core-loop/CHANGES"] = "A loop.go\nA main.go\n"
			},
			want: []string{
				`stagecheck: stages/07-core-loop/CHANGES:2: declares "A main.go" but main.go was modified since 06-listener (write "M main.go")`,
			},
		},
		{
			name:   "missing manifest",
			remove: []string{"stages/07-core-loop/CHANGES"},
			want: []string{
				`stagecheck: stages/07-core-loop/CHANGES: missing; list each file added (A), modified (M) or removed (D) since 06-listener, and in Go files each declaration added (+), modified (~) or removed (-)`,
			},
		},
		{
			name: "removed file undeclared",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/CHANGES"] = "M listener.go\nA main_test.go\nA testdata/a.go\n" + manifest8
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/old.go: removed since 07-core-loop but not declared in CHANGES (add "D old.go")`,
			},
		},
		{
			name: "removal declared for a file that was kept",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/CHANGES"] = "M listener.go\nA main_test.go\nA testdata/a.go\nD old.go\nD loop.go\n" + manifest8
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/CHANGES:5: declares "D loop.go" but loop.go is identical in 07-core-loop and 08-nonblocking`,
			},
		},
		{
			name: "unreadable manifest lines",
			edit: func(f map[string]string) {
				f["stages/07-core-loop/CHANGES"] = "A loop.go\nM main.go\nX foo.go\nMmain.go\nM main.go\nM README.md\nM ../06-listener/main.go\n"
			},
			want: []string{
				`stagecheck: stages/07-core-loop/CHANGES:3: cannot parse "X foo.go": want "A path", "M path" or "D path" for a file, "+ path name", "~ path name" or "- path name" for a declaration`,
				`stagecheck: stages/07-core-loop/CHANGES:4: cannot parse "Mmain.go": want "A path", "M path" or "D path" for a file, "+ path name", "~ path name" or "- path name" for a declaration`,
				`stagecheck: stages/07-core-loop/CHANGES:5: main.go is already listed on line 2`,
				`stagecheck: stages/07-core-loop/CHANGES:6: README.md is never compared between stages; do not list it`,
				`stagecheck: stages/07-core-loop/CHANGES:7: ../06-listener/main.go: want a clean path relative to the stage folder, such as loop.go or testdata/listing.golden`,
			},
		},
		{
			name: "undeclared declaration change",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/CHANGES"] = strings.Replace(f["stages/08-nonblocking/CHANGES"], "~ session.go check\n", "", 1)
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/session.go: check modified since 07-core-loop but not declared in CHANGES; carry it forward, or declare it (add "~ session.go check")`,
			},
		},
		{
			name: "a changed doc comment is a change",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/session.go"] = strings.Replace(session8, "// serve serves.", "// serve serves files.", 1)
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/session.go: serve modified since 07-core-loop but not declared in CHANGES; carry it forward, or declare it (add "~ session.go serve")`,
			},
		},
		{
			name: "fix not carried forward",
			edit: func(f map[string]string) {
				f["stages/07-core-loop/session.go"] = strings.Replace(session6, "func serve() {}", serveFixed, 1)
				f["stages/07-core-loop/CHANGES"] += "M session.go\n~ session.go serve\n"
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/session.go: serve is as in 06-listener, but 07-core-loop changed it; carry it forward (go run ./tools/stagediff -carry 7), or declare it (add "~ session.go serve")`,
			},
		},
		{
			name: "fix carried forward",
			edit: func(f map[string]string) {
				f["stages/07-core-loop/session.go"] = strings.Replace(session6, "func serve() {}", serveFixed, 1)
				f["stages/07-core-loop/CHANGES"] += "M session.go\n~ session.go serve\n"
				f["stages/08-nonblocking/session.go"] = strings.Replace(session8, "func serve() {}", serveFixed, 1)
			},
		},
		{
			name: "declared declaration change that did not happen",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/CHANGES"] += "~ session.go serve\n"
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/CHANGES:8: declares "~ session.go serve" but serve in session.go is identical in 07-core-loop and 08-nonblocking`,
			},
		},
		{
			name: "declaration declared with the wrong kind, or nowhere",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/CHANGES"] = strings.Replace(f["stages/08-nonblocking/CHANGES"], "+ session.go listing", "~ session.go listing\n- session.go nothing", 1)
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/CHANGES:7: declares "~ session.go listing" but listing in session.go was added since 07-core-loop (write "+ session.go listing")`,
				`stagecheck: stages/08-nonblocking/CHANGES:8: declares "- session.go nothing" but nothing in session.go exists in neither 07-core-loop nor 08-nonblocking`,
			},
		},
		{
			name: "declaration lines under an added file",
			edit: func(f map[string]string) {
				f["stages/07-core-loop/loop.go"] = "package main\n\nfunc loop() {}\n"
				f["stages/08-nonblocking/loop.go"] = f["stages/07-core-loop/loop.go"]
				f["stages/07-core-loop/CHANGES"] += "+ loop.go loop\n"
			},
			want: []string{
				`stagecheck: stages/07-core-loop/CHANGES:5: declares "+ loop.go loop" but loop.go was added since 06-listener; an added or removed file is declared by its file line alone`,
			},
		},
		{
			name: "declaration lines without the file line",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/CHANGES"] = strings.Replace(f["stages/08-nonblocking/CHANGES"], "M session.go\n", "", 1)
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/session.go: modified since 07-core-loop but not declared in CHANGES; carry it forward, or declare it (add "M session.go")`,
			},
		},
		{
			name:   "stages not consecutive",
			remove: []string{"stages/07-core-loop/main.go", "stages/07-core-loop/listener.go", "stages/07-core-loop/old.go", "stages/07-core-loop/loop.go", "stages/07-core-loop/README.md", "stages/07-core-loop/CHANGES", "stages/07-core-loop/session.go"},
			edit: func(f map[string]string) {
				f["docs/roadmap.md"] = strings.Replace(roadmap, "| 7 | `07-core-loop` | core, loop | reversal |\n", "", 1)
			},
			want: []string{
				`stagecheck: stages/08-nonblocking: there is no stage 7 folder before it; stage folders must be consecutive`,
			},
		},
		{
			name: "stage imports net/http",
			edit: func(f map[string]string) {
				f["stages/07-core-loop/loop.go"] = "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n)\n"
				f["stages/08-nonblocking/loop.go"] = f["stages/07-core-loop/loop.go"]
			},
			want: []string{
				`stagecheck: stages/07-core-loop/loop.go:5: imports "net/http"; stage servers are built on raw epoll, never on net/http`,
				`stagecheck: stages/08-nonblocking/loop.go:5: imports "net/http"; stage servers are built on raw epoll, never on net/http`,
			},
		},
		{
			name: "stage imports net, a net/http subpackage and a third-party package",
			edit: func(f map[string]string) {
				f["stages/06-listener/old.go"] = "package main\n\nimport \"net\"\nimport \"net/http/httputil\"\nimport \"github.com/google/go-cmp/cmp\"\nimport \"expserver-go/tests\"\n"
				f["stages/07-core-loop/old.go"] = f["stages/06-listener/old.go"]
			},
			want: []string{
				`stagecheck: stages/06-listener/old.go:3: imports "net"; stage servers use raw sockets from golang.org/x/sys/unix, and address resolution lives in common/netaddr`,
				`stagecheck: stages/06-listener/old.go:4: imports "net/http/httputil"; stage servers are built on raw epoll, never on net/http`,
				`stagecheck: stages/06-listener/old.go:5: imports "github.com/google/go-cmp/cmp"; stage code may import only the standard library, golang.org/x/sys/unix and expserver-go/common/...`,
				`stagecheck: stages/06-listener/old.go:6: imports "expserver-go/tests"; stage code may import only the standard library, golang.org/x/sys/unix and expserver-go/common/...`,
				`stagecheck: stages/07-core-loop/old.go:3: imports "net"; stage servers use raw sockets from golang.org/x/sys/unix, and address resolution lives in common/netaddr`,
				`stagecheck: stages/07-core-loop/old.go:4: imports "net/http/httputil"; stage servers are built on raw epoll, never on net/http`,
				`stagecheck: stages/07-core-loop/old.go:5: imports "github.com/google/go-cmp/cmp"; stage code may import only the standard library, golang.org/x/sys/unix and expserver-go/common/...`,
				`stagecheck: stages/07-core-loop/old.go:6: imports "expserver-go/tests"; stage code may import only the standard library, golang.org/x/sys/unix and expserver-go/common/...`,
			},
		},
		{
			name: "stage test imports outside its list",
			edit: func(f map[string]string) {
				f["stages/08-nonblocking/main_test.go"] = "package main\n\nimport (\n\t\"net/http\"\n\t\"github.com/stretchr/testify/assert\"\n)\n"
			},
			want: []string{
				`stagecheck: stages/08-nonblocking/main_test.go:5: imports "github.com/stretchr/testify/assert"; stage tests may import only the standard library, golang.org/x/sys/unix, expserver-go/common/..., expserver-go/tests/harness, github.com/google/go-cmp and gotest.tools/v3`,
			},
		},
		{
			name: "common imports a stage, tests and tools",
			edit: func(f map[string]string) {
				f["common/xlog/xlog.go"] = "package xlog\n\nimport (\n\t\"net/http\"\n\t\"expserver-go/stages/06-listener\"\n\t\"expserver-go/tests\"\n\t\"expserver-go/tools/internal/stagefs\"\n\t\"expserver-go/common/buffer\"\n\t\"expserver-go/stagesfoo\"\n)\n"
			},
			want: []string{
				`stagecheck: common/xlog/xlog.go:5: imports "expserver-go/stages/06-listener"; common/ is the code the course hands over and must not import stages/, tests/ or tools/`,
				`stagecheck: common/xlog/xlog.go:6: imports "expserver-go/tests"; common/ is the code the course hands over and must not import stages/, tests/ or tools/`,
				`stagecheck: common/xlog/xlog.go:7: imports "expserver-go/tools/internal/stagefs"; common/ is the code the course hands over and must not import stages/, tests/ or tools/`,
			},
		},
		{
			name:   "roadmap missing",
			remove: []string{"docs/roadmap.md"},
			want: []string{
				`stagecheck: docs/roadmap.md: missing; it must hold the stage table | # | Folder | Module introduced | Milestone |`,
			},
		},
		{
			name: "roadmap without a table",
			edit: func(f map[string]string) {
				f["docs/roadmap.md"] = "# Roadmap\n\nSoon.\n"
			},
			want: []string{
				`stagecheck: docs/roadmap.md: no stage table; want one with the header | # | Folder | Module introduced | Milestone |`,
			},
		},
		{
			name: "roadmap missing a row",
			edit: func(f map[string]string) {
				f["docs/roadmap.md"] = strings.Replace(roadmap, "| 7 | `07-core-loop` | core, loop | reversal |\n", "", 1)
			},
			want: []string{
				`stagecheck: stages/07-core-loop: folder is not listed in docs/roadmap.md`,
			},
		},
		{
			name: "roadmap in the wrong order",
			edit: func(f map[string]string) {
				f["docs/roadmap.md"] = "| # | Folder | Module introduced | Milestone |\n|---|---|---|---|\n" +
					"| 6 | `06-listener` | a | b |\n| 8 | `08-nonblocking` | a | b |\n| 7 | `07-core-loop` | a | b |\n"
			},
			want: []string{
				`stagecheck: docs/roadmap.md:5: 07-core-loop is listed after 08-nonblocking; rows must be in stage order`,
			},
		},
		{
			name: "roadmap with wrong numbers",
			edit: func(f map[string]string) {
				f["docs/roadmap.md"] = "| # | Folder | Module introduced | Milestone |\n|---|---|---|---|\n" +
					"| 06 | `06-listener` | a | b |\n| 8 | `07-core-loop` | a | b |\n| eight | `08-nonblocking` | a | b |\n"
			},
			want: []string{
				`stagecheck: docs/roadmap.md:3: # is "06" but 06-listener is stage 6`,
				`stagecheck: docs/roadmap.md:4: # is "8" but 07-core-loop is stage 7`,
				`stagecheck: docs/roadmap.md:5: # is "eight" but 08-nonblocking is stage 8`,
			},
		},
		{
			name: "roadmap rows that match no folder",
			edit: func(f map[string]string) {
				f["docs/roadmap.md"] = "| # | Folder | Module introduced | Milestone |\n|---|---|---|---|\n" +
					"| 6 | `06-listener` | a | b |\n| 7 | `07-core` | a | b |\n| 8 | 08-nonblocking | a | b |\n" +
					"| 8 | `08-nonblocking` | a | b |\n| 8 | `08-nonblocking` | a | b |\n| 9 | `09-edge-triggered` | a | b |\n| x | `pipe` | a | b |\n"
			},
			want: []string{
				"stagecheck: docs/roadmap.md:5: Folder cell \"08-nonblocking\" is not a folder name in backticks, such as `06-listener`",
				`stagecheck: docs/roadmap.md:4: lists 07-core but the stage 7 folder is stages/07-core-loop`,
				`stagecheck: docs/roadmap.md:7: 08-nonblocking is already listed on line 6`,
				`stagecheck: docs/roadmap.md:8: lists 09-edge-triggered but stages/09-edge-triggered does not exist`,
				`stagecheck: docs/roadmap.md:9: pipe is not a stage folder name (want NN-name, such as 06-listener)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := baseTree()
			if tt.edit != nil {
				tt.edit(files)
			}
			for _, name := range tt.remove {
				delete(files, name)
			}
			got := runAll(writeTree(t, files))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUnparsableFile checks only the shape of the message, because the
// parser's own wording changes between Go releases.
func TestUnparsableFile(t *testing.T) {
	files := baseTree()
	files["common/xlog/broken.go"] = "package xlog\n\nimport fmt\n"
	got := runAll(writeTree(t, files))
	if len(got) != 1 || !strings.HasPrefix(got[0], "stagecheck: common/xlog/broken.go:3:") {
		t.Errorf("problems = %q, want one starting with %q", got, "stagecheck: common/xlog/broken.go:3:")
	}
}
