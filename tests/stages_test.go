// Package tests runs the milestone suite against every stage of this
// repository, each stage's server on its own free ports so the stages run in
// parallel, and against deliberately broken servers, to prove the suite
// catches what it claims to.
package tests

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"expserver-go/tests/harness"
	"expserver-go/tests/milestone"
)

// long runs the official grader's full sizes (make test-long).
var long = os.Getenv("XPS_LONG") == "1"

func TestStage(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for n := milestone.FirstStage; n <= milestone.LastStage; n++ {
		t.Run(fmt.Sprintf("stage-%d", n), func(t *testing.T) {
			// XPS_STAGE_N=dir runs stage N's milestones against the package
			// in dir instead: a stage being written outside stages/.
			pkg := os.Getenv(fmt.Sprintf("XPS_STAGE_%d", n))
			if pkg == "" {
				dir, err := harness.StageDir(root, n)
				if err != nil {
					t.Skip(err)
				}
				pkg = dir
			}
			t.Parallel()
			bin, err := harness.Build(pkg)
			if err != nil {
				t.Fatal(err)
			}
			runSuite(t, n, bin, nil, func(t *testing.T, r milestone.Result) {
				if reason, ok := milestone.IsSkipped(r.Err); ok {
					t.Skip(reason)
				}
				if r.Err != nil {
					t.Errorf("%s: %v\nserver log (tail):\n%s", r.Milestone.Title, r.Err, r.Log)
				}
			})
		})
	}
}

// runSuite runs every milestone of stage n against bin — or those only
// accepts, when it is not nil — started in a course layout on free ports;
// report receives each milestone's verdict inside its subtest.
func runSuite(t *testing.T, n int, bin string, only func(milestone.Milestone) bool, report func(t *testing.T, r milestone.Result)) {
	free, err := harness.FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	ports := [4]int(free[:4])
	env, closeEnv, err := milestone.Prepare(milestone.Target{
		Stage: n, Bin: bin, Args: stageArgs(n, ports, "127.0.0.1:"+strconv.Itoa(free[4]), "../public/xps_config.json"),
		Host: "127.0.0.1", Ports: ports, UpstreamPort: free[4], Long: long,
		// The ports are not the course's, so neither is the metrics port:
		// a server whose config says nothing would take 8004.
		MetricsPort: free[5],
	})
	t.Cleanup(closeEnv)
	if err != nil {
		t.Fatal(err)
	}
	env.ArgsFor = func(ports [4]int, upstream, config string) []string { return stageArgs(n, ports, upstream, config) }
	for _, m := range milestone.ForStage(n) {
		if only != nil && !only(m) {
			continue
		}
		t.Run(m.ID, func(t *testing.T) {
			env.Logf = t.Logf
			report(t, env.Run(m))
		})
	}
}

// stageArgs is the command line of our stage n: flags moving it to the given
// ports and upstream (host:port), and the grader's config-path argument,
// which stages 6–15 ignore and stages 16 on read.
func stageArgs(n int, ports [4]int, upstream, config string) []string {
	if n >= 16 {
		return []string{config}
	}
	ps := make([]string, 4)
	for i, p := range ports {
		ps[i] = strconv.Itoa(p)
	}
	args := []string{"-ports", strings.Join(ps, ",")}
	if milestone.UsesUpstream(n) {
		args = append(args, "-upstream", upstream)
	}
	return append(args, config)
}
