package main

import (
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// testSession builds a session whose five ends are piped to inert peers, as
// newSession would for the first port, but without sockets.
func testSession(t *testing.T) *session {
	t.Helper()
	c := testCore()
	s := &session{core: c, client: &connection{core: c}} // a client that is never closed
	s.clientSource = newPipeSource(s.sendToClient, s.check)
	s.upstreamSource = newPipeSource(s.sendToUpstream, s.onUpstreamClosed)
	s.clientSink = newPipeSink(s.takeFromClient, s.check)
	s.upstreamSink = newPipeSink(s.takeFromUpstream, s.onUpstreamClosed)
	s.fileSink = newPipeSink(s.takeFromFile, s.check)
	c.sessions.add(s)
	peerSource := func() *pipeSource { return newPipeSource(func() {}, func() {}) }
	peerSink := func() *pipeSink { return newPipeSink(func() {}, func() {}) }
	for _, err := range []error{
		pipeErr(newPipe(c, pipeThreshold, peerSource(), s.clientSink)),
		pipeErr(newPipe(c, pipeThreshold, s.clientSource, peerSink())),
		pipeErr(newPipe(c, pipeThreshold, s.upstreamSource, peerSink())),
		pipeErr(newPipe(c, pipeThreshold, peerSource(), s.upstreamSink)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func pipeErr(_ *pipe, err error) error { return err }

// TestSessionCheck covers the destroy check: which states keep the session,
// which destroy it, and which pass the end of a finished flow on.
func TestSessionCheck(t *testing.T) {
	cases := []struct {
		name string
		// setup puts the session in the state to check.
		setup                func(s *session)
		wantClosed           bool
		wantUpstreamAttached bool // upstreamSource still attached
		wantClientAttached   bool // clientSource still attached
	}{
		{
			name:                 "both directions running",
			setup:                func(s *session) {},
			wantUpstreamAttached: true, wantClientAttached: true,
		},
		{
			name: "upstream finished, reply delivered: the client gets the end",
			setup: func(s *session) {
				s.upstreamSink.active = false
			},
			wantUpstreamAttached: true, wantClientAttached: false,
		},
		{
			name: "upstream finished, reply still in the slot: keep going",
			setup: func(s *session) {
				s.upstreamSink.active = false
				s.toClient.Write([]byte("rest of the reply"))
			},
			wantUpstreamAttached: true, wantClientAttached: true,
		},
		{
			name: "client finished sending: the upstream gets the end",
			setup: func(s *session) {
				s.clientSink.active = false
			},
			wantUpstreamAttached: false, wantClientAttached: true,
		},
		{
			name: "client finished, request still in the slot: keep going",
			setup: func(s *session) {
				s.clientSink.active = false
				s.fromClient.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			},
			wantUpstreamAttached: true, wantClientAttached: true,
		},
		{
			name: "client gone: nothing can reach it",
			setup: func(s *session) {
				s.clientSource.active = false
				s.clientSink.active = false
			},
			wantClosed: true,
		},
		{
			name: "upstream gone and client finished: every flow over",
			setup: func(s *session) {
				s.upstreamSource.active = false
				s.upstreamSink.active = false
				s.clientSink.active = false
			},
			wantClosed: true,
		},
		{
			name: "upstream gone but part of its reply is still held",
			setup: func(s *session) {
				s.upstreamSource.active = false
				s.upstreamSink.active = false
				s.toClient.Write([]byte("last bytes"))
			},
			wantClientAttached: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testSession(t)
			tc.setup(s)
			s.check()
			if s.closed != tc.wantClosed {
				t.Fatalf("closed = %v, want %v", s.closed, tc.wantClosed)
			}
			if listed := slices.Contains(s.core.sessions, s); listed == s.closed {
				t.Errorf("session listed in the core = %v while closed = %v", listed, s.closed)
			}
			if tc.wantClosed {
				for name, attached := range map[string]bool{
					"clientSource": s.clientSource.pipe != nil, "upstreamSource": s.upstreamSource.pipe != nil,
					"clientSink": s.clientSink.pipe != nil, "upstreamSink": s.upstreamSink.pipe != nil,
				} {
					if attached {
						t.Errorf("%s still attached after destroy", name)
					}
				}
				return
			}
			if got := s.upstreamSource.pipe != nil; got != tc.wantUpstreamAttached {
				t.Errorf("upstreamSource attached = %v, want %v", got, tc.wantUpstreamAttached)
			}
			if got := s.clientSource.pipe != nil; got != tc.wantClientAttached {
				t.Errorf("clientSource attached = %v, want %v", got, tc.wantClientAttached)
			}
		})
	}
}

// TestSessionSlots checks the slot rules: a full slot stops the sinks that
// fill it and readies the source that empties it, and emptying reverses it.
func TestSessionSlots(t *testing.T) {
	s := testSession(t)
	s.clientSink.ready, s.upstreamSink.ready, s.fileSink.ready = true, true, true

	s.clientSink.pipe.buf.Write([]byte("request"))
	s.takeFromClient()
	if s.fromClient.Len() != 7 || s.clientSink.ready || !s.upstreamSource.ready {
		t.Fatalf("after takeFromClient: slot %d, clientSink.ready %v, upstreamSource.ready %v",
			s.fromClient.Len(), s.clientSink.ready, s.upstreamSource.ready)
	}
	s.sendToUpstream()
	if s.fromClient.Len() != 0 || !s.clientSink.ready || s.upstreamSource.ready {
		t.Fatalf("after sendToUpstream: slot %d, clientSink.ready %v, upstreamSource.ready %v",
			s.fromClient.Len(), s.clientSink.ready, s.upstreamSource.ready)
	}
	if got := s.upstreamSource.pipe.buf.Len(); got != 7 {
		t.Fatalf("upstream pipe holds %d bytes, want 7", got)
	}

	s.upstreamSink.pipe.buf.Write([]byte("reply"))
	s.takeFromUpstream()
	if !s.upstreamConnected || s.upstreamSink.ready || s.fileSink.ready || !s.clientSource.ready {
		t.Fatalf("after takeFromUpstream: connected %v, upstreamSink.ready %v, fileSink.ready %v, clientSource.ready %v",
			s.upstreamConnected, s.upstreamSink.ready, s.fileSink.ready, s.clientSource.ready)
	}
	s.sendToClient()
	if s.toClient.Len() != 0 || !s.upstreamSink.ready || !s.fileSink.ready || s.clientSource.ready {
		t.Fatal("sendToClient did not empty the slot and restore readiness")
	}
	if got := s.clientSource.pipe.buf.Len(); got != 5 {
		t.Fatalf("client pipe holds %d bytes, want 5", got)
	}
}

func TestUpstreamErrorNotedOnce(t *testing.T) {
	s := testSession(t)
	s.onUpstreamClosed()
	if !s.upstreamErrorResSet {
		t.Fatal("an upstream closing before it connected was not noted")
	}
	s2 := testSession(t)
	s2.upstreamConnected = true
	s2.onUpstreamClosed()
	if s2.upstreamErrorResSet {
		t.Fatal("an upstream that had connected was noted as failed")
	}
}

// TestSessionReuse checks that a destroyed session is reused, but only from
// the loop's next iteration on, and then as if it were new, with the ends it
// was made with: nothing of the client it served before is left in it.
func TestSessionReuse(t *testing.T) {
	c := testCore()
	l := &listener{core: c, role: 2} // a port that serves nothing: no upstream, no file
	client := func() *connection {
		return &connection{core: c, listener: l,
			connEnds: connEnds{source: newPipeSource(func() {}, func() {}), sink: newPipeSink(func() {}, func() {})}}
	}
	first, err := newSession(c, client())
	if err != nil {
		t.Fatal(err)
	}
	ends := []any{first.clientSource, first.upstreamSource, first.clientSink, first.upstreamSink, first.fileSink}
	first.client.source.write([]byte("left over"))
	first.takeFromClient()
	first.upstreamConnected = true
	first.close()
	if again, _ := newSession(c, client()); again == first {
		t.Fatal("a session was reused in the iteration that destroyed it")
	}
	c.recycle()
	reused, err := newSession(c, client())
	if err != nil {
		t.Fatal(err)
	}
	if reused != first {
		t.Fatal("the destroyed session was not reused")
	}
	fresh, err := newSession(c, client())
	if err != nil {
		t.Fatal(err)
	}
	if fresh == first {
		t.Fatal("a session put once on the free list was taken twice")
	}
	for i, end := range []any{reused.clientSource, reused.upstreamSource, reused.clientSink, reused.upstreamSink, reused.fileSink} {
		if end != ends[i] {
			t.Errorf("end %d of the reused session is not the one it was made with", i)
		}
	}
	diff := cmp.Diff(fresh, reused,
		cmp.Exporter(func(reflect.Type) bool { return true }),
		cmp.FilterPath(func(p cmp.Path) bool { return p.Last().Type().Kind() == reflect.Func }, cmp.Ignore()),
		cmpopts.IgnoreTypes(&core{}, &connection{}, &pipe{}),
		cmpopts.IgnoreFields(session{}, "index"),
		cmpopts.EquateEmpty())
	if diff != "" {
		t.Errorf("a reused session differs from a new one (-new +reused):\n%s", diff)
	}
}
