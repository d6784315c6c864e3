package main

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func unifiedString(oldText, newText string) string {
	var w strings.Builder
	newFileDiff("f", "a/f", "b/f", []byte(oldText), []byte(newText)).unified(&w)
	return w.String()
}

// numbered returns the lines "line 1\n" … "line n\n".
func numbered(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = "line " + strconv.Itoa(i+1) + "\n"
	}
	return lines
}

// edit returns lines with the 1-based line numbers in repl replaced.
func edit(lines []string, repl map[int]string) string {
	out := append([]string(nil), lines...)
	for n, s := range repl {
		out[n-1] = s
	}
	return strings.Join(out, "")
}

func TestUnified(t *testing.T) {
	ten := numbered(10)
	twenty := numbered(20)
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{
			name: "identical files have headers only",
			old:  "a\n",
			new:  "a\n",
			want: "--- a/f\n+++ b/f\n",
		},
		{
			name: "one change in the middle keeps three lines of context",
			old:  strings.Join(ten, ""),
			new:  edit(ten, map[int]string{5: "five\n"}),
			want: "--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+five\n line 6\n line 7\n line 8\n",
		},
		{
			name: "context is cut at the ends of the file",
			old:  strings.Join(ten, ""),
			new:  edit(ten, map[int]string{1: "one\n", 10: "ten\n"}),
			want: "--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n-line 1\n+one\n line 2\n line 3\n line 4\n" +
				"@@ -7,4 +7,4 @@\n line 7\n line 8\n line 9\n-line 10\n+ten\n",
		},
		{
			name: "changes six unchanged lines apart share a hunk",
			old:  strings.Join(twenty, ""),
			new:  edit(twenty, map[int]string{5: "five\n", 12: "twelve\n"}),
			want: "--- a/f\n+++ b/f\n@@ -2,14 +2,14 @@\n line 2\n line 3\n line 4\n-line 5\n+five\n" +
				" line 6\n line 7\n line 8\n line 9\n line 10\n line 11\n-line 12\n+twelve\n line 13\n line 14\n line 15\n",
		},
		{
			name: "changes seven unchanged lines apart get two hunks",
			old:  strings.Join(twenty, ""),
			new:  edit(twenty, map[int]string{5: "five\n", 13: "thirteen\n"}),
			want: "--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+five\n line 6\n line 7\n line 8\n" +
				"@@ -10,7 +10,7 @@\n line 10\n line 11\n line 12\n-line 13\n+thirteen\n line 14\n line 15\n line 16\n",
		},
		{
			name: "a one-line side shows only its start",
			old:  "a\n",
			new:  "b\n",
			want: "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n",
		},
		{
			name: "insertion only",
			old:  "a\nb\n",
			new:  "a\nnew\nb\n",
			want: "--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\n+new\n b\n",
		},
		{
			name: "empty old file",
			old:  "",
			new:  "a\nb\n",
			want: "--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+a\n+b\n",
		},
		{
			name: "empty new file",
			old:  "a\nb\n",
			new:  "",
			want: "--- a/f\n+++ b/f\n@@ -1,2 +0,0 @@\n-a\n-b\n",
		},
		{
			name: "both empty",
			want: "--- a/f\n+++ b/f\n",
		},
		{
			name: "newline added at end of file",
			old:  "a\nb",
			new:  "a\nb\n",
			want: "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n",
		},
		{
			name: "unchanged last line without newline",
			old:  "a\nb\nc",
			new:  "A\nb\nc",
			want: "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n-a\n+A\n b\n c\n\\ No newline at end of file\n",
		},
		{
			name: "added file without newline",
			old:  "",
			new:  "x",
			want: "--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+x\n\\ No newline at end of file\n",
		},
		{
			name: "deletions come before insertions in a run",
			old:  "a\nb\nc\n",
			new:  "x\ny\nz\n",
			want: "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n-a\n-b\n-c\n+x\n+y\n+z\n",
		},
		{
			name: "a new block slides down to end after the repeated closing line, as git places it",
			old:  "func a() {\n}\n\nfunc c() {\n}\n",
			new:  "func a() {\n}\n\nfunc b() {\n}\n\nfunc c() {\n}\n",
			want: "--- a/f\n+++ b/f\n@@ -1,5 +1,8 @@\n func a() {\n }\n \n+func b() {\n+}\n+\n func c() {\n }\n",
		},
		{
			name: "changes separated only by lines that can slide become one run",
			old:  "\tif err != nil {\n\t\tif again(err) || intr(err) {\n\t\t\treturn\n\t\t}\n\t\tfail()\n",
			new:  "\tif err != nil {\n\t\tif again(err) {\n\t\t\tready = false\n\t\t\treturn\n\t\t}\n\t\tif intr(err) {\n\t\t\treturn\n\t\t}\n\t\tfail()\n",
			want: "--- a/f\n+++ b/f\n@@ -1,5 +1,9 @@\n \tif err != nil {\n-\t\tif again(err) || intr(err) {\n" +
				"+\t\tif again(err) {\n+\t\t\tready = false\n+\t\t\treturn\n+\t\t}\n+\t\tif intr(err) {\n \t\t\treturn\n \t\t}\n \t\tfail()\n",
		},
		{
			// Myers alone ends with -d -a -d +b, c, +c, d, +a, b: three runs.
			name: "an insertion slides up to join the change before it",
			old:  "d\na\nd\nc\nd\nb\n",
			new:  "b\nc\nc\nd\na\nb\n",
			want: "--- a/f\n+++ b/f\n@@ -1,6 +1,6 @@\n-d\n-a\n-d\n+b\n+c\n c\n d\n+a\n b\n",
		},
		{
			// Myers alone gives b, +c, b, -a, -d, b, -b, +d, +c.
			name: "runs merge when the lines between them can slide",
			old:  "b\nb\na\nd\nb\nb\n",
			new:  "b\nc\nb\nb\nd\nc\n",
			want: "--- a/f\n+++ b/f\n@@ -1,6 +1,6 @@\n b\n-b\n-a\n-d\n+c\n b\n b\n+d\n+c\n",
		},
		{
			name: "binary files are not diffed line by line",
			old:  "a\x00b",
			new:  "a\x00c",
			want: "Binary files a/f and b/f differ\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, unifiedString(tt.old, tt.new)); diff != "" {
				t.Errorf("unified diff (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEditScriptIsShortest checks on random inputs that the script turns a
// into b and is as short as the longest common subsequence allows.
func TestEditScriptIsShortest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		a := randomLines(r, r.IntN(30))
		b := randomLines(r, r.IntN(30))
		ops := editScript(a, b)
		var gotA, gotB []string
		edits := 0
		for _, o := range ops {
			switch o.kind {
			case opEqual:
				if a[o.a] != b[o.b] {
					t.Fatalf("case %d: equal op pairs %q with %q", iter, a[o.a], b[o.b])
				}
				gotA, gotB = append(gotA, a[o.a]), append(gotB, b[o.b])
			case opDelete:
				gotA = append(gotA, a[o.a])
				edits++
			case opInsert:
				gotB = append(gotB, b[o.b])
				edits++
			}
		}
		if !cmp.Equal(gotA, a, cmp.Comparer(func(x, y []string) bool { return strings.Join(x, "") == strings.Join(y, "") })) ||
			strings.Join(gotB, "") != strings.Join(b, "") {
			t.Fatalf("case %d: script does not reproduce the files:\na=%q\nb=%q\nops=%v", iter, a, b, ops)
		}
		if want := len(a) + len(b) - 2*lcs(a, b); edits != want {
			t.Fatalf("case %d: %d edits, want %d\na=%q\nb=%q", iter, edits, want, a, b)
		}
	}
}

func randomLines(r *rand.Rand, n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = string(rune('a'+r.IntN(4))) + "\n"
	}
	return lines
}

