package xlog

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

func helperThatLogs(lg *Logger) { lg.Log(Info, 0, "new connection") }

func TestLineFormatPlain(t *testing.T) {
	var out bytes.Buffer
	lg := New(&out, false, false)
	helperThatLogs(lg)
	want := " INFO  helperThatLogs : new connection\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

func TestLineFormatColour(t *testing.T) {
	var out bytes.Buffer
	lg := New(&out, true, false)
	lg.Log(Error, 0, "bind() failed: %s", "address already in use")
	got := out.String()
	want := "\x1b[1;41;97m ERROR \x1b[0m \x1b[32mTestLineFormatColour\x1b[0m : bind() failed: address already in use\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDebugOnlyWhenEnabled(t *testing.T) {
	var out bytes.Buffer
	New(&out, false, false).Log(Debug, 0, "hidden")
	if out.Len() != 0 {
		t.Fatalf("DEBUG printed while disabled: %q", out.String())
	}
	New(&out, false, true).Log(Debug, 0, "shown")
	if !strings.Contains(out.String(), " DEBUG ") || !strings.HasSuffix(out.String(), ": shown\n") {
		t.Fatalf("DEBUG line missing or malformed: %q", out.String())
	}
}

func TestShortName(t *testing.T) {
	cases := map[string]string{
		"main.(*listener).accept":                "listener.accept",
		"main.newListener":                       "newListener",
		"expserver-go/common/xlog.(*Logger).Log": "Logger.Log",
		"main.main.func1":                        "main.func1",
	}
	for in, want := range cases {
		if got := shortName(in); got != want {
			t.Errorf("shortName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLevelString(t *testing.T) {
	for l, want := range []string{"ERROR", "INFO", "DEBUG", "WARNING", "HTTP"} {
		if got := Level(l).String(); got != want {
			t.Errorf("Level(%d) = %q, want %q", l, got, want)
		}
	}
}

func TestBufferedUntilFlush(t *testing.T) {
	var out bytes.Buffer
	lg := New(&out, false, false)
	lg.SetBuffered(true)
	lg.Log(Info, 0, "one")
	lg.Log(HTTP, 0, "GET / → %d", 200)
	if out.Len() != 0 {
		t.Fatalf("a buffered line was written before Flush: %q", out.String())
	}
	lg.Flush()
	want := " INFO  TestBufferedUntilFlush : one\n HTTP  TestBufferedUntilFlush : GET / → 200\n"
	if out.String() != want {
		t.Fatalf("after Flush: %q, want %q", out.String(), want)
	}
	lg.Log(Warning, 0, "held")
	lg.SetBuffered(false)
	if !strings.HasSuffix(out.String(), ": held\n") {
		t.Fatalf("turning buffering off did not write the held line: %q", out.String())
	}
}

func BenchmarkLogLine(b *testing.B) {
	lg := New(io.Discard, true, false)
	b.ReportAllocs()
	for b.Loop() {
		lg.Log(HTTP, 0, "%s %s → %d", "127.0.0.1", "GET /index.html", 200)
	}
}

func TestOnly(t *testing.T) {
	var out bytes.Buffer
	lg := New(&out, false, true)
	lg.Only([]string{"error", " Warning"})
	lg.Log(Info, 0, "dropped")
	lg.Log(HTTP, 0, "dropped")
	lg.Log(Debug, 0, "dropped")
	lg.Log(Error, 0, "kept")
	lg.Log(Warning, 0, "kept too")
	if got := strings.Count(out.String(), "\n"); got != 2 || strings.Contains(out.String(), "dropped") {
		t.Fatalf("Only(error, warning) printed %q", out.String())
	}
}

func TestControlCharactersEscaped(t *testing.T) {
	cases := map[string]string{
		"GET /%0aFORGED":              "GET /%0aFORGED",
		"GET /\nERROR forged":         `GET /\x0aERROR forged`,
		"a\r\nb":                      `a\x0d\x0ab`,
		"tab\there":                   `tab\x09here`,
		"\x1b[31mred":                 `\x1b[31mred`,
		"del\x7f":                     `del\x7f`,
		"c1 \u009b":                   `c1 \xc2\x9b`,
		"invalid \xff\xfe":            `invalid \xff\xfe`,
		"café, ünïcode and \uFFFD ok": "café, ünïcode and \uFFFD ok",
	}
	for msg, want := range cases {
		var out bytes.Buffer
		New(&out, false, false).Log(HTTP, 0, "%s", msg)
		line := out.String()
		if strings.Count(line, "\n") != 1 {
			t.Errorf("%q gave %d lines: %q", msg, strings.Count(line, "\n"), line)
		}
		if _, got, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " : "); got != want {
			t.Errorf("%q logged as %q, want %q", msg, got, want)
		}
	}
}

func TestThreadTag(t *testing.T) {
	var out bytes.Buffer
	lg := New(&out, false, false)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lg.NameThread("w2")
	lg.Log(Info, 0, "tagged")
	lg.ForgetThread()
	lg.Log(Info, 0, "untagged")
	want := " INFO  [w2] TestThreadTag : tagged\n INFO  TestThreadTag : untagged\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// TestThreadTagOnlyItsThread checks that a tag stays with the thread that
// set it: a line logged on another thread carries none.
func TestThreadTagOnlyItsThread(t *testing.T) {
	var out bytes.Buffer
	lg := New(&out, false, false)
	named := make(chan struct{})
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		lg.NameThread("w0")
		close(named)
		<-release
		lg.ForgetThread()
		close(done)
	}()
	<-named
	runtime.LockOSThread()
	lg.Log(Info, 0, "elsewhere")
	runtime.UnlockOSThread()
	close(release)
	<-done
	if want := " INFO  TestThreadTagOnlyItsThread : elsewhere\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
