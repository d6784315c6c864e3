package milestone

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryMilestoneHasAHint keeps the hint table complete: a milestone
// added without a hint fails here, naming itself and the file to edit.
func TestEveryMilestoneHasAHint(t *testing.T) {
	for _, m := range All() {
		h := Hint(m.ID)
		switch {
		case h == "":
			t.Errorf("milestone %q (stages %d–%d) has no hint: add one line to hints in tests/milestone/hints.go saying the usual cause of a failure", m.ID, m.From, m.To)
		case strings.Contains(h, "\n"):
			t.Errorf("the hint of %q is more than one line", m.ID)
		}
	}
	for id := range hints {
		if !knownID(id) {
			t.Errorf("hints.go has a hint for %q, which no milestone is called", id)
		}
	}
}

func knownID(id string) bool {
	for _, m := range All() {
		if m.ID == id {
			return true
		}
	}
	return false
}

// TestPoints checks the weights: the defaults by group, the table, lessons
// worth nothing, and a weight file that overrides them.
func TestPoints(t *testing.T) {
	var none Weights
	for _, m := range All() {
		p := none.Points(m)
		switch {
		case m.Lesson && p != 0:
			t.Errorf("the lesson %s is worth %d points", m.ID, p)
		case !m.Lesson && p <= 0:
			t.Errorf("%s is worth %d points", m.ID, p)
		}
	}
	unlisted := Milestone{ID: "a-milestone-not-in-the-table", Grader: true}
	if p := none.Points(unlisted); p != DefaultGraderPoints {
		t.Errorf("an unlisted official case is worth %d, want %d", p, DefaultGraderPoints)
	}
	unlisted.Grader = false
	if p := none.Points(unlisted); p != DefaultExtraPoints {
		t.Errorf("an unlisted extra case is worth %d, want %d", p, DefaultExtraPoints)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"single-client-io": 7, "idle-cpu": 0}`), 0o644)
	w, err := ReadWeights(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range All() {
		want := none.Points(m)
		switch m.ID {
		case "single-client-io":
			want = 7
		case "idle-cpu":
			want = 0
		}
		if got := w.Points(m); got != want {
			t.Errorf("with the file, %s is worth %d, want %d", m.ID, got, want)
		}
	}
	for name, content := range map[string]string{
		"typo.json":     `{"single-client-oi": 7}`,
		"negative.json": `{"idle-cpu": -1}`,
		"list.json":     `[1, 2]`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := ReadWeights(p); err == nil {
			t.Errorf("ReadWeights accepted %s: %s", name, content)
		}
	}
}
