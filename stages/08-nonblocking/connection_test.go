package main

import "testing"

func TestReverseChunk(t *testing.T) {
	cases := map[string]string{
		"hello\n":   "olleh\n",
		"hello":     "olleh",
		"\n":        "\n",
		"":          "",
		"ab":        "ba",
		"a\nb\n":    "b\na\n",
		"\n\n":      "\n\n",
		"abc\r\n":   "\rcba\n",
		"x":         "x",
		"racecar\n": "racecar\n",
	}
	for in, want := range cases {
		b := []byte(in)
		reverseChunk(b)
		if string(b) != want {
			t.Errorf("reverseChunk(%q) = %q, want %q", in, b, want)
		}
	}
}
