package appd

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"switchyard/control"
)

// prelaunch asks m, through its control handler as the broker would, to
// pre-launch app for alice, held for hold.
func prelaunch(t *testing.T, m *Manager, app string, hold time.Duration) (control.Started, error) {
	t.Helper()
	body, err := json.Marshal(control.PrelaunchRequest{Spawn: ptyReq(app), Hold: hold, Gateway: "gw2"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Handler()(context.Background(), control.MethodPrelaunch, body)
	if err != nil {
		return control.Started{}, err
	}
	return res.(control.Started), nil
}

func TestPrelaunchThenClaim(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	st, err := prelaunch(t, m, "app", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	info := waitState(t, m, st.ID, control.StateDetached)
	if info.PID != st.PID || info.User != "alice" || info.Gateway != "gw2" {
		t.Errorf("pre-launched session %+v", info)
	}
	waitKept(t, m, st.ID, len("ready\r\n")) // the trap is set
	syscall.Kill(st.PID, syscall.SIGUSR1)   // output made while nobody is attached
	waitKept(t, m, st.ID, len("ready\r\nmarker\r\n"))
	a := attach(t, dialManager(t, m), attachReq(st.ID, "alice"))
	if a.started.PID != st.PID {
		t.Fatalf("claimed pid %d, pre-launched %d", a.started.PID, st.PID)
	}
	a.waitOutput("ready")
	a.waitOutput("marker")
	waitState(t, m, st.ID, control.StateAttached)
	// Claimed, the session is no longer held: releasing it does nothing.
	if err := m.Release(control.ReleaseRequest{ID: st.ID, User: "alice"}); err != nil {
		t.Fatal(err)
	}
	a.ch.Write([]byte("quit\r"))
	if got := a.exitStatus(); got != 3 {
		t.Errorf("exit %d, want 3", got)
	}
}

// waitKept waits until session id keeps at least n bytes of output.
func waitKept(t *testing.T, m *Manager, id string, n int) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); keptLen(m, id) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("session %s keeps %d bytes, want %d", id, keptLen(m, id), n)
		}
	}
}

func TestPrelaunchHoldExpires(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	st, err := prelaunch(t, m, "app", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, st.PID)
	for deadline := time.Now().Add(waitTimeout); m.Len() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sessions left after the hold: %+v", m.Sessions())
		}
	}
}

func TestPrelaunchRelease(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	st, err := prelaunch(t, m, "app", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Release(control.ReleaseRequest{ID: st.ID, User: "bob"}); control.ErrorCode(err) != control.CodeNoSession {
		t.Errorf("bob's release: %v, want no_session", err)
	}
	if syscall.Kill(st.PID, 0) != nil {
		t.Fatal("another user's release ended the session")
	}
	if err := m.Release(control.ReleaseRequest{ID: st.ID, User: "alice"}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, st.PID)
	if _, err := openChannel(t, dialManager(t, m), control.ChannelAttach, attachReq(st.ID, "alice")); err == nil {
		t.Fatal("attached to a released session")
	}
}

func TestPrelaunchRefusals(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	if _, err := prelaunch(t, m, "nope", time.Minute); control.ErrorCode(err) != control.CodeUnknownApp {
		t.Errorf("unknown app: %v", err)
	}
	if _, err := prelaunch(t, m, "app", 0); control.ErrorCode(err) != control.CodeInternal {
		t.Errorf("no hold: %v", err)
	}
	body, _ := json.Marshal(control.PrelaunchRequest{Spawn: control.SpawnRequest{App: "app", User: "alice"}, Hold: time.Minute})
	if _, err := m.Handler()(context.Background(), control.MethodPrelaunch, body); control.ErrorCode(err) != control.CodeInternal {
		t.Errorf("batch pre-launch: %v", err)
	}
	if _, err := m.Handler()(context.Background(), "spawn", nil); err == nil {
		t.Error("an unknown method was served")
	}
	if m.Len() != 0 {
		t.Errorf("refusals left sessions: %+v", m.Sessions())
	}
}
