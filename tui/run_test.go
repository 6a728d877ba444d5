package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// eventually polls cond every 10ms until it holds or 5s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// result is what Run returned.
type result struct {
	c   Choice
	err error
}

// start runs Run in a goroutine.
func start(ctx context.Context, opt Options) <-chan result {
	done := make(chan result, 1)
	go func() {
		c, err := Run(ctx, testItems(), opt)
		done <- result{c, err}
	}()
	return done
}

// wait returns Run's result, failing after 5s.
func wait(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
		return result{}
	}
}

// rawPTY opens a PTY pair whose slave is in raw mode, as the client's
// terminal is behind ssh: no output processing, so "\n" is not turned into
// "\r\n", and no echo. Everything written to the slave is read from the
// master, which plays the user's terminal emulator.
func rawPTY(t *testing.T, w, h int) (master, slave *os.File) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("pty.Open: %v", err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	// Reach the fd through SyscallConn: File.Fd would put the slave in
	// blocking mode, where read deadlines have no effect.
	rc, err := slave.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) { ioErr = makeRaw(int(fd), w, h) })
	if err != nil || ioErr != nil {
		t.Fatalf("raw mode: %v, %v", err, ioErr)
	}
	return master, slave
}

// makeRaw sets the terminal fd to raw mode and its size to w x h.
func makeRaw(fd, w, h int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		return err
	}
	return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(w), Row: uint16(h)})
}

// drain copies everything the master reads into a buffer, and returns the
// buffer and a func that closes the pair and waits for the copy to end.
// pty.Open leaves the master in blocking mode, where Close does not
// interrupt a Read; closing the slave first makes the Read fail with EIO.
func drain(master, slave *os.File) (*syncBuffer, func()) {
	var buf syncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&buf, master)
	}()
	return &buf, func() { slave.Close(); master.Close(); <-done }
}

// TestRunPTY types a filter and Enter into a real raw PTY, checks that the
// screen the bytes draw is exactly the model's view (no staircase from bare
// line feeds), and that Run returns the app.
func TestRunPTY(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const w, h = 80, 24
	master, slave := rawPTY(t, w, h)
	out, closePTY := drain(master, slave)
	defer closePTY()

	done := start(context.Background(), Options{
		In: slave, Out: slave, Term: "xterm-256color", Width: w, Height: h,
		Now: func() time.Time { return testNow }, User: "alice",
	})
	eventually(t, "the picker", func() bool { return bytes.Contains(out.Bytes(), []byte("Switchyard")) })
	if _, err := master.WriteString("vim"); err != nil {
		t.Fatal(err)
	}

	want, _ := press(t, newTestModel("xterm-256color"), runes("vim"))
	wantLines := strings.Split(ansi.Strip(want.View()), "\n")
	for i := range wantLines {
		wantLines[i] = strings.TrimRight(wantLines[i], " ")
	}
	var got *screen
	eventually(t, "the filtered view on screen", func() bool {
		got = newScreen(w, h)
		got.write(out.Bytes())
		return strings.Join(got.lines(), "\n") == strings.Join(wantLines, "\n")
	})
	if got.scrolled != 0 {
		t.Errorf("the screen scrolled by %d lines", got.scrolled)
	}

	if _, err := master.WriteString("\r"); err != nil {
		t.Fatal(err)
	}
	r := wait(t, done)
	if r.err != nil || r.c != (Choice{App: "vim"}) {
		t.Fatalf("Run = %+v, %v; want vim", r.c, r.err)
	}
	// The terminal is handed back: alternate screen left, cursor shown.
	eventually(t, "the terminal restored", func() bool {
		b := out.Bytes()
		return bytes.Contains(b, []byte(ansi.ResetAltScreenSaveCursorMode)) &&
			bytes.HasSuffix(b, []byte(ansi.ShowCursor))
	})
	// Nothing is left reading the slave: the next key reaches the gateway.
	if _, err := master.WriteString("x"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(slave, b); err != nil || b[0] != 'x' {
		t.Fatalf("read after Run: %q, %v", b, err)
	}
}

// TestRunCancel cancels the context of a picker waiting for keys: Run
// returns ctx.Err() promptly, leaves no goroutine behind and leaves the
// input readable, with no deadline set.
func TestRunCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	gw, client := net.Pipe()
	defer gw.Close()
	defer client.Close()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := start(ctx, Options{In: gw, Out: &out, Term: "vt100", Width: 80, Height: 24})
	eventually(t, "the picker", func() bool { return bytes.Contains(out.Bytes(), []byte("Switchyard")) })

	began := time.Now()
	cancel()
	r := wait(t, done)
	if !errors.Is(r.err, context.Canceled) || r.c != (Choice{}) {
		t.Fatalf("Run = %+v, %v; want context.Canceled", r.c, r.err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("Run took %v to return after cancel", d)
	}
	go func() { _, _ = client.Write([]byte("after")) }()
	b := make([]byte, 5)
	if _, err := io.ReadFull(gw, b); err != nil || string(b) != "after" {
		t.Fatalf("read after Run: %q, %v", b, err)
	}
}

// TestRunCancelPTY is TestRunCancel with the slave of a PTY as input.
func TestRunCancelPTY(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	master, slave := rawPTY(t, 80, 24)
	out, closePTY := drain(master, slave)
	defer closePTY()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := start(ctx, Options{In: slave, Out: slave, Term: "vt100", Width: 80, Height: 24})
	eventually(t, "the picker", func() bool { return bytes.Contains(out.Bytes(), []byte("Switchyard")) })
	cancel()
	if r := wait(t, done); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Run = %+v, %v; want context.Canceled", r.c, r.err)
	}
}

