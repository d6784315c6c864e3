// Package milestone is the black-box milestone suite: one table of checks,
// each with the range of stages it applies to, written once and run both by
// the repository's tests against our own stage binaries and by tools/grade
// against any binary, in any language, laid out as the course's grader lays
// it out.
//
// A check talks to the server only over sockets and /proc. It returns nil or
// an error; a *Failure error carries what was expected and what was observed,
// which the grading tool prints as a table row.
package milestone
