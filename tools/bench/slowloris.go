package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"expserver-go/tests/harness"
)

// Row (slowloris): the header timeout both servers get, how often each
// attacking connection sends a byte, and the margin the target allows
// after the timeout for a connection to be closed.
const (
	slowTimeout = 5 * time.Second
	slowTrickle = time.Second
	slowGrace   = 500 * time.Millisecond
	// slowWindow is the shortest wrk run of the row: two header timeouts.
	slowWindow = 2 * slowTimeout
)

// partialHead is what a slowloris connection, and each connection of row
// (timers-idle), sends once connected: a request line and a header, and
// the start of another header that never ends.
const partialHead = "GET /" + smallFile + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

// slowlorisRow runs row (slowloris) on an nginx and an ours with a 5 s
// header timeout: wrk as in row (i) alone, then again while -slowloris
// connections trickle request heads, reconnecting as the server closes
// them, and how long each of them lived. k, the row's round, says which
// server goes first.
func (b *bench) slowlorisRow(label string, k int) error {
	const row = "slowloris"
	timeout := fmt.Sprintf("header timeout %v", slowTimeout)
	servers := []func() (*server, error){
		func() (*server, error) {
			return b.instance("slowloris nginx", func() *server {
				return b.nginx("nginx ("+timeout+")", "slowloris", nginxSetup{headerTimeout: slowTimeout}, []int{serverCPU})
			})
		},
		func() (*server, error) {
			return b.instance("slowloris ours", func() *server {
				return b.ours("ours ("+timeout+")", "slowloris", oursSetup{stage: b.o.stage, headerTimeout: slowTimeout}, false, []int{serverCPU})
			})
		},
	}
	if k%2 == 0 {
		servers[0], servers[1] = servers[1], servers[0]
	}
	for _, get := range servers {
		s, err := get()
		if err != nil {
			return err
		}
		base, err := s.fds()
		if err != nil {
			return err
		}
		w := b.closeWrk("/" + smallFile)
		// Each attacking connection is closed and replaced at least once
		// while wrk runs, so the figure includes the churn of the closes
		// and reconnects, not only connections sitting there.
		w.duration = max(b.o.duration, slowWindow)
		calm, cpu, err := b.wrk(s, w)
		if err != nil {
			return err
		}
		b.recordWrk(label, row, "slowloris.calm", s, calm, cpu)
		if err := b.settle(label, s, base, row); err != nil {
			return err
		}

		a := startAttack(s.addr(), b.o.slowConns)
		attacked, cpu, err := b.wrk(s, w)
		st := a.stop(slowTimeout + slowGrace + 2*time.Second)
		if err != nil {
			return err
		}
		b.recordWrk(label, row, "slowloris.attacked", s, attacked, cpu)
		if calm.ReqPerSec > 0 {
			b.res.add("slowloris.kept", s.name, attacked.ReqPerSec/calm.ReqPerSec)
		}
		late := st.over(slowTimeout + slowGrace)
		b.res.add("slowloris.opened", s.name, float64(st.opened))
		b.res.add("slowloris.longest", s.name, st.longest().Seconds())
		b.res.add("slowloris.late", s.name, float64(late))
		progress("%s (%s) %-8s %s attacking connections opened, the longest lived %s s, %s past %v",
			label, row, s.label, formatCount(st.opened), formatNumber(st.longest().Seconds()), formatCount(late), slowTimeout+slowGrace)
		if st.dialErrors > 0 {
			b.res.flag(s.name, fmt.Sprintf("%s, %s, row (%s): %s attacking connections could not connect, first: %v",
				label, s.label, row, formatCount(st.dialErrors), st.firstErr), row)
		}
		if err := b.settle(label, s, base, row); err != nil {
			return err
		}
	}
	return nil
}

// attack is a slowloris attack on one address: connections that send a
// request head a byte at a time, each replaced by a new one as soon as the
// server closes it, until stop.
type attack struct {
	addr     string
	stopping atomic.Bool
	holders  sync.WaitGroup

	mu         sync.Mutex
	open       map[*net.TCPConn]time.Time // the connections held, and when each opened
	lives      []time.Duration            // of the connections that have ended
	opened     int
	dialErrors int
	firstErr   error
}

// attackStats is what stop returns.
type attackStats struct {
	opened     int
	lives      []time.Duration // how long each connection lived, until the server closed it or the attack gave up
	dialErrors int
	firstErr   error
}

// over counts the connections that lived longer than d.
func (s attackStats) over(d time.Duration) int {
	n := 0
	for _, l := range s.lives {
		if l > d {
			n++
		}
	}
	return n
}

// longest returns the longest life.
func (s attackStats) longest() time.Duration {
	if len(s.lives) == 0 {
		return 0
	}
	return slices.Max(s.lives)
}

// startAttack opens n connections to addr, from burstWorkers dialers as
// bursts do, and returns once each has been dialled.
func startAttack(addr string, n int) *attack {
	a := &attack{addr: addr, open: map[*net.TCPConn]time.Time{}}
	var dialers sync.WaitGroup
	for w := range burstWorkers {
		count := n / burstWorkers
		if w < n%burstWorkers {
			count++
		}
		dialers.Go(func() {
			for range count {
				if c := a.dial(); c != nil {
					a.holders.Go(func() { a.hold(c) })
				}
			}
		})
	}
	dialers.Wait()
	return a
}

