// Package stages carries the sample web root, public/, inside any binary that
// imports it, so that a tool which must run without this repository — the
// grading tool — lays out the same fixtures the repository's own tests use.
// The stages themselves are the numbered folders beside this file.
package stages

import "embed"

// Public holds the folder public/: cat.jpg, sample.pdf, sample.txt, test/, …
//
//go:embed public
var Public embed.FS
