package sshgate

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"runtime"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/testutil"
)

// gatewayGoroutines counts the goroutines that run the gateway's own code
// (this package's files, not its tests) by the function they run: the
// one their go statement called.
func gatewayGoroutines() map[string]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		var frames []string
		ours := false
		for i := 1; i+1 < len(lines) && !strings.HasPrefix(lines[i], "created by "); i += 2 {
			fn, file := lines[i], lines[i+1]
			frames = append(frames, fn[:strings.LastIndexByte(fn, '(')])
			ours = ours || strings.HasPrefix(fn, "switchyard/sshgate.") && !strings.Contains(file, "_test.go:")
		}
		if !ours {
			continue
		}
		entry := len(frames) - 1
		if strings.Contains(frames[entry], ".gowrap") && entry > 0 {
			entry-- // go f(x) runs f through a wrapper
		}
		out[frames[entry]]++
	}
	return out
}

// openHang opens a PTY session on a new connection running "hang" (named
// by cmd, or chosen in the picker when cmd is "") and waits until the app
// runs. It returns the client to close.
func openHang(e *env, cmd string) *gossh.Client {
	e.t.Helper()
	c, err := e.dial("alice", e.alice)
	if err != nil {
		e.t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		e.t.Fatal(err)
	}
	out, _ := sess.StdoutPipe()
	if _, err := sess.StdinPipe(); err != nil { // open: the pump waits on it
		e.t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
		e.t.Fatal(err)
	}
	if cmd == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(cmd)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if l := readLine(e.t, bufio.NewReader(out)); l != "ready\n" {
		e.t.Fatalf("the app wrote %q", l)
	}
	return c
}

// After the picker has handed the session to its app, the session runs
// the very goroutines of one that named its app: one input pump, the
// relay's copies, no goroutine left from the picker.
func TestPickerLeavesNoGoroutineBehind(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.NoApp = func(context.Context, Terminal, Menu) (Choice, error) { return Choice{App: "hang"}, nil }
	})
	idle := gatewayGoroutines()
	running := func() map[string]int {
		now := gatewayGoroutines()
		for fn, n := range idle {
			if now[fn] -= n; now[fn] == 0 {
				delete(now, fn)
			}
		}
		return now
	}
	named := openHang(e, "hang")
	var direct map[string]int
	ok := testutil.Poll(waitFor, func() bool {
		direct = running()
		return direct["switchyard/sshgate.(*input).pump"] == 1 && direct["switchyard/sshgate.(*Server).bridgeOnce.func1"] == 0
	})
	if !ok {
		t.Fatalf("the named session's goroutines did not settle: %v", direct)
	}
	named.Close()
	recv(t, e.appd.events, "the named session's app to see its channel close")
	picked := openHang(e, "")
	var after map[string]int
	if !testutil.Poll(waitFor, func() bool { after = running(); return maps.Equal(after, direct) }) {
		t.Errorf("after the picker the session runs goroutines %v, where a session that named its app runs %v", after, direct)
	}
	picked.Close()
}

// The client's EOF while the picker runs reaches the app the picker chose
// all the same.
func TestPickerPassesTheClientsEOFOn(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.NoApp = func(_ context.Context, term Terminal, _ Menu) (Choice, error) {
			if b, err := io.ReadAll(term.In); err != nil || string(b) != "pick" {
				return Choice{}, fmt.Errorf("the picker read %q, %v", b, err)
			}
			return Choice{App: "echo"}, nil
		}
	})
	r := e.run(e.mustDial("alice", e.alice), "", runOpts{pty: true, stdin: "pick"})
	if r.status != 0 || r.stdout != "" {
		t.Errorf("got %+v, want echo to see EOF at once and exit 0", r)
	}
	if ev := recv(t, e.appd.events, "the app's event"); ev != "eof" {
		t.Errorf("the app saw %q, want eof", ev)
	}
}

// Window changes reach the picker while it runs (it starts with the
// latest, or hears of it); once it has returned
// they take the path of a session that named its app: the latest is
// forwarded as the app starts, the next ones as they come.
func TestPickerThenAppHearWindowChanges(t *testing.T) {
	sizes := make(chan control.PtySpec, 64)
	e := newEnv(t, func(s *Server) {
		s.NoApp = func(_ context.Context, term Terminal, _ Menu) (Choice, error) {
			sizes <- *term.Pty // the size when it starts
			term.OnResize(func(p control.PtySpec) { sizes <- p })
			b := make([]byte, 4)
			if _, err := io.ReadFull(term.In, b); err != nil {
				return Choice{}, err
			}
			return Choice{App: "hang"}, nil
		}
	})
	sess, err := e.mustDial("alice", e.alice).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in, _ := sess.StdinPipe()
	out, _ := sess.StdoutPipe()
	if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	recv(t, e.placer.listed, "the menu's sessions")
	recv(t, e.placer.listed, "the menu's apps")
	if err := sess.WindowChange(30, 100); err != nil {
		t.Fatal(err)
	}
	for p := recv(t, sizes, "the picker's size"); p.Cols != 100 || p.Rows != 30; p = recv(t, sizes, "the picker to hear the window change") {
	}
	io.WriteString(in, "pick")
	if l := readLine(t, bufio.NewReader(out)); l != "ready\n" {
		t.Fatalf("the app wrote %q", l)
	}
	if ev := recv(t, e.appd.events, "the size at the app's start"); ev != "window-change 100x30" {
		t.Errorf("the app heard %q first, want the size set during the picker", ev)
	}
	if err := sess.WindowChange(40, 120); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, e.appd.events, "the next window change"); ev != "window-change 120x40" {
		t.Errorf("the app heard %q, want window-change 120x40", ev)
	}
	if len(sizes) > 0 {
		t.Errorf("the picker heard %d window changes after it returned", len(sizes))
	}
}
