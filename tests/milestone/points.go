package milestone

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Default points: a case of the official grader weighs more than one of
// ours, because passing it is what the course asks; a milestone the table
// below does not list gets its group's default, so a new milestone is
// weighted without anyone having to remember this file.
const (
	DefaultGraderPoints = 2
	DefaultExtraPoints  = 1
)

// points are the weights that differ from the defaults: the checks that
// stand for a whole lesson (backpressure, idle CPU, a server that survives
// its clients) count more.
var points = map[string]int{
	"non-blocking":            3,
	"idle-cpu":                3,
	"memory-flat":             3,
	"file-access-restriction": 3,
	"traversal":               2,
	"concurrent-1000":         2,
	"proxy-equals-upstream":   3,
}

// Weights are points by milestone ID. The zero value gives every milestone
// its default points.
type Weights map[string]int

// Points returns what the milestone is worth: its weight in w if listed,
// else the repository's table, else its group's default. Lessons are not
// graded and are worth nothing.
func (w Weights) Points(m Milestone) int {
	if m.Lesson {
		return 0
	}
	if p, ok := w[m.ID]; ok {
		return p
	}
	if p, ok := points[m.ID]; ok {
		return p
	}
	if m.Grader {
		return DefaultGraderPoints
	}
	return DefaultExtraPoints
}

// ReadWeights reads a JSON object of milestone IDs and points, such as
// {"single-client-io": 5, "idle-cpu": 0}, which override the defaults. An ID
// that names no milestone is an error, so a typo cannot silently leave a
// default in place.
func ReadWeights(path string) (Weights, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var w Weights
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of milestone IDs and points: %w", path, err)
	}
	known := map[string]bool{}
	for _, m := range All() {
		known[m.ID] = true
	}
	var unknown []string
	for id, p := range w {
		if !known[id] {
			unknown = append(unknown, id)
		}
		if p < 0 {
			return nil, fmt.Errorf("%s: %s: negative points %d", path, id, p)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s: no milestone is called %s", path, strings.Join(unknown, ", "))
	}
	return w, nil
}
