package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Browser is a headless Chromium driven over the DevTools protocol through
// the pipe transport (--remote-debugging-pipe: JSON messages separated by
// NUL bytes on fds 3 and 4), so a test can load pages from a server, click
// links and read what the browser rendered, without a WebSocket library.
type Browser struct {
	cmd     *exec.Cmd
	in      *os.File // what Chromium reads (its fd 3)
	out     *os.File // what Chromium writes (its fd 4)
	dataDir string

	mu      sync.Mutex
	nextID  int
	pending map[int]chan message
	events  chan message
	session string
	done    chan struct{}
}

type message struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
	RawParams json.RawMessage `json:"-"`
}

// ChromiumPath returns the path of the chromium binary, or "" if none is
// installed.
func ChromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// StartBrowser starts headless Chromium with a fresh profile and opens one
// page to drive.
func StartBrowser() (*Browser, error) {
	path := ChromiumPath()
	if path == "" {
		return nil, errors.New("harness: chromium is not installed (Debian package chromium)")
	}
	dataDir, err := os.MkdirTemp("", "xps-harness-chromium-")
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	b := &Browser{in: inW, out: outR, dataDir: dataDir, pending: map[int]chan message{},
		events: make(chan message, 256), done: make(chan struct{})}
	// The flags keep Chromium from reaching out to the network or asking
	// anything, as a test on a closed machine needs.
	b.cmd = exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--user-data-dir="+dataDir,
		"--remote-debugging-pipe", "about:blank")
	b.cmd.ExtraFiles = []*os.File{inR, outW} // fds 3 and 4
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(dataDir)
		return nil, fmt.Errorf("harness: start chromium: %w", err)
	}
	inR.Close()
	outW.Close()
	go b.readLoop()

	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		b.Close()
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		b.Close()
		return nil, err
	}
	b.session = attached.SessionID
	if err := b.call(b.session, "Page.enable", nil, nil); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Browser) readLoop() {
	defer close(b.done)
	r := bufio.NewReader(b.out)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			message
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		m.message.RawParams = m.Params
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.pending[m.ID]
			delete(b.pending, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m.message
			}
			continue
		}
		select {
		case b.events <- m.message:
		default: // nobody waits for old events; drop them
		}
	}
}

// call sends one DevTools command and decodes its result into result.
func (b *Browser) call(session, method string, params any, result any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan message, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	raw, err := json.Marshal(message{ID: id, Method: method, Params: params, SessionID: session})
	if err != nil {
		return err
	}
	if _, err := b.in.Write(append(raw, 0)); err != nil {
		return fmt.Errorf("harness: chromium: %s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("harness: chromium: %s: %s", method, m.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-b.done:
		return fmt.Errorf("harness: chromium exited during %s", method)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("harness: chromium: %s: no answer in 30 s", method)
	}
}

// waitLoad waits for the page's load event.
func (b *Browser) waitLoad(timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case m := <-b.events:
			if m.Method == "Page.loadEventFired" && m.SessionID == b.session {
				return nil
			}
		case <-deadline:
			return errors.New("harness: chromium: the page did not finish loading")
		case <-b.done:
			return errors.New("harness: chromium exited")
		}
	}
}

// drainEvents forgets events from earlier navigations.
func (b *Browser) drainEvents() {
	for {
		select {
		case <-b.events:
		default:
			return
		}
	}
}

// Navigate loads url and waits until the page has loaded.
func (b *Browser) Navigate(url string) error {
	b.drainEvents()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.call(b.session, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("harness: chromium: loading %s: %s", url, res.ErrorText)
	}
	return b.waitLoad(30 * time.Second)
}

// Eval evaluates a JavaScript expression in the page and decodes its value
// into result.
func (b *Browser) Eval(expression string, result any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expression, "returnByValue": true, "awaitPromise": true}, &res); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("harness: chromium: %s: %s", expression, res.ExceptionDetails.Text)
	}
	return json.Unmarshal(res.Result.Value, result)
}

// Click clicks the first element matching the CSS selector and waits for
// the page it leads to.
func (b *Browser) Click(selector string) error {
	b.drainEvents()
	sel, _ := json.Marshal(selector)
	var found bool
	if err := b.Eval(fmt.Sprintf(`(() => { const a = document.querySelector(%s); if (!a) return false; a.click(); return true; })()`, sel), &found); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("harness: chromium: no element matches %s", selector)
	}
	return b.waitLoad(30 * time.Second)
}

// Close ends Chromium and removes its profile.
func (b *Browser) Close() {
	b.in.Close()
	if b.cmd.Process != nil {
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		b.cmd.Wait()
	}
	b.out.Close()
	os.RemoveAll(b.dataDir)
}
