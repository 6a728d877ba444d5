package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"switchyard/brokerstate"
	"switchyard/control"
)

// TestLockRefusesPlacementsAndLists: a locked user gets CodeLocked with
// the admin's reason from Place, sessions.list and apps.list; others do
// not; a lock past its Until holds nothing; unlock lifts it.
func TestLockRefusesPlacementsAndLists(t *testing.T) {
	b := placeBroker(t)
	b.cluster.Gateways = map[string]GatewaySpec{"gw1": {}}
	ctx := context.Background()
	if err := b.LockBy(ctx, "alice", true, "root", time.Time{}, "security review"); err != nil {
		t.Fatal(err)
	}
	_, err := b.Place(ctx, control.PlaceRequest{User: "alice", App: "top", ClientAddr: "10.1.0.9:1"})
	var re *control.RemoteError
	if !errors.As(err, &re) || re.Code != control.CodeLocked || re.Message != "user locked by an administrator: security review" {
		t.Fatalf("locked alice placed: %v", err)
	}
	for _, method := range []string{control.MethodSessionsList, control.MethodAppsList} {
		body, _ := json.Marshal(control.UserRequest{User: "alice"})
		if _, err := b.gatewayCall(ctx, "gw1", method, body); control.ErrorCode(err) != control.CodeLocked {
			t.Errorf("%s for locked alice: %v", method, err)
		}
		body, _ = json.Marshal(control.UserRequest{User: "bob"})
		if _, err := b.gatewayCall(ctx, "gw1", method, body); err != nil {
			t.Errorf("%s for bob: %v", method, err)
		}
	}
	if _, err := b.Place(ctx, control.PlaceRequest{User: "bob", App: "top", ClientAddr: "10.1.0.9:1"}); err != nil {
		t.Errorf("bob refused: %v", err)
	}
	past := b.now().Add(-time.Second)
	if err := b.LockBy(ctx, "bob", true, "root", past, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Place(ctx, control.PlaceRequest{User: "bob", App: "top", ClientAddr: "10.1.0.9:1"}); err != nil {
		t.Errorf("an expired lock refused bob: %v", err)
	}
	st := b.Status()
	if len(st.Locks) != 1 || st.Locks[0].User != "alice" || st.Locks[0].By != "root" {
		t.Errorf("status locks %+v", st.Locks)
	}
	var out bytes.Buffer
	WriteStatus(&out, st)
	if !strings.Contains(out.String(), "LOCKED USER") || !strings.Contains(out.String(), "security review") {
		t.Errorf("status table without the lock:\n%s", out.String())
	}
	if err := b.LockBy(ctx, "alice", false, "root", time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Place(ctx, control.PlaceRequest{User: "alice", App: "top", ClientAddr: "10.1.0.9:1"}); err != nil {
		t.Errorf("unlocked alice refused: %v", err)
	}
}

// TestLockKeptInStoreAndRestored: a lock is in the store when LockBy
// returns, a restarted broker restores it, a follower may not lock, and
// the config's users only may be locked.
func TestLockKeptInStoreAndRestored(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	m := newMemStore()
	nb.Store = m
	nb.cluster.IsUser = func(name string) bool { return name == "alice" }
	ctx := context.Background()
	until := nb.now().Add(time.Hour)
	if err := nb.LockBy(ctx, "alice", true, "root", until, "why"); err != nil {
		t.Fatal(err)
	}
	if l := m.state().Locks["alice"]; l.By != "root" || !l.Until.Equal(until) || l.Reason != "why" {
		t.Fatalf("lock in store: %+v", l)
	}
	if err := nb.LockBy(ctx, "nobody", true, "root", time.Time{}, ""); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("lock of an unknown user: %v", err)
	}

	fresh := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	fresh.Store = m
	if err := fresh.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fresh.lockedUser("alice"); control.ErrorCode(err) != control.CodeLocked {
		t.Fatalf("restarted broker forgot the lock: %v", err)
	}

	lead := &fakeLeader{changes: make(chan struct{}, 1)}
	fresh.Leadership = lead
	if err := fresh.LockBy(ctx, "alice", false, "root", time.Time{}, ""); !errors.Is(err, ErrNotLeader) {
		t.Errorf("follower unlocked: %v", err)
	}
	if _, ok := m.state().Locks["alice"]; !ok {
		t.Error("a follower's unlock reached the store")
	}
	m.st.Locks = map[string]brokerstate.Lock{} // the leader unlocked meanwhile
	if err := fresh.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fresh.lockedUser("alice"); err != nil {
		t.Errorf("restore kept a lock the store no longer has: %v", err)
	}
}

// TestKillAndKickCallAppd: kill finds a session by id or a unique prefix
// of 6 or more characters and asks its server's appd to end it, naming
// the admin; kick does so for each of a user's sessions only.
func TestKillAndKickCallAppd(t *testing.T) {
	b := placeBroker(t)
	now := b.now()
	b.serverReport("eu1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}, Sessions: []control.SessionInfo{
		{ID: "aaaaaa111111", PID: 11, User: "alice", App: "top", Started: now},
		{ID: "aaaaaa222222", PID: 12, User: "alice", App: "top", Started: now},
		{ID: "bbbbbb333333", PID: 13, User: "bob", App: "top", Started: now},
	}})
	var calls []string
	b.callAppd = func(ctx context.Context, server, method string, req, resp any) error {
		k := req.(control.KillRequest)
		calls = append(calls, server+" "+method+" "+k.ID+" "+k.By+" "+k.Reason)
		return nil
	}
	ctx := context.Background()
	for _, id := range []string{"aaaaaa", "aaa", "cccccc"} {
		if _, err := b.Kill(ctx, id, "", "root"); err == nil {
			t.Errorf("kill %q succeeded", id)
		}
	}
	s, err := b.Kill(ctx, "bbbbbb3", "bye", "root")
	if err != nil || s.PID != 13 || len(calls) != 1 || calls[0] != "eu1 session.kill bbbbbb333333 root bye" {
		t.Fatalf("kill by prefix: %+v, %v, calls %q", s, err, calls)
	}
	calls = nil
	v := b.Kick(ctx, "alice", "review", "token")
	if len(v.Killed) != 2 || len(v.Failed) != 0 || len(calls) != 2 {
		t.Fatalf("kick: %+v, calls %q", v, calls)
	}
	for _, c := range calls {
		if !strings.Contains(c, " aaaaaa") || !strings.HasSuffix(c, " token review") {
			t.Errorf("kick call %q", c)
		}
	}
	b.callAppd = func(context.Context, string, string, any, any) error {
		return control.NewError(control.CodeNoSession, "no such session")
	}
	if _, err := b.Kill(ctx, "bbbbbb333333", "", "root"); !errors.Is(err, ErrNoSession) {
		t.Errorf("kill of a session appd no longer runs: %v", err)
	}
}
