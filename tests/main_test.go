package tests

import (
	"testing"

	"expserver-go/tests/harness"
)

// TestMain removes the binaries the tests built once they have all run.
func TestMain(m *testing.M) {
	defer harness.RemoveBuilds()
	m.Run()
}