// dial opens one attacking connection and sends the start of its head, or
// counts the failure and returns nil.
func (a *attack) dial() *net.TCPConn {
	c, err := dialer.Dial("tcp4", a.addr)
	if err == nil {
		tc := c.(*net.TCPConn)
		a.mu.Lock()
		a.open[tc] = time.Now()
		a.opened++
		a.mu.Unlock()
		if _, err = c.Write([]byte(partialHead)); err == nil {
			return tc
		}
		a.end(tc)
		c.Close()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dialErrors++
	if a.firstErr == nil {
		a.firstErr = err
	}
	return nil
}

// hold keeps c sending a byte every slowTrickle until the server closes
// it, and then dials its replacement, until the attack stops.
func (a *attack) hold(c *net.TCPConn) {
	buf := make([]byte, 512)
	for c != nil {
		c.SetReadDeadline(time.Now().Add(slowTrickle))
		_, err := c.Read(buf)
		switch {
		case err == nil:
			continue // a 408: the close follows
		case harness.IsTimeout(err):
			if _, err := c.Write([]byte{'a'}); err == nil {
				continue
			}
		}
		// EOF, a reset or a failed write: the server has closed it, unless
		// stop has already given up on it and reset it.
		a.end(c)
		c.Close()
		c = nil
		if !a.stopping.Load() {
			c = a.dial()
		}
	}
}

// end records the life of c, once, whoever notices its end first.
func (a *attack) end(c *net.TCPConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if opened, ok := a.open[c]; ok {
		a.lives = append(a.lives, time.Since(opened))
		delete(a.open, c)
	}
}

// stop ends the attack: no connection is replaced any more, and the
// server has up to wait to close those still open. Any left then counts
// with its life so far, and is reset.
func (a *attack) stop(wait time.Duration) attackStats {
	a.stopping.Store(true)
	done := make(chan struct{})
	go func() {
		a.holders.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		a.mu.Lock()
		left := make([]*net.TCPConn, 0, len(a.open))
		for c := range a.open {
			left = append(left, c)
		}
		a.mu.Unlock()
		for _, c := range left {
			a.end(c)
			harness.Reset(c)
		}
		<-done
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return attackStats{opened: a.opened, lives: a.lives, dialErrors: a.dialErrors, firstErr: a.firstErr}
}

// partialHeadsRow runs row (timers-idle): like rows (iv) and (v), but each
// of the -conns connections has sent part of a request head, so the server
// holds a started request for it under an armed header timer (an hour, so
// none expires in the window): bytes per connection and idle CPU.
func (b *bench) partialHeadsRow(label string, s *server) error {
	const row = "timers-idle"
	// Afresh, for the reason connsRow gives.
	if err := s.restart(b.o.conns); err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	pid, n := s.PID(), b.o.conns
	rssIdle, err := harness.RSS(pid)
	if err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	base, err := s.fds()
	if err != nil {
		return err
	}
	conns, _, err := burst(s, base+n, n, []byte(partialHead))
	defer resetAll(conns)
	if err == nil {
		// The RSS counts once the server has read every head it was sent.
		err = harness.WaitFor(time.Minute, func() error {
			left, err := unreadBytes(s.port)
			if err == nil && left > 0 {
				err = fmt.Errorf("%s bytes of the heads are still unread", formatCount(left))
			}
			return err
		})
	}
	if err != nil {
		if aerr := s.alive(); aerr != nil {
			return aerr
		}
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (%s): %v", label, s.label, row, err), row)
		progress("%s (%s) %-8s failed: %v", label, row, s.label, err)
		resetAll(conns)
		return b.settle(label, s, base, row)
	}
	rssConns, err := harness.RSS(pid)
	if err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	perConn := float64(rssConns-rssIdle) / float64(n)
	b.res.add("timers-idle.per_conn", s.name, perConn)
	pct, err := familyCPUPercent(pid, b.o.idle)
	if err != nil {
		return fmt.Errorf("%s: %w", s.label, err)
	}
	b.res.add("timers-idle.idle", s.name, pct)
	progress("%s (%s) %-8s %s bytes per connection with a partial head, idle CPU %s%%",
		label, row, s.label, formatNumber(perConn), formatNumber(pct))
	if fds, err := s.fds(); err == nil && fds < base+n {
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (%s): the server closed %s of the connections during the window",
			label, s.label, row, formatCount(base+n-fds)), row)
	}
	resetAll(conns)
	return b.settle(label, s, base, row)
}

// unreadBytes returns the bytes waiting in the receive queues of the
// established IPv4 sockets whose local port is port: what clients of a
// server on that port sent and it has not read yet.
func unreadBytes(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	return rxQueued(string(b), port)
}

// rxQueued sums the rx_queue column of the ESTABLISHED lines of a
// /proc/net/tcp text whose local port is port.
func rxQueued(table string, port int) (int, error) {
	total := 0
	for _, line := range strings.Split(table, "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st tx_queue:rx_queue …
		if len(f) < 5 || f[3] != "01" {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseInt(hexPort, 16, 32); err != nil || int(p) != port {
			continue
		}
		_, rx, ok := strings.Cut(f[4], ":")
		n, err := strconv.ParseInt(rx, 16, 64)
		if !ok || err != nil {
			return 0, errors.New("/proc/net/tcp: malformed queue column " + f[4])
		}
		total += int(n)
	}
	return total, nil
}
