package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"expserver-go/tests/harness"
)

// gzipWrk is the load of the gzip rows at n workers: a request costs tens
// of milliseconds of compression, so 8 connections per worker keep the
// server busy without queueing past wrk's timeout, raised to 30 s so that
// a slow round is measured rather than counted as errors.
func gzipWrk(n int, cpus []int) wrkSpec {
	return wrkSpec{path: "/" + textFile, threads: 2 * n, conns: 8 * n, timeout: 30 * time.Second, cpus: cpus,
		headers: []string{"Connection: close", "Accept-Encoding: gzip"}}
}

// gzipRowRPS runs row (gzip), and (viii) at len(cpus) workers: one request
// whose response is counted on the wire and decoded against the file, then
// wrk as in row (i) with gzip accepted, on cpus. It returns wrk's req/s.
func (b *bench) gzipRowRPS(label, row, key string, s *server, cpus []int) (float64, error) {
	wire, err := fetchGzip(s.addr(), "/"+textFile, b.web.text)
	if err != nil {
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (%s): GET /%s with gzip: %v", label, s.label, key, textFile, err), row)
		progress("%s (%s) %-8s GET /%s with gzip: %v", label, key, s.label, textFile, err)
	} else {
		b.res.add(key+".bytes", s.name, float64(wire))
	}
	return b.wrkRowRPS(label, row, key, s, gzipWrk(len(cpus), cpus))
}

// gzipBigRow runs row (gzip-big): the big text file downloaded with gzip
// by the bench itself, which decodes and checks it as it arrives, with the
// server's RSS sampled every 50 ms for its peak and its CPU time.
func (b *bench) gzipBigRow(label string, s *server) error {
	const row = "gzip-big"
	base, err := s.fds()
	if err != nil {
		return err
	}
	peak := harness.SampleRSS(s.PID(), 50*time.Millisecond)
	start := time.Now()
	var fetchErr error
	cpu, err := cpuDuring(s, func() error {
		_, fetchErr = fetchGzip(s.addr(), "/"+bigText, b.web.bigText)
		return nil
	})
	elapsed := time.Since(start)
	rss := float64(peak()) / (1 << 20)
	if err != nil {
		return err
	}
	if err := s.alive(); err != nil {
		return err
	}
	if fetchErr != nil {
		b.res.flag(s.name, fmt.Sprintf("%s, %s, row (%s): %v", label, s.label, row, fetchErr), row)
		progress("%s (%s) %-8s %v", label, row, s.label, fetchErr)
		return b.settle(label, s, base, row)
	}
	mbps := float64(b.o.bigSize) / elapsed.Seconds() / 1e6
	b.res.add("gzip-big.mbps", s.name, mbps)
	b.res.add("gzip-big.rss", s.name, rss)
	b.res.add("gzip-big.cpu", s.name, cpu)
	progress("%s (%s) %-8s %s MB/s of the file, peak RSS %s MiB, %s CPU s",
		label, row, s.label, formatNumber(mbps), formatNumber(rss), formatNumber(cpu))
	return b.settle(label, s, base, row)
}

// fetchGzip GETs path from addr with Accept-Encoding: gzip and returns the
// bytes the response took on the wire (head, framing and compressed body),
// checking that the body is gzip and decodes to want.
func fetchGzip(addr, path string, want content) (int64, error) {
	c, err := dialer.Dial("tcp4", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	cc := &countingConn{Conn: c}
	host, _, _ := net.SplitHostPort(addr)
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n", path, host); err != nil {
		return 0, err
	}
	resp, rest, err := harness.ReadHead(cc, 30*time.Second)
	if err != nil {
		return 0, err
	}
	if resp.Status != 200 {
		return 0, fmt.Errorf("status %d, want 200", resp.Status)
	}
	if !strings.EqualFold(resp.Get("Content-Encoding"), "gzip") {
		return 0, fmt.Errorf("Content-Encoding %q, want gzip", resp.Get("Content-Encoding"))
	}
	payload, err := harness.Payload(resp, rest)
	if err != nil {
		return 0, err
	}
	m := &matcher{want: want}
	if _, err := io.Copy(m, payload); err != nil {
		return 0, err
	}
	return cc.n, m.complete()
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	return n, err
}

// matcher compares what is written to it with a content, byte for byte,
// without holding more of it than its block.
type matcher struct {
	want content
	off  int64
}

func (m *matcher) Write(p []byte) (int, error) {
	n := len(p)
	block := m.want.block
	for len(p) > 0 {
		if m.off >= m.want.size {
			return 0, fmt.Errorf("the body is longer than the file's %s bytes", formatCount(int(m.want.size)))
		}
		i := int(m.off % int64(len(block)))
		k := min(len(p), len(block)-i, int(m.want.size-m.off))
		if !bytes.Equal(p[:k], block[i:i+k]) {
			at := 0
			for p[at] == block[i+at] {
				at++
			}
			return 0, fmt.Errorf("the body differs from the file at byte %s", formatCount(int(m.off)+at))
		}
		p = p[k:]
		m.off += int64(k)
	}
	return n, nil
}

// complete returns an error unless the whole content was written.
func (m *matcher) complete() error {
	if m.off != m.want.size {
		return fmt.Errorf("the body has %s of the file's %s bytes", formatCount(int(m.off)), formatCount(int(m.want.size)))
	}
	return nil
}
