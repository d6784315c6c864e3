package harness

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ScriptedUpstream is an HTTP upstream inside the test process. It reads
// the head of the request on each connection it accepts and hands the
// connection to a script: one that answers, answers late, trickles its
// answer, hangs, or closes without answering. It counts the connections it
// accepted and keeps each request head, so a check can tell what a proxy
// in front of it did: how often it connected, what it forwarded, and
// whether it closed the connection.
type ScriptedUpstream struct {
	ln     net.Listener
	script Script
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu       sync.Mutex
	accepted int
	open     map[*net.TCPConn]bool
	heads    []string
}

// Script handles one connection of a ScriptedUpstream. The upstream closes
// the connection when the script returns.
type Script func(x *Exchange)

// Exchange is one connection of a ScriptedUpstream, its request head read.
type Exchange struct {
	Conn *net.TCPConn
	// In is the rest of what the connection sends, after the head.
	In *bufio.Reader
	// Head is the request line and header lines, line endings included.
	Head string
	// Done is closed when the upstream is closed; a script that waits
	// selects on it.
	Done <-chan struct{}
}

// Method returns the request's method.
func (x *Exchange) Method() string {
	m, _, _ := strings.Cut(x.Head, " ")
	return m
}

// Path returns the request's target.
func (x *Exchange) Path() string {
	_, rest, _ := strings.Cut(x.Head, " ")
	target, _, _ := strings.Cut(rest, " ")
	return target
}

// ContentLength returns the request's Content-Length, 0 without one.
func (x *Exchange) ContentLength() int {
	for _, line := range strings.Split(x.Head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// ReadBody reads the body the head announces with Content-Length.
func (x *Exchange) ReadBody() ([]byte, error) {
	b := make([]byte, x.ContentLength())
	_, err := io.ReadFull(x.In, b)
	return b, err
}

// Wait waits for d and reports true, or false if the upstream was closed
// first.
func (x *Exchange) Wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-x.Done:
		return false
	}
}

// Hang reads what the peer still sends until it closes its side or the
// upstream is closed: an upstream that took the request and never answers.
// It returns when the peer closed, so the caller can note when.
func (x *Exchange) Hang() {
	ended := make(chan struct{})
	go func() {
		io.Copy(io.Discard, x.In)
		close(ended)
	}()
	select {
	case <-ended:
	case <-x.Done:
		x.Conn.Close()
		<-ended
	}
}

// Respond writes a whole HTTP/1.0 response with body.
func (x *Exchange) Respond(body string) error {
	_, err := fmt.Fprintf(x.Conn, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return err
}

// Answer is a script that reads the request body and answers 200 with body.
func Answer(body string) Script {
	return func(x *Exchange) {
		if _, err := x.ReadBody(); err == nil {
			x.Respond(body)
		}
	}
}

// CloseUnanswered is a script that reads the whole request and closes the
// connection without a byte of response.
func CloseUnanswered(x *Exchange) { x.ReadBody() }

// StartScripted starts an upstream on a free port of 127.0.0.1 that runs
// script on each connection.
func StartScripted(script Script) (*ScriptedUpstream, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("harness: scripted upstream: %w", err)
	}
	u := &ScriptedUpstream{ln: ln, script: script, done: make(chan struct{}), open: map[*net.TCPConn]bool{}}
	u.wg.Go(u.acceptLoop)
	return u, nil
}

func (u *ScriptedUpstream) acceptLoop() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		tc := c.(*net.TCPConn)
		u.mu.Lock()
		u.accepted++
		u.open[tc] = true
		u.mu.Unlock()
		u.wg.Go(func() { u.serve(tc) })
	}
}

func (u *ScriptedUpstream) serve(c *net.TCPConn) {
	defer func() {
		c.Close()
		u.mu.Lock()
		delete(u.open, c)
		u.mu.Unlock()
	}()
	x := &Exchange{Conn: c, In: bufio.NewReader(c), Done: u.done}
	var head strings.Builder
	for {
		line, err := x.In.ReadString('\n')
		head.WriteString(line)
		if err != nil || head.Len() > 64<<10 {
			return // no whole head: nothing to script
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	x.Head = head.String()
	u.mu.Lock()
	u.heads = append(u.heads, x.Head)
	u.mu.Unlock()
	u.script(x)
}

// Addr returns the upstream's address, 127.0.0.1:PORT.
func (u *ScriptedUpstream) Addr() string { return u.ln.Addr().String() }

// Accepted returns how many connections the upstream has accepted.
func (u *ScriptedUpstream) Accepted() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.accepted
}

// Open returns how many accepted connections are still open: those whose
// script has not returned, such as a hanging upstream's whose peer has not
// closed its side.
func (u *ScriptedUpstream) Open() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.open)
}

// Heads returns the request heads received so far, in the order they
// arrived.
func (u *ScriptedUpstream) Heads() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.heads...)
}

// Close stops accepting, ends every script that waits, closes every
// connection and waits for the scripts to return.
func (u *ScriptedUpstream) Close() {
	select {
	case <-u.done:
		return
	default:
	}
	close(u.done)
	u.ln.Close()
	u.mu.Lock()
	for c := range u.open {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}
