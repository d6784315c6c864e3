package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/harness"
)

const identifiers = `# Identifiers

## Stage 6

| Stage | Identifier | Kind | Where | Until | Note |
|---|---|---|---|---|---|
| 6 | ` + "`xps_listener`" + ` | module | network | | |
| 6 | ` + "`xps_loop_create`" + ` | function | main.c | | |
| 6 | ` + "`xps_listener_connection_handler`" + ` | function | xps_listener.c | 6 | renamed |
| 6 | ` + "`logger`" + ` | function | xps_logger.c | | |
| 6 | ` + "`host`" + ` | field | xps_listener_s | | |
| 6 | ` + "`listeners`" + ` | global | main.c | 6 | |
| 6 | ` + "`vec`" + ` | module | lib/vec | | |

## Stage 7 and later

| Stage | Identifier | Kind | Where | Until | Note |
|---|---|---|---|---|---|
| 7 | ` + "`listener_connection_handler`" + ` | function | xps_listener.c | | |
| 7 | ` + "`listeners`" + ` | field | xps_core_s | | |
| 8 | ` + "`xps_buffer_duplicate`" + ` | function | xps_buffer.c | | |
| 9 | ` + "`handle_connections`" + ` | function | xps_loop.c | 9 | |
| 12 | ` + "`xps_get_mime`" + ` | function | xps_mime.c | | |
`

// mirrorsTree is a repository whose every Mirrors comment is right: stage 6
// and stage 10 name what the course has then, and common/ names a function
// of a later stage, which it may.
func mirrorsTree() map[string]string {
	return map[string]string{
		"go.mod":                       "module expserver-go\n\ngo 1.26\n",
		"docs/course-identifiers.md":   identifiers,
		"common/buffer/buffer.go":      "package buffer\n\n// Dup copies b. Mirrors xps_buffer_duplicate.\nfunc Dup() {}\n",
		"common/mime/mime.go":          "package mime\n\n// Type is the media type. Mirrors xps_get_mime.\nfunc Type() {}\n",
		"stages/06-listener/main.go":   "package main\n\n// loopCreate opens epoll. Mirrors xps_loop_create.\nfunc loopCreate() {}\n",
		"stages/06-listener/log.go":    "package main\n\n// logf logs. Mirrors logger; the rest of this sentence_is_free.\nfunc logf() {}\n",
		"stages/06-listener/README.md": "# Stage 6\n\nMirrors nothing_real, but READMEs are not Go.\n",
		"stages/10-pipe/listener.go":   "package main\n\n/*\naccept accepts. Mirrors\nlistener_connection_handler and xps_listener.c. Other_words here.\n*/\nfunc accept() {}\n",
		"stages/10-pipe/testdata/x.go": "package main\n\n// Mirrors testdata_is_skipped.\n",
	}
}

