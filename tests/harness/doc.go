// Package harness is the harness the milestone suite, the grading tool and
// the benchmarks share for driving a server binary from outside: build a
// stage, lay out the course's directories, start a process and wait until it
// accepts, stop it, read its CPU time, resident memory and open fds from
// /proc, and talk to it over raw TCP (first-chunk reads, raw HTTP responses).
//
// It never assumes the binary is one of ours: everything goes through the
// process's command line, its working directory, its ports and /proc.
package harness
