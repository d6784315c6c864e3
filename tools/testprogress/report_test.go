package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A stream as `go test -json` writes it for three packages: one whose
// subtest fails, one that passes slowly with two stage subtests, one that
// does not build; and a line from the go command that is not an event.
const stream = `{"Action":"start","Package":"x/a"}
{"Action":"run","Package":"x/a","Test":"TestOne"}
{"Action":"output","Package":"x/a","Test":"TestOne","Output":"=== RUN   TestOne\n"}
{"Action":"run","Package":"x/a","Test":"TestOne/sub"}
{"Action":"output","Package":"x/a","Test":"TestOne/sub","Output":"=== RUN   TestOne/sub\n"}
{"Action":"output","Package":"x/a","Test":"TestOne/sub","Output":"    x_test.go:3: bad\n"}
{"Action":"output","Package":"x/a","Test":"TestOne/sub","Output":"--- FAIL: TestOne/sub (0.00s)\n"}
{"Action":"fail","Package":"x/a","Test":"TestOne/sub","Elapsed":0}
{"Action":"output","Package":"x/a","Test":"TestOne","Output":"--- FAIL: TestOne (0.00s)\n"}
{"Action":"fail","Package":"x/a","Test":"TestOne","Elapsed":0}
{"Action":"run","Package":"x/a","Test":"TestTwo"}
{"Action":"output","Package":"x/a","Test":"TestTwo","Output":"    x_test.go:4: this passing test's log is not shown\n"}
{"Action":"pass","Package":"x/a","Test":"TestTwo","Elapsed":0}
{"Action":"output","Package":"x/a","Output":"FAIL\n"}
{"Action":"output","Package":"x/a","Output":"FAIL\tx/a\t0.003s\n"}
{"Action":"fail","Package":"x/a","Elapsed":0.004}
{"Action":"run","Package":"x/tests","Test":"TestStage"}
{"Action":"run","Package":"x/tests","Test":"TestStage/stage-6"}
{"Action":"run","Package":"x/tests","Test":"TestStage/stage-6/reversal"}
{"Action":"pass","Package":"x/tests","Test":"TestStage/stage-6/reversal","Elapsed":1.5}
{"Action":"pass","Package":"x/tests","Test":"TestStage/stage-6","Elapsed":2}
{"Action":"output","Package":"x/tests","Test":"TestStage/stage-7","Output":"    stages_test.go:9: needs nc\n"}
{"Action":"skip","Package":"x/tests","Test":"TestStage/stage-7","Elapsed":0}
{"Action":"pass","Package":"x/tests","Test":"TestStage","Elapsed":2}
{"Action":"output","Package":"x/tests","Output":"ok  \tx/tests\t2.5s\n"}
{"Action":"pass","Package":"x/tests","Elapsed":2.5}
{"Action":"skip","Package":"x/empty"}
{"ImportPath":"x/c [x/c.test]","Action":"build-output","Output":"# x/c [x/c.test]\n"}
{"ImportPath":"x/c [x/c.test]","Action":"build-output","Output":"c/x_test.go:3:27: undefined: x\n"}
{"ImportPath":"x/c [x/c.test]","Action":"build-fail"}
{"Action":"output","Package":"x/c","Output":"FAIL\tx/c [build failed]\n"}
{"Action":"fail","Package":"x/c","Elapsed":0,"FailedBuild":"x/c [x/c.test]"}
go: warning: a line the go command wrote itself
`

func TestRun(t *testing.T) {
	var out strings.Builder
	failed, err := run(strings.NewReader(stream), &out, regexp.MustCompile(`^TestStage/[^/]+$`))
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("failed = false, want true")
	}
	want := `    x_test.go:3: bad
--- FAIL: TestOne/sub (0.00s)
--- FAIL: TestOne (0.00s)
FAIL
FAIL	x/a	0.003s
--- PASS: TestStage/stage-6 (2.00s)
--- SKIP: TestStage/stage-7 (0.00s)
ok  	x/tests	2.500s
?   	x/empty	[no test files]
# x/c [x/c.test]
c/x_test.go:3:27: undefined: x
FAIL	x/c [build failed]
go: warning: a line the go command wrote itself

FAIL: x/a TestOne/sub, x/c
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

// TestRunPassing checks the quiet case: a passing run says only ok per
// package, reports no failure, and prints no progress without -progress.
func TestRunPassing(t *testing.T) {
	in := `{"Action":"run","Package":"x/b","Test":"TestStage/stage-6"}
{"Action":"pass","Package":"x/b","Test":"TestStage/stage-6","Elapsed":1}
{"Action":"pass","Package":"x/b","Elapsed":1.25}
`
	var out strings.Builder
	failed, err := run(strings.NewReader(in), &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if failed {
		t.Error("failed = true, want false")
	}
	if diff := cmp.Diff("ok  \tx/b\t1.250s\n", out.String()); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}
