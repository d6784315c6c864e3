package tests

import (
	"testing"

	"expserver-go/common/xpstest"
)

// TestMain removes the binaries the tests built once they have all run.
func TestMain(m *testing.M) {
	defer xpstest.RemoveBuilds()
	m.Run()
}
