package main

import (
	"fmt"
	"runtime/debug"
)

// version is the tool's version. A release build may set it with
// -ldflags '-X main.version=v1.2.0'; otherwise it comes from the build
// information Go records in the binary.
var version = ""

// buildInfo is what the binary knows about itself: its version and the
// commit it was built from, which every report carries so that a grade can
// be traced to the exact checks that gave it.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified,omitempty"` // built from a work tree with uncommitted changes
	Go       string `json:"go"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	b.Go = info.GoVersion
	if b.Version == "" {
		b.Version = info.Main.Version // "(devel)" when built from a work tree
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the line -version prints.
func (b buildInfo) String() string {
	s := "grade " + b.Version
	switch {
	case b.Commit != "":
		s += " commit " + b.Commit
		if b.Time != "" {
			s += " (" + b.Time + ")"
		}
		if b.Modified {
			s += " with uncommitted changes"
		}
	default:
		s += " commit unknown (built without version control information)"
	}
	if b.Go != "" {
		s += fmt.Sprintf(", %s", b.Go)
	}
	return s
}