func TestMirrors(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(files map[string]string)
		remove []string
		want   []string
	}{
		{
			name: "clean",
		},
		{
			name: "a name the course does not have",
			edit: func(f map[string]string) {
				f["stages/06-listener/main.go"] = "package main\n\n// read reads. Mirrors connection_recv_handler.\nfunc read() {}\n"
			},
			want: []string{
				"stagecheck: stages/06-listener/main.go:3: Mirrors connection_recv_handler: the course has no connection_recv_handler (docs/course-identifiers.md lists its identifiers per stage)",
			},
		},
		{
			name: "a name from a later stage",
			edit: func(f map[string]string) {
				f["stages/06-listener/main.go"] = "package main\n\n// accept accepts. Mirrors listener_connection_handler.\nfunc accept() {}\n"
			},
			want: []string{
				"stagecheck: stages/06-listener/main.go:3: Mirrors listener_connection_handler: the course has listener_connection_handler only from stage 7 on, not in stage 6",
			},
		},
		{
			name: "a name the course has dropped",
			edit: func(f map[string]string) {
				f["stages/10-pipe/loop.go"] = "package main\n\n// handlePipes serves pipes.\n// Mirrors handle_connections.\nfunc handlePipes() {}\n"
			},
			want: []string{
				"stagecheck: stages/10-pipe/loop.go:4: Mirrors handle_connections: the course has handle_connections only in stage 9, not in stage 10",
			},
		},
		{
			name: "one wrong name of two, across lines, in a test file",
			edit: func(f map[string]string) {
				f["stages/06-listener/main_test.go"] = "package main\n\n// fake is a test double. It\n// Mirrors xps_loop_create /\n// xps_loop_frobnicate. Not_checked.\nfunc fake() {}\n"
			},
			want: []string{
				"stagecheck: stages/06-listener/main_test.go:4: Mirrors xps_loop_create / xps_loop_frobnicate: the course has no xps_loop_frobnicate (docs/course-identifiers.md lists its identifiers per stage)",
			},
		},
		{
			name: "module file names and code spans",
			edit: func(f map[string]string) {
				f["stages/06-listener/files.go"] = "package main\n\n// a. Mirrors xps_listener.h and `vec`.\nfunc a() {}\n\n// b. Mirrors xps_lisener.c.\nfunc b() {}\n\n// c. Mirrors `loop`.\nfunc c() {}\n"
			},
			want: []string{
				"stagecheck: stages/06-listener/files.go:6: Mirrors xps_lisener.c: the course has no xps_lisener.c (docs/course-identifiers.md lists its identifiers per stage)",
				"stagecheck: stages/06-listener/files.go:9: Mirrors `loop`: the course has no loop (docs/course-identifiers.md lists its identifiers per stage)",
			},
		},
		{
			name: "a phrase of plain words names nothing",
			edit: func(f map[string]string) {
				f["stages/06-listener/words.go"] = "package main\n\n// a. Mirrors the course's loop.\nfunc a() {}\n\n// b. Mirrors host and listeners; fields and globals are words.\nfunc b() {}\n"
			},
			want: []string{
				"stagecheck: stages/06-listener/words.go:3: Mirrors the course's loop: names no course identifier; write the course's name as docs/course-identifiers.md lists it",
				"stagecheck: stages/06-listener/words.go:6: Mirrors host and listeners: names no course identifier; write the course's name as docs/course-identifiers.md lists it",
			},
		},
		{
			name: "common may name any stage, but only the course's names",
			edit: func(f map[string]string) {
				f["common/mime/mime.go"] = "package mime\n\n// Type is the media type. Mirrors xps_mime_lookup.\nfunc Type() {}\n"
			},
			want: []string{
				"stagecheck: common/mime/mime.go:3: Mirrors xps_mime_lookup: the course has no xps_mime_lookup (docs/course-identifiers.md lists its identifiers per stage)",
			},
		},
		{
			name:   "table missing",
			remove: []string{"docs/course-identifiers.md"},
			want: []string{
				"stagecheck: docs/course-identifiers.md: missing; it must hold the table | Stage | Identifier | Kind | Where | Until | Note | that Mirrors comments are checked against",
			},
		},
		{
			name:   "no Mirrors comments need no table",
			remove: []string{"docs/course-identifiers.md", "common/buffer/buffer.go", "common/mime/mime.go", "stages/06-listener/main.go", "stages/06-listener/log.go", "stages/10-pipe/listener.go"},
		},
		{
			name: "table without the header",
			edit: func(f map[string]string) {
				f["docs/course-identifiers.md"] = "| Stage | Name |\n|---|---|\n| 6 | `xps_loop_create` |\n"
			},
			want: []string{
				"stagecheck: docs/course-identifiers.md: no identifier table; want one with the header | Stage | Identifier | Kind | Where | Until | Note |",
			},
		},
		{
			name: "unusable table rows",
			edit: func(f map[string]string) {
				f["docs/course-identifiers.md"] = identifiers + "\n| Stage | Identifier | Kind | Where | Until | Note |\n|---|---|---|---|---|---|\n" +
					"| six | `a_b` | function | x | | |\n" +
					"| 5 | `a_b` | function | x | | |\n" +
					"| 7 | a_b | function | x | | |\n" +
					"| 7 | `a b` | function | x | | |\n" +
					"| 7 | `a_b` | method | x | | |\n" +
					"| 7 | `a_b` | function | x | 6 | |\n" +
					"| 7 | `a_b` | function |\n"
			},
			want: []string{
				`stagecheck: docs/course-identifiers.md:27: Stage "six" is not a stage number (6 or more)`,
				`stagecheck: docs/course-identifiers.md:28: Stage "5" is not a stage number (6 or more)`,
				"stagecheck: docs/course-identifiers.md:29: Identifier \"a_b\" is not one C name or file name in backticks, such as `xps_loop_create`",
				"stagecheck: docs/course-identifiers.md:30: Identifier \"`a b`\" is not one C name or file name in backticks, such as `xps_loop_create`",
				`stagecheck: docs/course-identifiers.md:31: Kind "method" of a_b is not one of module, file, type, function, constant, field, global`,
				`stagecheck: docs/course-identifiers.md:32: Until "6" of a_b is not a stage number from 7 on (leave it empty while the course keeps the name)`,
				`stagecheck: docs/course-identifiers.md:33: row has 3 cells; want Stage, Identifier, Kind, Where, Until and Note`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := mirrorsTree()
			if tt.edit != nil {
				tt.edit(files)
			}
			for _, name := range tt.remove {
				delete(files, name)
			}
			root := t.TempDir()
			if err := harness.WriteTree(root, files); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, checkMirrors(root)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSentence checks where a Mirrors phrase ends: file names keep their
// dots, and the phrase stops at the first full stop or semicolon.
func TestSentence(t *testing.T) {
	for in, want := range map[string]string{
		" xps_loop.c and  xps_loop.h. Then more.": "xps_loop.c and xps_loop.h",
		" xps_loop_run; the loop is ours":         "xps_loop_run",
		" xps_loop_run.":                          "xps_loop_run",
		" the part of\tx_y":                       "the part of x_y",
	} {
		if got := sentence(in); got != want {
			t.Errorf("sentence(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCourseIdentifiersTable checks that the real table parses without a
// problem and knows the names the stages use most, so an edit that breaks
// its format cannot make every Mirrors comment look wrong, or right.
func TestCourseIdentifiersTable(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	introduced := map[string]int{
		"xps_loop_create":              6,
		"connection_loop_read_handler": 7,
		"xps_pipe_sink_read":           10,
		"session_process_request":      14,
		"xps_directory_browsing":       17,
	}
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(identifiersFile)))
	if err != nil {
		t.Fatal(err)
	}
	names, problems := parseIdentifiers(data)
	if names == nil {
		t.Fatalf("%s has no table with the header %s", identifiersFile, identifiersHeader)
	}
	for _, p := range problems {
		t.Error(p)
	}
	for id, stage := range introduced {
		n, ok := names[id]
		if !ok || !n.at(stage) || n.at(stage-1) {
			t.Errorf("%s: spans %+v, want it introduced in stage %d", id, n.spans, stage)
		}
	}
	if n := names["connection_read_handler"]; !n.at(9) || n.at(8) || n.at(10) {
		t.Errorf("connection_read_handler: spans %+v, want stage 9 only", n.spans)
	}
}
