package xlog

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Level is a log level. Its String method gives the label that is printed.
type Level int

// The course's five levels, in the order the course declares them.
const (
	Error Level = iota
	Info
	Debug
	Warning
	HTTP
)

var labels = [...]string{Error: "ERROR", Info: "INFO", Debug: "DEBUG", Warning: "WARNING", HTTP: "HTTP"}

// styles are the ANSI sequences for each label: bold, with the course's colours.
var styles = [...]string{
	Error:   "\x1b[1;41;97m", // red background
	Info:    "\x1b[1;44;97m", // blue background
	Debug:   "\x1b[1;35m",    // magenta text
	Warning: "\x1b[1;43;30m", // yellow background
	HTTP:    "\x1b[1;42;30m", // green background
}

const (
	green = "\x1b[32m"
	reset = "\x1b[0m"
)

func (l Level) String() string {
	if l < 0 || int(l) >= len(labels) {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return labels[l]
}

// Logger writes log lines to one destination. The package-level functions use
// a Logger on standard output configured from the environment; tests build
// their own with New.
type Logger struct {
	mu       sync.Mutex
	w        io.Writer
	color    bool
	debug    bool
	off      [len(labels)]bool // levels turned off
	buffered bool              // hold lines until Flush
	buf      []byte            // the line being built, or the lines held
	names    sync.Map          // program counter → short function name
	// threads maps a thread id to the tag its lines carry (see NameThread);
	// tagged is set once any thread has a tag, so that a program that
	// names none pays nothing for the lookup.
	threads sync.Map
	tagged  atomic.Bool
}

// New returns a Logger writing to w. color turns the ANSI styles on; debug
// turns DEBUG lines on.
func New(w io.Writer, color, debug bool) *Logger {
	return &Logger{w: w, color: color, debug: debug}
}

var std = fromEnv()

// fromEnv builds the standard logger from XPS_DEBUG, XPS_COLOR, NO_COLOR and
// XPS_LOG.
func fromEnv() *Logger {
	lg := New(os.Stdout, colorFromEnv(), os.Getenv("XPS_DEBUG") == "1")
	if only, ok := os.LookupEnv("XPS_LOG"); ok {
		lg.Only(strings.Split(only, ","))
	}
	return lg
}

// Only turns off every level not named in levels ("error", "warning", …,
// any case). DEBUG still needs XPS_DEBUG=1 as well. A server operator uses
// it, through XPS_LOG=error,warning, to keep errors and drop the per-request
// lines, as nginx's access_log off does.
func (lg *Logger) Only(levels []string) {
	for l := range lg.off {
		lg.off[l] = true
	}
	for _, name := range levels {
		for l, label := range labels {
			if strings.EqualFold(strings.TrimSpace(name), label) {
				lg.off[l] = false
			}
		}
	}
}

func colorFromEnv() bool {
	switch os.Getenv("XPS_COLOR") {
	case "1":
		return true
	case "0":
		return false
	}
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(os.Stdout.Fd()), unix.TCGETS)
	return err == nil
}

// Enabled reports whether lines of level l are printed. Callers use it to skip
// building an expensive DEBUG message.
func (lg *Logger) Enabled(l Level) bool { return !lg.off[l] && (l != Debug || lg.debug) }

// Log prints one line at level l. skip is the number of stack frames between
// Log and the function whose name should appear on the line (0 = Log's caller).
func (lg *Logger) Log(l Level, skip int, format string, args ...any) {
	if !lg.Enabled(l) {
		return
	}
	name := lg.caller(skip + 2)
	tag := lg.threadTag()
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	b := lg.buf
	if !lg.buffered {
		b = b[:0]
	}
	if lg.color {
		b = append(b, styles[l]...)
	}
	b = append(b, ' ')
	b = append(b, labels[l]...)
	b = append(b, ' ')
	if lg.color {
		b = append(b, reset...)
	}
	b = append(b, ' ')
	if tag != "" {
		b = append(b, '[')
		b = append(b, tag...)
		b = append(b, "] "...)
	}
	if lg.color {
		b = append(b, green...)
	}
	b = append(b, name...)
	if lg.color {
		b = append(b, reset...)
	}
	b = append(b, " : "...)
	b = appendEscaped(b, msg)
	b = append(b, '\n')
	lg.buf = b
	if !lg.buffered {
		_, _ = lg.w.Write(b)
	}
}

// NameThread makes every line logged from the calling thread carry tag,
// as "[tag]" before the function name: a server that runs one event loop
// per thread names each loop's lines, so that a reader can follow one
// loop's story among the others'. The calling goroutine must be locked to
// its thread (runtime.LockOSThread) for as long as the tag stands, and must
// call ForgetThread before it lets the thread go, or another thread that
// later gets the same id would inherit the tag. Lines are told apart by
// thread id (gettid), which costs a system call per line once any thread
// has a tag, and nothing before.
func (lg *Logger) NameThread(tag string) {
	lg.threads.Store(unix.Gettid(), tag)
	lg.tagged.Store(true)
}

