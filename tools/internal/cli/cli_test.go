package cli

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		status   int
		output   string // a line the output must contain; "" for no output
		wantFlag int
	}{
		{name: "good", args: []string{"-n", "3"}, status: -1, wantFlag: 3},
		{name: "help", args: []string{"-h"}, status: 0, output: "usage: tool"},
		{name: "unknown flag", args: []string{"-x"}, status: 2, output: "flag provided but not defined: -x"},
		{name: "check fails", args: []string{"-n", "0"}, status: 2, output: "tool: -n: want at least 1, got 0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			fs := NewFlagSet("tool", &out, "usage: tool [-n N]")
			n := fs.Int("n", 1, "a count")
			err := Parse(fs, tc.args, func() error {
				if *n < 1 {
					return errors.New("-n: want at least 1, got 0")
				}
				return nil
			})
			status := -1
			if err != nil {
				status = Status(err)
			}
			if status != tc.status {
				t.Errorf("status %d (err %v), want %d", status, err, tc.status)
			}
			if tc.output == "" && out.Len() != 0 || !strings.Contains(out.String(), tc.output) {
				t.Errorf("output %q, want it to contain %q", out.String(), tc.output)
			}
			if tc.status == -1 && *n != tc.wantFlag {
				t.Errorf("-n = %d, want %d", *n, tc.wantFlag)
			}
		})
	}
}

func TestParseWithoutCheck(t *testing.T) {
	fs := flag.NewFlagSet("tool", flag.ContinueOnError)
	if err := Parse(fs, nil, nil); err != nil {
		t.Fatalf("Parse(no args, no check) = %v", err)
	}
}
