package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"switchyard/internal/testutil"
)

// waitFor bounds every wait in these tests.
const waitFor = 5 * time.Second

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
func drain(master, slave *os.File) (*testutil.Buffer, func()) {
	var buf testutil.Buffer
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
	testutil.Eventually(t, waitFor, "the picker", func() bool { return bytes.Contains(out.Bytes(), []byte("Switchyard")) })
	if _, err := master.WriteString("vim"); err != nil {
		t.Fatal(err)
	}

	want, _ := press(t, newTestModel("xterm-256color"), runes("vim"))
	wantLines := strings.Split(ansi.Strip(want.View()), "\n")
	for i := range wantLines {
		wantLines[i] = strings.TrimRight(wantLines[i], " ")
	}
	var got *screen
	testutil.Eventually(t, waitFor, "the filtered view on screen", func() bool {
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
	r := testutil.Recv(t, done, waitFor, "Run to return")
	if r.err != nil || r.c != (Choice{App: "vim"}) {
		t.Fatalf("Run = %+v, %v; want vim", r.c, r.err)
	}
	// The terminal is handed back: alternate screen left, cursor shown.
	testutil.Eventually(t, waitFor, "the terminal restored", func() bool {
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
	var out testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := start(ctx, Options{In: gw, Out: &out, Term: "vt100", Width: 80, Height: 24})
	testutil.Eventually(t, waitFor, "the picker", func() bool { return bytes.Contains(out.Bytes(), []byte("Switchyard")) })

	cancel()
	r := testutil.Recv(t, done, waitFor, "Run to return")
	if !errors.Is(r.err, context.Canceled) || r.c != (Choice{}) {
		t.Fatalf("Run = %+v, %v; want context.Canceled", r.c, r.err)
	}
	// Had Run left its reader blocked on gw, that reader would take these
	// bytes (and drop them).
	go func() { _, _ = client.Write([]byte("after")) }()
	read := make(chan string, 1)
	go func() {
		b := make([]byte, 5)
		_, err := io.ReadFull(gw, b)
		read <- fmt.Sprintf("%q, %v", b, err)
	}()
	if got := testutil.Recv(t, read, waitFor, "the bytes written after Run"); got != `"after", <nil>` {
		t.Fatalf("read after Run: %s", got)
	}
}

// TestInputStopEndsPump: stop interrupts the pump's pending Read through
// the reader's deadline, so the pump has returned when stop does. (Were
// the Read not interrupted, stop would give up waiting and return with the
// pump still reading.)
func TestInputStopEndsPump(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	gw, client := net.Pipe()
	defer gw.Close()
	defer client.Close()
	in := newInput(gw)
	go func() { _, _ = client.Write([]byte("k")) }()
	b := make([]byte, 1)
	if n, err := in.Read(b); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	in.stop()
	select {
	case <-in.exited:
	default:
		t.Fatal("stop returned with the pump still reading")
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
	testutil.Eventually(t, waitFor, "the picker", func() bool { return bytes.Contains(out.Bytes(), []byte("Switchyard")) })
	cancel()
	if r := testutil.Recv(t, done, waitFor, "Run to return"); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Run = %+v, %v; want context.Canceled", r.c, r.err)
	}
}

// TestRunPipe uses an io.Pipe, which cannot be interrupted: Run still
// returns the choice, and its reader ends when the pipe does.
func TestRunPipe(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pr, pw := io.Pipe()
	var out testutil.Buffer
	done := start(context.Background(), Options{In: pr, Out: &out, Term: "vt100"})
	if _, err := pw.Write([]byte("rep")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitFor, "the filter", func() bool { return bytes.Contains(out.Bytes(), []byte("Filter: rep")) })
	if _, err := pw.Write([]byte("\x1b[B\r")); err != nil { // Down, Enter
		t.Fatal(err)
	}
	r := testutil.Recv(t, done, waitFor, "Run to return")
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
		if r := testutil.Recv(t, done, waitFor, "Run to return"); r.err != nil || r.c != (Choice{}) {
			t.Errorf("%q: Run = %+v, %v; want the zero Choice", k, r.c, r.err)
		}
		gw.Close()
		client.Close()
	}
	// A client that closes its input ends the picker with an error.
	pr, pw := io.Pipe()
	done := start(context.Background(), Options{In: pr, Out: io.Discard, Term: "vt100"})
	pw.Close()
	if r := testutil.Recv(t, done, waitFor, "Run to return"); !errors.Is(r.err, io.EOF) {
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
	var out testutil.Buffer
	resize := make(chan Size)
	done := start(context.Background(), Options{In: gw, Out: &out, Term: "vt100", Width: 80, Height: 24,
		Resize: resize, Now: func() time.Time { return testNow }, User: "alice"})
	testutil.Eventually(t, waitFor, "the picker", func() bool { return bytes.Contains(out.Bytes(), []byte("Switchyard")) })
	resize <- Size{Width: 40, Height: 8}

	want := newTestModel("vt100")
	next, _ := want.Update(tea.WindowSizeMsg{Width: 40, Height: 8})
	wantLines := strings.Split(next.View(), "\n")
	testutil.Eventually(t, waitFor, "a 40x8 frame", func() bool {
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
	if r := testutil.Recv(t, done, waitFor, "Run to return"); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}