// ForgetThread removes the calling thread's tag.
func (lg *Logger) ForgetThread() { lg.threads.Delete(unix.Gettid()) }

// threadTag returns the calling thread's tag, or "".
func (lg *Logger) threadTag() string {
	if !lg.tagged.Load() {
		return ""
	}
	if tag, ok := lg.threads.Load(unix.Gettid()); ok {
		return tag.(string)
	}
	return ""
}

// appendEscaped appends msg to b with every control character — the C0
// ones such as \n, \r and ESC, DEL, and the C1 ones — and every byte that is
// not part of valid UTF-8 written as a \xHH escape. Messages carry what
// clients sent (a request target, a header value), and a raw line break
// there would let a client write a line of its own into the log, one that
// looks like the server's; a raw ESC would drive the operator's terminal.
func appendEscaped(b []byte, msg string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(msg); {
		c := msg[i]
		if ' ' <= c && c < 0x7f {
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(msg[i:])
		invalid := r == utf8.RuneError && size == 1
		if !invalid && !unicode.IsControl(r) {
			b = append(b, msg[i:i+size]...)
		} else {
			for _, c := range []byte(msg[i : i+size]) {
				b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			}
		}
		i += size
	}
	return b
}

// SetBuffered makes the logger hold lines until Flush (true) or write each
// line at once (false, the default).
func (lg *Logger) SetBuffered(on bool) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if !on && len(lg.buf) > 0 && lg.buffered {
		_, _ = lg.w.Write(lg.buf)
	}
	lg.buffered = on
	lg.buf = lg.buf[:0]
}

// Flush writes the lines held since the last Flush, in one write.
func (lg *Logger) Flush() {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if lg.buffered && len(lg.buf) > 0 {
		_, _ = lg.w.Write(lg.buf)
		lg.buf = lg.buf[:0]
	}
}

// caller returns the short name of the function skip frames up, such as
// "listener.accept" for main.(*listener).accept. Only the program counter is
// looked up on each call (runtime.Callers, without file and line); its name
// is worked out once and remembered.
func (lg *Logger) caller(skip int) string {
	var pcs [1]uintptr
	if runtime.Callers(skip+1, pcs[:]) == 0 {
		return "?"
	}
	pc := pcs[0]
	if n, ok := lg.names.Load(pc); ok {
		return n.(string)
	}
	name := "?"
	if fn := runtime.FuncForPC(pc - 1); fn != nil {
		name = shortName(fn.Name())
	}
	lg.names.Store(pc, name)
	return name
}

// shortName turns "expserver-go/common/xlog.(*Logger).Log" into "Logger.Log"
// and "main.newListener.func1" into "newListener.func1".
func shortName(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		full = full[i+1:]
	}
	if i := strings.IndexByte(full, '.'); i >= 0 {
		full = full[i+1:]
	}
	full = strings.ReplaceAll(full, "(*", "")
	full = strings.ReplaceAll(full, ")", "")
	return full
}

// Errorf logs at ERROR level.
func Errorf(format string, args ...any) { std.Log(Error, 1, format, args...) }

// Infof logs at INFO level.
func Infof(format string, args ...any) { std.Log(Info, 1, format, args...) }

// Debugf logs at DEBUG level; the line appears only with XPS_DEBUG=1.
func Debugf(format string, args ...any) { std.Log(Debug, 1, format, args...) }

// Warnf logs at WARNING level.
func Warnf(format string, args ...any) { std.Log(Warning, 1, format, args...) }

// HTTPf logs at HTTP level, one line per request.
func HTTPf(format string, args ...any) { std.Log(HTTP, 1, format, args...) }

// DebugEnabled reports whether DEBUG lines are printed. Code that logs at
// DEBUG once per connection checks it first: the arguments of a call are
// built (and strings boxed) even when the line is then dropped.
func DebugEnabled() bool { return std.Enabled(Debug) }

// HTTPEnabled reports whether HTTP lines are printed. Code that logs a line
// per request checks it first, for the reason DebugEnabled gives: a server
// run without its access log (XPS_LOG=error,warning) then pays nothing for it.
func HTTPEnabled() bool { return std.Enabled(HTTP) }

// Buffer makes the standard logger hold its lines until Flush. An event
// loop buffers while it runs and calls Flush before it waits for the next
// events, so the lines of one batch of events go out in one write, before
// the server can sit idle — a busy server then spends one system call on its
// log per batch, not several per request.
func Buffer() { std.SetBuffered(true) }

// Flush writes the standard logger's held lines.
func Flush() { std.Flush() }

// Unbuffer writes the held lines and goes back to writing each line at
// once. A loop defers it, so that its lines are written even when it ends
// with a panic.
func Unbuffer() { std.SetBuffered(false) }

// NameThread makes the standard logger's lines from the calling thread
// carry tag (see Logger.NameThread).
func NameThread(tag string) { std.NameThread(tag) }

// ForgetThread removes the calling thread's tag from the standard logger.
func ForgetThread() { std.ForgetThread() }