func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

func TestStatScaling(t *testing.T) {
	tests := []struct{ ins, del, max, wantIns, wantDel int }{
		{3, 2, 40, 3, 2},
		{0, 0, 40, 0, 0},
		{100, 0, 100, 40, 0},
		{50, 50, 100, 20, 20},
		{1, 1, 1000, 1, 1},
		{999, 1, 1000, 39, 1},
	}
	for _, tt := range tests {
		gi, gd := scaleBar(tt.ins, tt.del, tt.max)
		if gi != tt.wantIns || gd != tt.wantDel {
			t.Errorf("scaleBar(%d, %d, %d) = %d, %d; want %d, %d", tt.ins, tt.del, tt.max, gi, gd, tt.wantIns, tt.wantDel)
		}
	}
}

func TestStatTotal(t *testing.T) {
	tests := []struct {
		files, ins, del int
		want            string
	}{
		{1, 1, 1, " 1 file changed, 1 insertion(+), 1 deletion(-)\n"},
		{2, 5, 0, " 2 files changed, 5 insertions(+)\n"},
		{2, 0, 3, " 2 files changed, 3 deletions(-)\n"},
		{1, 0, 0, " 1 file changed, 0 insertions(+), 0 deletions(-)\n"},
	}
	for _, tt := range tests {
		if got := statTotal(tt.files, tt.ins, tt.del); got != tt.want {
			t.Errorf("statTotal(%d, %d, %d) = %q, want %q", tt.files, tt.ins, tt.del, got, tt.want)
		}
	}
}
