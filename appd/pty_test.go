package appd

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/sshmsg"
)

func ptyReq(app string) control.SpawnRequest {
	return control.SpawnRequest{App: app, User: "alice", Pty: &control.PtySpec{Term: "xterm-256color", Rows: 33, Cols: 101}}
}

func TestPTYSizeTermAndExitStatus(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"size": sh("stty size; echo $TERM; exit 3")})
	s := spawn(t, dialManager(t, m), ptyReq("size"))
	if got := s.exitStatus(); got != 3 {
		t.Errorf("exit status = %d, want 3", got)
	}
	out, _, _ := s.waitEnd()
	// ONLCR is on in a fresh PTY, so the app's \n arrive as \r\n.
	if want := "33 101\r\nxterm-256color\r\n"; out != want {
		t.Errorf("output = %q, want %q", out, want)
	}
}

func TestPTYWindowChange(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{
		"winch": sh(`trap "stty size" WINCH; echo ready; while :; do sleep 0.05; done`),
	})
	s := spawn(t, dialManager(t, m), ptyReq("winch"))
	s.waitOutput("ready")
	wc := sshmsg.WindowChange{Cols: 120, Rows: 40}
	if _, err := s.ch.SendRequest("window-change", false, ssh.Marshal(&wc)); err != nil {
		t.Fatal(err)
	}
	s.waitOutput("40 120\r\n")
	s.ch.Close()
}

func TestPTYRawBytesUnchanged(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{
		"raw": sh(`stty raw -echo -onlcr; printf 'a\nb\r\n'`),
	})
	s := spawn(t, dialManager(t, m), ptyReq("raw"))
	if got := s.exitStatus(); got != 0 {
		t.Errorf("exit status = %d, want 0", got)
	}
	if out, _, _ := s.waitEnd(); out != "a\nb\r\n" {
		t.Errorf("output = %q, want %q", out, "a\nb\r\n")
	}
}

// TestPTYDrainsOutput checks that output still buffered in the PTY when
// the app exits arrives whole, before the exit status.
func TestPTYDrainsOutput(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"seq": sh(`stty raw -echo -onlcr; seq 1 50000`)})
	s := spawn(t, dialManager(t, m), ptyReq("seq"))
	if got := s.exitStatus(); got != 0 {
		t.Errorf("exit status = %d, want 0", got)
	}
	var want strings.Builder
	for i := 1; i <= 50000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if out, _, _ := s.waitEnd(); out != want.String() {
		t.Errorf("output is %d bytes, want %d", len(out), want.Len())
	}
}

func TestPTYExitSignal(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"term": sh(`kill -TERM $$`)})
	s := spawn(t, dialManager(t, m), ptyReq("term"))
	if _, _, exit := s.waitEnd(); exitSignal(t, exit) != "TERM" {
		t.Errorf("exit request = %v, want exit-signal TERM", exit)
	}
}

func TestPTYSignalRequest(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{
		"usr1": sh(`trap "echo got-usr1; exit 7" USR1; echo ready; while :; do sleep 0.05; done`),
	})
	s := spawn(t, dialManager(t, m), ptyReq("usr1"))
	s.waitOutput("ready")
	if ok, err := s.ch.SendRequest("signal", true, ssh.Marshal(&sshmsg.Signal{Name: "WINCH"})); ok || err != nil {
		t.Errorf("signal WINCH (not in RFC 4254) = %v, %v; want refused", ok, err)
	}
	if _, err := s.ch.SendRequest("signal", false, ssh.Marshal(&sshmsg.Signal{Name: "USR1"})); err != nil {
		t.Fatal(err)
	}
	if got := s.exitStatus(); got != 7 {
		t.Errorf("exit status = %d, want 7", got)
	}
	s.waitOutput("got-usr1")
}

func TestPTYStdin(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"read": sh(`read line; echo "got:$line"`)})
	s := spawn(t, dialManager(t, m), ptyReq("read"))
	if _, err := s.ch.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	s.waitOutput("got:hello")
	if got := s.exitStatus(); got != 0 {
		t.Errorf("exit status = %d, want 0", got)
	}
}

// TestPTYEOFIgnored checks that channel EOF neither closes the PTY nor
// hangs the app up: the app still answers a window change afterwards.
func TestPTYEOFIgnored(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{
		"winch": sh(`trap "stty size" WINCH; echo ready; while :; do sleep 0.05; done`),
	})
	s := spawn(t, dialManager(t, m), ptyReq("winch"))
	s.waitOutput("ready")
	if err := s.ch.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	wc := sshmsg.WindowChange{Cols: 90, Rows: 30}
	if _, err := s.ch.SendRequest("window-change", false, ssh.Marshal(&wc)); err != nil {
		t.Fatal(err)
	}
	s.waitOutput("30 90\r\n")
}

// TestTerminalPollable checks the premise of the drain: a read on the
// master that newTerminal keeps is interrupted by its deadline, whereas
// creack/pty's own master is in blocking mode (its Fd() calls) although
// SetReadDeadline accepts a deadline.
func TestTerminalPollable(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if isPollable(master) {
		t.Log("creack/pty master is pollable already; the duplicate is not needed")
	}
	term := newTerminal(master)
	defer term.close()
	if !term.pollable {
		t.Fatal("terminal master is not pollable")
	}
	term.master.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := term.master.Read(make([]byte, 1))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read with deadline = %v, want ErrDeadlineExceeded", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Read ignored its deadline")
	}
}
