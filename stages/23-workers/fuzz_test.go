package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the parser three ways (whole, one byte
// at a time, and in two parts split where the fuzzer says) and requires the
// same outcome from each; every call is checked against the parser's
// contract by checkCall. A request that comes out valid must survive
// serialization and re-parsing unchanged, and its pathname must clean into
// a path that cannot climb out of the root.
func FuzzParse(f *testing.F) {
	for _, c := range goodRequests {
		in := c.head + c.body
		f.Add([]byte(in), uint16(len(in)/2))
	}
	for _, c := range badRequests {
		f.Add([]byte(c.in), uint16(len(c.in)/2))
	}
	f.Add([]byte(typicalHead), uint16(100))
	f.Add([]byte(largeHead), uint16(4000))

	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		whole := parseWhole(t, in)
		if got := parseByteAtATime(t, in); !reflect.DeepEqual(got, whole) {
			t.Fatalf("byte at a time:\n got %v\nwant %v", got, whole)
		}
		k := int(split) % (len(in) + 1)
		if got := parseSplit(t, in, k); !reflect.DeepEqual(got, whole) {
			t.Fatalf("split at %d:\n got %v\nwant %v", k, got, whole)
		}
		if whole.req != nil {
			checkRequest(t, whole.req, whole.p.pos)
		}
	})
}

// checkRequest checks the invariants of a request newHTTPRequest accepted
// from a head of headLen bytes.
func checkRequest(t *testing.T, r *httpRequest, headLen int) {
	t.Helper()
	if r.headerLen != headLen {
		t.Fatalf("headerLen %d, want p.pos %d", r.headerLen, headLen)
	}
	if r.version != "1.0" && r.version != "1.1" {
		t.Fatalf("version %q", r.version)
	}
	if !slices.Contains(httpMethods[:], r.method) || r.method == "CONNECT" {
		t.Fatalf("method %q accepted", r.method)
	}
	if (r.schema == "") != (r.port == -1) || r.port > 65535 {
		t.Fatalf("schema %q with port %d", r.schema, r.port)
	}
	if !strings.HasPrefix(r.path, r.pathname) || r.chunked && r.bodyLen != 0 || r.bodyLen < 0 {
		t.Fatalf("inconsistent request %+v", *r)
	}

	again := r.serialize()
	var p requestParser
	res, err := p.parse(again)
	if err != nil || res != parseDone || p.pos != len(again) {
		t.Fatalf("re-parsing %q: %d, %v, pos %d", again, res, err, p.pos)
	}
	r2, err := newHTTPRequest(again, &p)
	if err != nil {
		t.Fatalf("re-parsed %q refused: %v", again, err)
	}
	r2.headerLen = r.headerLen
	if !sameRequest(*r, *r2) {
		t.Fatalf("serialize round trip changed the request\n got %+v\nwant %+v", *r2, *r)
	}

	clean, err := cleanPathname(r.pathname)
	if err != nil {
		return
	}
	if !strings.HasPrefix(clean, "/") || strings.Contains(clean, "//") || strings.IndexByte(clean, 0) >= 0 {
		t.Fatalf("cleanPathname(%q) = %q", r.pathname, clean)
	}
	for seg := range strings.SplitSeq(clean, "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("cleanPathname(%q) = %q keeps a dot-segment", r.pathname, clean)
		}
	}
}
