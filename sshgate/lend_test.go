package sshgate

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// A Read takes the bytes of the pump's Write itself; the Write returns
// once they are all taken.
func TestLentInputHandsWritesToReads(t *testing.T) {
	l := lendInput()
	wrote := make(chan error, 1)
	go func() {
		n, err := l.Write([]byte("keys"))
		if err == nil && n != 4 {
			err = io.ErrShortWrite
		}
		wrote <- err
	}()
	b := make([]byte, 3)
	if n, err := l.Read(b); err != nil || string(b[:n]) != "key" {
		t.Fatalf("first read %q, %v", b[:n], err)
	}
	select {
	case <-wrote:
		t.Fatal("the Write returned before its last byte was read")
	default:
	}
	if n, err := l.Read(b); err != nil || string(b[:n]) != "s" {
		t.Fatalf("second read %q, %v", b[:n], err)
	}
	if err := recv(t, wrote, "the Write"); err != nil {
		t.Fatal(err)
	}
}

// end takes the input back: the Write under way returns what was taken
// and errLendOver, and Read returns io.EOF, even with bytes pending.
func TestLentInputEndGivesTheRestBack(t *testing.T) {
	l := lendInput()
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		n, err := l.Write([]byte("pick-then-type"))
		wrote <- result{n, err}
	}()
	b := make([]byte, 4)
	if n, err := l.Read(b); err != nil || string(b[:n]) != "pick" {
		t.Fatalf("read %q, %v", b[:n], err)
	}
	l.end()
	if r := recv(t, wrote, "the Write"); r.n != 4 || !errors.Is(r.err, errLendOver) {
		t.Fatalf("Write after end: %d, %v; want 4, errLendOver", r.n, r.err)
	}
	if n, err := l.Read(b); n != 0 || err != io.EOF {
		t.Fatalf("Read after end: %d, %v", n, err)
	}
	if n, err := l.Write([]byte("x")); n != 0 || !errors.Is(err, errLendOver) {
		t.Fatalf("Write after end: %d, %v", n, err)
	}
}

// CloseWrite is the client's EOF: Read returns io.EOF, and the pump is
// told to pass the EOF on.
func TestLentInputEOF(t *testing.T) {
	l := lendInput()
	done := make(chan error, 1)
	go func() {
		_, err := l.Read(make([]byte, 8))
		done <- err
	}()
	if err := l.CloseWrite(); !errors.Is(err, errLendOver) {
		t.Errorf("CloseWrite = %v, want errLendOver", err)
	}
	if err := recv(t, done, "Read at EOF"); err != io.EOF {
		t.Errorf("Read at EOF: %v", err)
	}
}

// SetReadDeadline ends a pending Read without taking bytes; cleared, the
// next Read takes them.
func TestLentInputReadDeadline(t *testing.T) {
	l := lendInput()
	done := make(chan error, 1)
	go func() {
		_, err := l.Read(make([]byte, 8))
		done <- err
	}()
	l.SetReadDeadline(time.Now())
	if err := recv(t, done, "Read to time out"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read after the deadline: %v", err)
	}
	l.SetReadDeadline(time.Time{})
	go l.Write([]byte("x"))
	b := make([]byte, 8)
	if n, err := l.Read(b); err != nil || string(b[:n]) != "x" {
		t.Errorf("Read after clearing the deadline: %q, %v", b[:n], err)
	}
}

// sinkRec is an app channel for input: it reports each write and its
// half-close.
type sinkRec struct {
	writes chan string
	closed chan struct{}
}

func newSinkRec() *sinkRec {
	return &sinkRec{writes: make(chan string, 16), closed: make(chan struct{})}
}

func (s *sinkRec) Write(p []byte) (int, error) { s.writes <- string(p); return len(p), nil }
func (s *sinkRec) CloseWrite() error           { close(s.closed); return nil }

// The session's one pump feeds the picker, then the app: bytes the picker
// did not take go to the app, in order, and so does the client's EOF.
func TestInputFromPickerToApp(t *testing.T) {
	src, w := io.Pipe()
	in := startInput(src)
	defer in.stop()
	lent := lendInput()
	in.set(lent)
	go w.Write([]byte("pick-typed-ahead"))
	b := make([]byte, 5)
	if n, err := io.ReadFull(lent, b); err != nil || string(b[:n]) != "pick-" {
		t.Fatalf("the picker read %q, %v", b[:n], err)
	}
	in.set(nil)
	lent.end()
	app := newSinkRec()
	in.set(app)
	if got := recv(t, app.writes, "the app's input"); got != "typed-ahead" {
		t.Errorf("the app got %q, want the rest", got)
	}
	w.Close()
	recv(t, app.closed, "the client's EOF at the app")
	if n := in.stop(); n != 0 {
		t.Errorf("%d bytes left unsent", n)
	}
}

// The client's EOF while the picker runs ends the picker's input, and
// reaches the app if the picker chose one all the same.
func TestInputEOFDuringPickerReachesTheApp(t *testing.T) {
	src, w := io.Pipe()
	in := startInput(src)
	defer in.stop()
	lent := lendInput()
	in.set(lent)
	w.Close()
	if n, err := lent.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("the picker read %d, %v at the client's EOF", n, err)
	}
	in.set(nil)
	lent.end()
	app := newSinkRec()
	in.set(app)
	recv(t, app.closed, "the client's EOF at the app")
}
