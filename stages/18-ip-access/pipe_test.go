package main

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testCore is a core with no loop: enough for the pipe pass, which only
// looks at the pipe list.
func testCore() *core {
	c := &core{connections: make(map[*connection]struct{})}
	c.loop = &loop{core: c}
	return c
}

// recorder is an owner of pipe ends that logs every callback it receives.
type recorder struct{ calls []string }

func (r *recorder) source(name string) *pipeSource {
	return newPipeSource(func() { r.calls = append(r.calls, name+".handler") },
		func() { r.calls = append(r.calls, name+".close") })
}

func (r *recorder) sink(name string) *pipeSink {
	return newPipeSink(func() { r.calls = append(r.calls, name+".handler") },
		func() { r.calls = append(r.calls, name+".close") })
}

func TestPipePredicates(t *testing.T) {
	p := &pipe{thresh: 10}
	check := func(readable, writable bool) {
		t.Helper()
		if p.readable() != readable || p.writable() != writable {
			t.Fatalf("len %d: readable=%v writable=%v, want %v %v", p.buf.Len(), p.readable(), p.writable(), readable, writable)
		}
	}
	check(false, true)
	p.buf.Write([]byte("123456789"))
	check(true, true) // 9 < 10
	p.buf.Write([]byte("0"))
	check(true, false) // 10 is not below the threshold
	if got := p.room(); got != 0 {
		t.Fatalf("room = %d, want 0", got)
	}
}

func TestSourceWriteRules(t *testing.T) {
	c := testCore()
	var r recorder
	src, snk := r.source("src"), r.sink("snk")
	if err := src.write([]byte("x")); !errors.Is(err, errNotAttached) {
		t.Fatalf("write on a detached source: %v, want errNotAttached", err)
	}
	p, err := newPipe(c, 4, src, snk)
	if err != nil {
		t.Fatal(err)
	}
	if !src.active || !snk.active || src.ready || snk.ready {
		t.Fatalf("after newPipe: active %v/%v ready %v/%v, want true/true false/false", src.active, snk.active, src.ready, snk.ready)
	}
	// A single write may cross the threshold; the next one is refused.
	if err := src.write([]byte("abcdef")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	if err := src.write([]byte("g")); !errors.Is(err, errPipeFull) {
		t.Fatalf("write to a full pipe: %v, want errPipeFull", err)
	}
	b, err := snk.read(3)
	if err != nil || string(b.Bytes()) != "abc" {
		t.Fatalf("read(3) = %q, %v", b.Bytes(), err)
	}
	if p.buf.Len() != 6 {
		t.Fatal("read consumed bytes")
	}
	if _, err := snk.read(7); err == nil {
		t.Fatal("read past the buffered length succeeded")
	}
	if err := snk.clear(4); err != nil || p.buf.Len() != 2 {
		t.Fatalf("clear(4): %v, len %d", err, p.buf.Len())
	}
	if err := newPipeSource(nil, nil).attach(p); !errors.Is(err, errEndTaken) {
		t.Fatalf("second source attached: %v, want errEndTaken", err)
	}
	if err := src.detach(); err != nil {
		t.Fatal(err)
	}
	if err := src.detach(); !errors.Is(err, errNotAttached) {
		t.Fatalf("detach twice: %v, want errNotAttached", err)
	}
}

// TestPipePass checks the five rules of the pass and the busy decision, one
// situation per case.
func TestPipePass(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(p *pipe, src *pipeSource, snk *pipeSink)
		wantCalls []string
		wantBusy  bool
		wantPipes int
	}{
		{
			name:      "idle: nothing ready, nothing buffered",
			setup:     func(p *pipe, src *pipeSource, snk *pipeSink) {},
			wantPipes: 1,
		},
		{
			name:      "ready source, writable pipe",
			setup:     func(p *pipe, src *pipeSource, snk *pipeSink) { src.ready = true },
			wantCalls: []string{"src.handler"},
			wantBusy:  true, // still ready and writable after the call
			wantPipes: 1,
		},
		{
			name: "ready source, full pipe: backpressure",
			setup: func(p *pipe, src *pipeSource, snk *pipeSink) {
				src.ready = true
				p.buf.Write(make([]byte, p.thresh))
			},
			wantPipes: 1,
		},
		{
			name:      "ready sink, empty pipe",
			setup:     func(p *pipe, src *pipeSource, snk *pipeSink) { snk.ready = true },
			wantPipes: 1,
		},
		{
			name: "ready sink, readable pipe",
			setup: func(p *pipe, src *pipeSource, snk *pipeSink) {
				snk.ready = true
				p.buf.Write([]byte("data"))
			},
			wantCalls: []string{"snk.handler"},
			wantBusy:  true,
			wantPipes: 1,
		},
		{
			name:      "sink gone: source told once",
			setup:     func(p *pipe, src *pipeSource, snk *pipeSink) { snk.detach() },
			wantCalls: []string{"src.close"},
			wantPipes: 1,
		},
		{
			name: "source gone, bytes left: sink drains first",
			setup: func(p *pipe, src *pipeSource, snk *pipeSink) {
				p.buf.Write([]byte("left"))
				src.detach()
			},
			wantPipes: 1,
		},
		{
			name: "source gone, bytes left, sink ready: sink consumes",
			setup: func(p *pipe, src *pipeSource, snk *pipeSink) {
				p.buf.Write([]byte("left"))
				snk.ready = true
				src.detach()
			},
			wantCalls: []string{"snk.handler"},
			wantBusy:  true,
			wantPipes: 1,
		},
		{
			name:      "source gone, drained: sink told once",
			setup:     func(p *pipe, src *pipeSource, snk *pipeSink) { src.detach() },
			wantCalls: []string{"snk.close"},
			wantPipes: 1,
		},
		{
			name: "both gone: pipe destroyed",
			setup: func(p *pipe, src *pipeSource, snk *pipeSink) {
				src.detach()
				snk.detach()
			},
			wantPipes: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testCore()
			var r recorder
			src, snk := r.source("src"), r.sink("snk")
			p, err := newPipe(c, 16, src, snk)
			if err != nil {
				t.Fatal(err)
			}
			tc.setup(p, src, snk)
			busy := c.loop.handlePipes()
			if diff := cmp.Diff(tc.wantCalls, r.calls); diff != "" {
				t.Errorf("callbacks (-want +got):\n%s", diff)
			}
			if busy != tc.wantBusy {
				t.Errorf("busy = %v, want %v", busy, tc.wantBusy)
			}
			if len(c.pipes) != tc.wantPipes {
				t.Errorf("%d pipes left, want %d", len(c.pipes), tc.wantPipes)
			}
			// A second pass must not repeat a close notification.
			r.calls = nil
			c.loop.handlePipes()
			for _, call := range r.calls {
				if call == "src.close" || call == "snk.close" {
					t.Errorf("second pass repeated %s", call)
				}
			}
		})
	}
}

