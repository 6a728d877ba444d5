package appd

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
)

// resumable prints "ready", then "marker" on SIGUSR1 and its size on
// SIGWINCH, echoes its input lines and exits 3 on "quit".
const resumable = `trap 'echo marker' USR1; trap 'echo size=$(stty size)' WINCH; echo ready; ` +
	`while :; do if read -r l; then echo got:$l; [ "$l" = quit ] && exit 3; fi; done`

// graceApp is resumable with a grace period.
func graceApp(grace time.Duration) App {
	a := sh(resumable)
	a.Grace = grace
	return a
}

// attachReq asks to attach id as user with a 33x101 terminal, the size
// ptyReq spawns with.
func attachReq(id, user string) control.AttachRequest {
	return control.AttachRequest{ID: id, User: user, Pty: &control.PtySpec{Term: "xterm-256color", Rows: 33, Cols: 101}}
}

// attach opens an attach channel and waits for started@switchyard.
func attach(t *testing.T, c *ssh.Client, req control.AttachRequest) *spawned {
	t.Helper()
	s, err := openChannel(t, c, control.ChannelAttach, req)
	if err != nil {
		t.Fatalf("attach %s: %v", req.ID, err)
	}
	return s
}

// waitState polls m.Sessions until session id is in state.
func waitState(t *testing.T, m *Manager, id, state string) control.SessionInfo {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, info := range m.Sessions() {
			if info.ID == id && info.State == state {
				return info
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s not %s after %v: %+v", id, state, waitTimeout, m.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// keptLen returns how many bytes session id keeps for its next attachment.
func keptLen(m *Manager, id string) int {
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.kept.buf)
}

func TestDetachKeepsAppAndAttachResumesIt(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	c := dialManager(t, m)
	first := spawn(t, c, ptyReq("app"))
	first.waitOutput("ready")
	pid := first.started.PID
	first.ch.Close()
	info := waitState(t, m, first.started.ID, control.StateDetached)
	if info.Detached.IsZero() || info.PID != pid || info.Gateway != "gw1" {
		t.Errorf("detached session %+v", info)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("pid %d is gone after detach", pid)
	}
	// Output produced while detached is kept.
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for keptLen(m, first.started.ID) < len("marker\r\n") {
		if time.Now().After(deadline) {
			t.Fatal("nothing kept while detached")
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := attach(t, c, attachReq(first.started.ID, "alice"))
	if second.started != first.started {
		t.Errorf("attach started %+v, want %+v", second.started, first.started)
	}
	second.waitOutput("marker\r\n")
	second.mu.Lock()
	startsWithKept := strings.HasPrefix(second.stdout.String(), "marker\r\n")
	second.mu.Unlock()
	if !startsWithKept {
		t.Errorf("the kept output does not come first")
	}
	second.waitOutput("size=33 101") // same size: nudged, so the app redraws
	info = waitState(t, m, first.started.ID, control.StateAttached)
	if !info.Detached.IsZero() || info.Gateway != "gw2" {
		t.Errorf("re-attached session %+v", info)
	}
	second.ch.Write([]byte("quit\r"))
	if got := second.exitStatus(); got != 3 {
		t.Errorf("exit status after resume = %d, want 3", got)
	}
	waitLen(t, m, 0)
}

func TestAttachResizes(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	c := dialManager(t, m)
	first := spawn(t, c, ptyReq("app"))
	first.waitOutput("ready")
	first.ch.Close()
	waitState(t, m, first.started.ID, control.StateDetached)
	req := attachReq(first.started.ID, "alice")
	req.Pty.Rows, req.Pty.Cols = 40, 120
	second := attach(t, c, req)
	second.waitOutput("size=40 120")
	second.ch.Close()
}

func TestAttachRefusedUnlessOwner(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute), "batch": sh(loop)})
	c := dialManager(t, m)
	pty := spawn(t, c, ptyReq("app"))
	pty.waitOutput("ready")
	batch := spawn(t, c, control.SpawnRequest{App: "batch", User: "alice"})
	batch.waitOutput("ready")
	pty.ch.Close()
	waitState(t, m, pty.started.ID, control.StateDetached)
	for _, tc := range []struct {
		name string
		req  control.AttachRequest
	}{
		{"another user", attachReq(pty.started.ID, "bob")},
		{"no user", attachReq(pty.started.ID, "")},
		{"no such id", attachReq("0123456789abcdef0123456789abcdef", "alice")},
		{"batch session", attachReq(batch.started.ID, "alice")},
	} {
		_, err := openChannel(t, c, control.ChannelAttach, tc.req)
		if oce := rejection(t, err); oce.Message != "no_session: no such session" {
			t.Errorf("%s: rejected with %q", tc.name, oce.Message)
		}
	}
	if syscall.Kill(pty.started.PID, 0) != nil {
		t.Error("a refused attach ended the session")
	}
	attach(t, c, attachReq(pty.started.ID, "alice")).waitOutput("size=33 101")
}

func TestTakeoverTellsTheOlderChannel(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	c := dialManager(t, m)
	old := spawn(t, c, ptyReq("app"))
	old.waitOutput("ready")
	newer := attach(t, c, attachReq(old.started.ID, "alice"))
	if got := old.exitStatus(); got != 0 {
		t.Errorf("taken-over channel exit status = %d, want 0", got)
	}
	_, stderr, _ := old.waitEnd()
	if stderr != "switchyard: session taken over by a newer connection\r\n" {
		t.Errorf("taken-over channel stderr %q", stderr)
	}
	old.mu.Lock()
	types := strings.Join(old.types, ",")
	old.mu.Unlock()
	if types != control.RequestTakenOver+",exit-status" {
		t.Errorf("taken-over channel requests %s", types)
	}
	newer.ch.Write([]byte("still\r"))
	newer.waitOutput("got:still")
	if info := waitState(t, m, old.started.ID, control.StateAttached); info.PID != old.started.PID {
		t.Errorf("session after takeover %+v", info)
	}
}

func TestGraceExpiryEndsApp(t *testing.T) {
	t.Parallel()
	grace := 300 * time.Millisecond
	stubborn := sh(`trap "" HUP; ` + resumable) // needs SIGKILL
	stubborn.Grace = grace
	m := newTestManager(t, map[string]App{"app": graceApp(grace), "stubborn": stubborn})
	c := dialManager(t, m)
	for _, app := range []string{"app", "stubborn"} {
		s := spawn(t, c, ptyReq(app))
		s.waitOutput("ready")
		s.ch.Close()
		waitGone(t, s.started.PID)
	}
	waitLen(t, m, 0)
	if got := m.Sessions(); len(got) != 0 {
		t.Errorf("Sessions() = %+v after the grace period", got)
	}
}

func TestZeroGraceHangsUpAtOnce(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(0)})
	s := spawn(t, dialManager(t, m), ptyReq("app"))
	s.waitOutput("ready")
	s.ch.Close()
	waitGone(t, s.started.PID)
	waitLen(t, m, 0)
}

