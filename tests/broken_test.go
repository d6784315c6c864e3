package tests

import (
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"expserver-go/tests/broken"
	"expserver-go/tests/milestone"
)

// TestBrokenServers runs each broken server through its stage's milestones
// (those of its lesson only, for a server marked LessonOnly): exactly the
// milestones its defect breaks must fail.
func TestBrokenServers(t *testing.T) {
	if long {
		t.Skip("the broken servers run at normal sizes only")
	}
	for _, b := range broken.Servers {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			bin, cleanup, err := b.Build()
			if cleanup != nil {
				t.Cleanup(cleanup)
			}
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var failed []string
			runSuite(t, b.Stage, bin, b.Checks, func(t *testing.T, r milestone.Result) {
				if _, skipped := milestone.IsSkipped(r.Err); r.Err != nil && !skipped {
					mu.Lock()
					failed = append(failed, r.Milestone.ID)
					mu.Unlock()
					t.Logf("fails as it should or should not: %v", r.Err)
				}
			})
			slices.Sort(failed)
			want := slices.Clone(b.Failing)
			slices.Sort(want)
			if diff := cmp.Diff(want, failed); diff != "" {
				t.Errorf("milestones failed by %s (-want +got):\n%s", b.Name, diff)
			}
		})
	}
}
