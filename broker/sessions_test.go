package broker

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"switchyard/control"
)

// testBroker has servers s1 (top, vi; room for 4), s2 (top; room for 10)
// and s3 (top; draining), all healthy, and users alice (top, vi) and bob
// (top).
func testBroker(t *testing.T) *Broker {
	t.Helper()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &Broker{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	allowed := map[string]map[string]bool{"alice": {"top": true, "vi": true}, "bob": {"top": true}}
	b.SetCluster(Cluster{
		Servers: map[string]ServerSpec{
			"s1": {Addr: "10.0.0.1:7101", Apps: []string{"top", "vi"}, MaxSessions: 4},
			"s2": {Addr: "10.0.0.2:7101", Apps: []string{"top"}, MaxSessions: 10},
			"s3": {Addr: "10.0.0.3:7101", Apps: []string{"top"}, MaxSessions: 10, Draining: true},
		},
		Gateways:     map[string]GatewaySpec{"gw1": {}},
		Apps:         map[string]bool{"top": true, "vi": true, "secret": true},
		Allowed:      func(user, app string) bool { return allowed[user][app] },
		Descriptions: map[string]string{"top": "process monitor", "vi": "text editor"},
	})
	for _, s := range []string{"s1", "s2", "s3"} {
		b.linkUp(s, +1)
	}
	at := func(m int) time.Time { return now.Add(time.Duration(m) * time.Minute) }
	b.serverReport("s1", control.ServerReport{Load: 0.1, Sessions: []control.SessionInfo{
		{ID: "a1", PID: 11, User: "alice", App: "top", Started: at(-30), State: control.StateDetached, Detached: at(-5)},
		{ID: "b1", PID: 12, User: "bob", App: "top", Started: at(-20), State: control.StateAttached},
	}})
	b.serverReport("s2", control.ServerReport{Load: 0.2, Sessions: []control.SessionInfo{
		{ID: "a2", PID: 21, User: "alice", App: "vi", Started: at(-10), State: control.StateAttached},
	}})
	b.serverReport("s3", control.ServerReport{Load: 0.1})
	return b
}

func TestUserSessionsOnlyTheUsers(t *testing.T) {
	b := testBroker(t)
	got := b.UserSessions("alice", "gw1").Sessions
	if len(got) != 2 || got[0].ID != "a2" || got[1].ID != "a1" {
		t.Fatalf("alice's sessions %+v, want a2 then a1", got)
	}
	if got[0].Addr != "10.0.0.2:7101" || got[1].Addr != "10.0.0.1:7101" || got[1].Server != "s1" {
		t.Errorf("addresses %+v", got)
	}
	if got[1].State != control.StateDetached || got[1].Detached.IsZero() || got[1].PID != 11 {
		t.Errorf("detached session %+v", got[1])
	}
	if got := b.UserSessions("bob", "gw1").Sessions; len(got) != 1 || got[0].ID != "b1" {
		t.Errorf("bob's sessions %+v", got)
	}
	for _, user := range []string{"", "carol"} {
		if got := b.UserSessions(user, "gw1").Sessions; got == nil || len(got) != 0 {
			t.Errorf("UserSessions(%q) = %#v, want an empty list", user, got)
		}
	}
}

func TestUserAppsHints(t *testing.T) {
	b := testBroker(t)
	got := b.UserApps("alice").Apps
	want := []control.AppInfo{
		// s1 has 2 of 4 sessions (level 0.5), s2 1 of 10 at load 0.2: mean 0.35.
		{Name: "top", Description: "process monitor", Available: true, Hint: "2 servers, low load"},
		{Name: "vi", Description: "text editor", Available: true, Hint: "1 server, moderate load"},
	}
	if len(got) != len(want) {
		t.Fatalf("alice's apps %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("app %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// s1 full: vi has nowhere to go.
	b.serverReport("s1", control.ServerReport{Load: 0.1, Sessions: []control.SessionInfo{
		{ID: "a1", User: "alice", App: "top"}, {ID: "b1", User: "bob", App: "top"},
		{ID: "b2", User: "bob", App: "top"}, {ID: "b3", User: "bob", App: "top"},
	}})
	got = b.UserApps("alice").Apps
	if got[1].Available || got[1].Hint != "unavailable" || got[0].Hint != "1 server, low load" {
		t.Errorf("with s1 full: %+v", got)
	}
	b.serverReport("s2", control.ServerReport{Load: 0.95})
	if got := b.UserApps("bob").Apps; len(got) != 1 || got[0].Hint != "1 server, busy" {
		t.Errorf("bob's apps with s2 busy: %+v", got)
	}
	if got := b.UserApps(""); len(got.Apps) != 0 {
		t.Errorf("apps of no user: %+v", got)
	}
}

func TestGatewayListCalls(t *testing.T) {
	b := testBroker(t)
	h := b.handlerFor("gw1")
	body, _ := json.Marshal(control.UserRequest{User: "bob"})
	res, err := h(context.Background(), control.MethodSessionsList, body)
	if err != nil {
		t.Fatal(err)
	}
	if l := res.(control.SessionList); len(l.Sessions) != 1 || l.Sessions[0].User != "bob" {
		t.Errorf("sessions.list for bob: %+v", l)
	}
	res, err = h(context.Background(), control.MethodAppsList, body)
	if err != nil {
		t.Fatal(err)
	}
	if l := res.(control.AppList); len(l.Apps) != 1 || l.Apps[0].Name != "top" {
		t.Errorf("apps.list for bob: %+v", l)
	}
	empty, _ := json.Marshal(control.UserRequest{})
	if _, err := h(context.Background(), control.MethodSessionsList, empty); err == nil {
		t.Error("sessions.list without a user answered")
	}
	if h := b.handlerFor("s1"); h != nil {
		if _, err := h(context.Background(), control.MethodSessionsList, body); err == nil {
			t.Error("a server may list sessions")
		}
	}
}

func TestResumeKeepsPendingPlacements(t *testing.T) {
	b := testBroker(t)
	b.mu.Lock()
	b.addPending("s1", b.now())
	b.mu.Unlock()
	b.sessionStarted(control.SessionInfo{ID: "a1", User: "alice", Server: "s1", Gateway: "gw1", State: control.StateAttached})
	b.mu.Lock()
	n := len(b.byServer["s1"].pending)
	b.mu.Unlock()
	if n != 1 {
		t.Errorf("a resumed session consumed a pending placement: %d left", n)
	}
}

// TestReportBeforeStartConfirmsPlacement: a server's report can list a
// new session before the gateway's session.started arrives; the
// placement made for it is confirmed all the same, not left to count
// against the server for pendingTTL.
func TestReportBeforeStartConfirmsPlacement(t *testing.T) {
	b := testBroker(t)
	b.mu.Lock()
	b.addPending("s1", b.now())
	b.mu.Unlock()
	placed := b.now()
	b.Now = func() time.Time { return placed.Add(time.Millisecond) } // the report comes after the placement
	fresh := control.SessionInfo{ID: "new1", User: "alice", App: "top", Server: "s1", Gateway: "gw1", State: control.StateAttached}
	b.mu.Lock()
	b.putSession(fresh, b.now())
	b.mu.Unlock()
	b.sessionStarted(fresh)
	b.mu.Lock()
	n := len(b.byServer["s1"].pending)
	b.mu.Unlock()
	if n != 0 {
		t.Errorf("%d placements still pending after the session they were for started", n)
	}
}

// A session whose server is down is not "detached" (resumable) but
// unreachable: the broker cannot tell whether it still runs.
func TestUserSessionsOnADownServerAreUnreachable(t *testing.T) {
	b := testBroker(t)
	b.linkUp("s1", -1)
	for _, si := range b.UserSessions("alice", "gw1").Sessions {
		want := control.StateAttached
		if si.Server == "s1" {
			want = control.StateUnreachable
		}
		if si.State != want {
			t.Errorf("session %s on %s: state %q, want %q", si.ID, si.Server, si.State, want)
		}
	}
}