// TestPipeFlowEndToEnd drives a producer and a consumer through many passes
// and checks every byte arrives in order while the pipe never holds more
// than its threshold plus one write.
func TestPipeFlowEndToEnd(t *testing.T) {
	c := testCore()
	const total, chunk, thresh = 100000, 777, 4096
	var produced, consumed []byte
	var src *pipeSource
	var snk *pipeSink
	src = newPipeSource(func() {
		n := min(chunk, total-len(produced), src.pipe.room())
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(len(produced) + i)
		}
		produced = append(produced, b...)
		if err := src.write(b); err != nil {
			t.Fatal(err)
		}
		if len(produced) == total {
			src.close() // end of stream
		}
	}, func() { t.Fatal("source told the sink is gone") })
	sinkClosed := false
	snk = newPipeSink(func() {
		if l := snk.pipe.buf.Len(); l > thresh+chunk {
			t.Fatalf("pipe holds %d bytes, over threshold+write", l)
		}
		n := min(snk.pipe.buf.Len(), 500) // a slow reader
		b, _ := snk.read(n)
		consumed = append(consumed, b.Bytes()...)
		snk.clear(n)
	}, func() { sinkClosed = true; snk.close() })
	if _, err := newPipe(c, thresh, src, snk); err != nil {
		t.Fatal(err)
	}
	src.ready, snk.ready = true, true
	for i := 0; i < 10000 && len(c.pipes) > 0; i++ {
		c.loop.handlePipes()
	}
	if !sinkClosed || len(c.pipes) != 0 {
		t.Fatalf("stream did not finish: sinkClosed=%v pipes=%d", sinkClosed, len(c.pipes))
	}
	if diff := cmp.Diff(produced, consumed); diff != "" {
		t.Fatalf("bytes differ (-produced +consumed):\n%s", diff)
	}
}

// TestPipeReuse checks that a pipe the pipe pass destroyed is reused, but
// only from the loop's next iteration on, and then as if it were new:
// nothing it carried for the ends it joined before is left in it.
func TestPipeReuse(t *testing.T) {
	c := testCore()
	var r recorder
	first, err := newPipe(c, 16, r.source("a"), r.sink("b"))
	if err != nil {
		t.Fatal(err)
	}
	first.src.write([]byte("left over"))
	first.src.close()
	first.snk.close()
	c.loop.handlePipes() // destroys the pipe left without ends
	if len(c.pipes) != 0 {
		t.Fatalf("%d pipes left, want 0", len(c.pipes))
	}
	if again, _ := newPipe(c, 16, r.source("c"), r.sink("d")); again == first {
		t.Fatal("a pipe was reused in the iteration that destroyed it")
	}
	c.recycle()
	src, snk := r.source("e"), r.sink("f")
	reused, err := newPipe(c, 32, src, snk)
	if err != nil {
		t.Fatal(err)
	}
	if reused != first {
		t.Fatal("the destroyed pipe was not reused")
	}
	if reused.src != src || reused.snk != snk || reused.thresh != 32 || reused.readable() || !reused.queued {
		t.Errorf("reused pipe: ends %p %p, threshold %d, %d bytes, queued %v; want the new ends, 32, 0 bytes, queued",
			reused.src, reused.snk, reused.thresh, reused.buf.Len(), reused.queued)
	}
	if len(c.pipes) != 2 || c.pipes[0].index != 0 || c.pipes[1].index != 1 {
		t.Errorf("%d pipes in the core, want 2 at their own indexes", len(c.pipes))
	}
}