func TestAppExitWhileDetached(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	c := dialManager(t, m)
	s := spawn(t, c, ptyReq("app"))
	s.waitOutput("ready")
	s.ch.Close()
	waitState(t, m, s.started.ID, control.StateDetached)
	syscall.Kill(s.started.PID, syscall.SIGTERM)
	waitLen(t, m, 0)
	_, err := openChannel(t, c, control.ChannelAttach, attachReq(s.started.ID, "alice"))
	if oce := rejection(t, err); oce.Message != "no_session: no such session" {
		t.Errorf("attach to an ended session: %q", oce.Message)
	}
}

// TestDetachedOutputIsBounded checks that a detached app writing a lot
// never blocks and that only the most recent keptOutput bytes are kept.
func TestDetachedOutputIsBounded(t *testing.T) {
	t.Parallel()
	app := sh(`stty raw -echo -onlcr; trap 'head -c 1000000 /dev/zero | tr "\0" x; echo; echo end' USR1; ` + loop)
	app.Grace = time.Minute
	m := newTestManager(t, map[string]App{"app": app})
	c := dialManager(t, m)
	s := spawn(t, c, ptyReq("app"))
	s.waitOutput("ready")
	s.ch.Close()
	waitState(t, m, s.started.ID, control.StateDetached)
	if err := syscall.Kill(s.started.PID, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	ss := m.sessions[s.started.ID]
	m.mu.Unlock()
	deadline := time.Now().Add(waitTimeout)
	for {
		ss.mu.Lock()
		done := bytes.HasSuffix(ss.kept.buf, []byte("\nend\n"))
		ss.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the detached app did not get to write its whole output")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := keptLen(m, s.started.ID); n != keptOutput {
		t.Errorf("kept %d bytes, want %d", n, keptOutput)
	}
	got := attach(t, c, attachReq(s.started.ID, "alice"))
	got.waitOutput("\nend\n")
	got.mu.Lock()
	out := got.stdout.String()
	got.mu.Unlock()
	if !strings.HasPrefix(out, strings.Repeat("x", keptOutput-len("\nend\n"))+"\nend\n") {
		t.Errorf("replayed %d bytes, starting %q", len(out), out[:min(len(out), 20)])
	}
}

// A spawn or attach relayed by another gateway names the client's gateway:
// appd reports the session as that gateway's, not the relay's (the node
// that opened the channel), as the gateway itself tells the broker.
func TestRelayedChannelsReportTheClientsGateway(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	c := dialManager(t, m) // spawns come from node gw1, attaches from gw2
	req := ptyReq("app")
	req.Gateway = "gw7"
	first := spawn(t, c, req)
	first.waitOutput("ready")
	if info := waitState(t, m, first.started.ID, control.StateAttached); info.Gateway != "gw7" {
		t.Errorf("relayed spawn reported through %q, want gw7", info.Gateway)
	}
	first.ch.Close()
	waitState(t, m, first.started.ID, control.StateDetached)
	areq := attachReq(first.started.ID, "alice")
	areq.Gateway = "gw9"
	second := attach(t, c, areq)
	if info := waitState(t, m, first.started.ID, control.StateAttached); info.Gateway != "gw9" {
		t.Errorf("relayed attach reported through %q, want gw9", info.Gateway)
	}
	second.ch.Write([]byte("quit\r"))
	if got := second.exitStatus(); got != 3 {
		t.Errorf("exit status = %d, want 3", got)
	}
	waitLen(t, m, 0)
}

// A rejoin (a gateway's ride-through) attaches a detached session, or one
// still attached through the same gateway (a link whose loss appd has not
// noticed), but never takes a session from another gateway.
func TestRejoinOnlyFromTheSameGateway(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	c := dialManager(t, m) // spawns come from node gw1, attaches from gw2
	first := spawn(t, c, ptyReq("app"))
	first.waitOutput("ready")
	req := attachReq(first.started.ID, "alice")
	req.Rejoin = true
	if _, err := openChannel(t, c, control.ChannelAttach, req); err == nil || !strings.Contains(err.Error(), control.CodeNoSession) {
		t.Fatalf("rejoin from gw2 of a session attached through gw1: %v, want %s", err, control.CodeNoSession)
	}
	if info := waitState(t, m, first.started.ID, control.StateAttached); info.Gateway != "gw1" {
		t.Fatalf("after the refused rejoin: %+v", info)
	}
	req.Gateway = "gw1" // relayed for gw1: the same gateway rejoins
	again := attach(t, c, req)
	again.ch.Write([]byte("back\r"))
	again.waitOutput("got:back")
	again.ch.Close()
	waitState(t, m, first.started.ID, control.StateDetached)
	req.Gateway = ""
	attach(t, c, req).waitOutput("size=33 101") // detached: any gateway of the user's may rejoin
}
