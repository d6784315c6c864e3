package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"expserver-go/tests/harness"
)

// The rows that compare ours with itself: row (i) with and without one
// thing, back to back in each round (see abRow), so that the ratio per
// round shows the cost of that thing beside the noise of two runs.

// aclRow runs row (acl): the 1 KiB file from a route with an access list
// against the same file from the route without.
func (b *bench) aclRow(label string, r int) error {
	s := b.servers[2]
	return b.abRow(r, "acl",
		func() (float64, error) {
			return b.perCPURun(label, "acl", "ours, no access list", s, b.closeWrk("/"+smallFile))
		},
		func() (float64, error) {
			return b.perCPURun(label, "acl", "ours, access list", s, b.closeWrk("/"+aclFile))
		})
}

// timersRow runs row (timers): row (i) on the last stage without timers
// against ours, whose every connection is under a timer from its accept.
func (b *bench) timersRow(label string, r int) error {
	prev := stageTimers - 1
	old, err := b.instance("no timers", func() *server {
		return b.ours(fmt.Sprintf("ours (stage %d)", prev), fmt.Sprintf("stage%d", prev), oursSetup{stage: prev}, false, []int{serverCPU})
	})
	if err != nil {
		return err
	}
	s := b.servers[2]
	return b.abRow(r, "timers",
		func() (float64, error) {
			return b.perCPURun(label, "timers", fmt.Sprintf("stage %d, no timers", prev), old, b.closeWrk("/"+smallFile))
		},
		func() (float64, error) {
			return b.perCPURun(label, "timers", fmt.Sprintf("stage %d, timers armed", b.o.stage), s, b.closeWrk("/"+smallFile))
		})
}

// metricsCostRow runs row (xi): row (i) while a poller reads /api once a
// second and /metrics ten times a second, as the course's dashboard and a
// busy Prometheus would, against no poller.
func (b *bench) metricsCostRow(label string, r int) error {
	s := b.servers[2]
	if s.metricsPort == 0 {
		return fmt.Errorf("%s has no metrics listener", s.label)
	}
	return b.abRow(r, "xi",
		func() (float64, error) {
			return b.perCPURun(label, "xi", "ours, not polled", s, b.closeWrk("/"+smallFile))
		},
		func() (float64, error) {
			p := startPoller(addrOf(s.metricsPort))
			v, err := b.perCPURun(label, "xi", "ours, polled", s, b.closeWrk("/"+smallFile))
			polls, failed, firstErr := p.stop()
			if err == nil && failed > 0 {
				b.res.flag(s.name, fmt.Sprintf("%s, %s, row (xi): %d of %d polls failed, first: %v", label, s.label, failed, polls, firstErr), "xi")
			}
			return v, err
		})
}

// poller reads a metrics listener's /api every second and /metrics every
// 100 ms until stopped.
type poller struct {
	done   chan struct{}
	wg     sync.WaitGroup
	polls  atomic.Int64
	failed atomic.Int64
	mu     sync.Mutex
	first  error
}

func startPoller(addr string) *poller {
	p := &poller{done: make(chan struct{})}
	for _, target := range []struct {
		path  string
		every time.Duration
	}{{"/api", time.Second}, {"/metrics", 100 * time.Millisecond}} {
		p.wg.Go(func() {
			t := time.NewTicker(target.every)
			defer t.Stop()
			for {
				p.poll(addr, target.path)
				select {
				case <-p.done:
					return
				case <-t.C:
				}
			}
		})
	}
	return p
}

func (p *poller) poll(addr, path string) {
	p.polls.Add(1)
	resp, err := harness.Get(addr, path, 10*time.Second)
	if err == nil && resp.Status != 200 {
		err = fmt.Errorf("GET %s: status %d", path, resp.Status)
	}
	if err != nil {
		p.failed.Add(1)
		p.mu.Lock()
		if p.first == nil {
			p.first = err
		}
		p.mu.Unlock()
	}
}

// stop stops the poller and returns how many polls it made, how many
// failed and the first failure.
func (p *poller) stop() (polls, failed int64, first error) {
	close(p.done)
	p.wg.Wait()
	return p.polls.Load(), p.failed.Load(), p.first
}