// TestRunPipe uses an io.Pipe, which cannot be interrupted: Run still
// returns the choice, and its reader ends when the pipe does.
func TestRunPipe(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr, pw := io.Pipe()
	var out syncBuffer
	done := start(context.Background(), Options{In: pr, Out: &out, Term: "vt100"})
	if _, err := pw.Write([]byte("rep")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the filter", func() bool { return bytes.Contains(out.Bytes(), []byte("Filter: rep")) })
	if _, err := pw.Write([]byte("\x1b[B\r")); err != nil { // Down, Enter
		t.Fatal(err)
	}
	r := wait(t, done)
	if r.err != nil || r.c != (Choice{App: "reports"}) {
		t.Fatalf("Run = %+v, %v; want reports", r.c, r.err)
	}
	pw.Close()
}

func TestRunLeaveAndEOF(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, k := range []string{"q", "\x1b", "\x03"} {
		gw, client := net.Pipe()
		done := start(context.Background(), Options{In: gw, Out: io.Discard, Term: "vt100"})
		if _, err := client.Write([]byte(k)); err != nil {
			t.Fatal(err)
		}
		if r := wait(t, done); r.err != nil || r.c != (Choice{}) {
			t.Errorf("%q: Run = %+v, %v; want the zero Choice", k, r.c, r.err)
		}
		gw.Close()
		client.Close()
	}
	// A client that closes its input ends the picker with an error.
	pr, pw := io.Pipe()
	done := start(context.Background(), Options{In: pr, Out: io.Discard, Term: "vt100"})
	pw.Close()
	if r := wait(t, done); !errors.Is(r.err, io.EOF) {
		t.Fatalf("EOF: Run = %+v, %v; want io.EOF", r.c, r.err)
	}
}

// TestRunResize sends a window change and waits for a frame drawn at the
// new size.
func TestRunResize(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	gw, client := net.Pipe()
	defer gw.Close()
	defer client.Close()
	var out syncBuffer
	resize := make(chan Size)
	done := start(context.Background(), Options{In: gw, Out: &out, Term: "vt100", Width: 80, Height: 24,
		Resize: resize, Now: func() time.Time { return testNow }, User: "alice"})
	eventually(t, "the picker", func() bool { return bytes.Contains(out.Bytes(), []byte("Switchyard")) })
	resize <- Size{Width: 40, Height: 8}

	want := newTestModel("vt100")
	next, _ := want.Update(tea.WindowSizeMsg{Width: 40, Height: 8})
	wantLines := strings.Split(next.View(), "\n")
	eventually(t, "a 40x8 frame", func() bool {
		s := newScreen(40, 8)
		b := out.Bytes()
		if i := bytes.LastIndex(b, []byte(ansi.CursorHomePosition)); i >= 0 {
			s.write(b[i:])
		}
		for i, l := range s.lines() {
			if l != strings.TrimRight(wantLines[i], " ") {
				return false
			}
		}
		return true
	})
	close(resize)
	if _, err := client.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, done); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}
