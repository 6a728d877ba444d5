package broker

import (
	"testing"
	"time"

	"switchyard/control"
)

// A gateway's word that a session detached shows in the user's list at
// once; a server report made before it (within an interval) does not
// undo it, a later one may; a resume (session.started) attaches it again;
// another gateway's word is ignored.
func TestGatewaySaysSessionDetached(t *testing.T) {
	b := placeBroker(t)
	now := b.Now()
	clock := func(d time.Duration) { b.Now = func() time.Time { return now.Add(d) } }
	s := control.SessionInfo{ID: "x1", PID: 42, User: "alice", App: "top", Server: "eu1", Gateway: "gw1",
		State: control.StateAttached, Started: now}
	b.sessionStarted(s)
	state := func() string {
		t.Helper()
		l := b.UserSessions("alice", "gw2").Sessions
		if len(l) != 1 {
			t.Fatalf("alice has %d sessions", len(l))
		}
		return l[0].State
	}
	attachedReport := control.ServerReport{MaxSessions: 10, Apps: []string{"top"}, Sessions: []control.SessionInfo{
		{ID: "x1", PID: 42, User: "alice", App: "top", State: control.StateAttached, Started: now}}}

	b.sessionDetached("gw2", s) // not the gateway carrying it
	if got := state(); got != control.StateAttached {
		t.Fatalf("another gateway detached it: %s", got)
	}
	clock(100 * time.Millisecond)
	b.sessionDetached("gw1", s)
	if got := state(); got != control.StateDetached {
		t.Fatalf("after the gateway's detach: %s, want detached", got)
	}
	clock(600 * time.Millisecond) // a report made before the detach arrives
	b.serverReport("eu1", attachedReport)
	if got := state(); got != control.StateDetached {
		t.Fatalf("a report within an interval of the detach undid it: %s", got)
	}
	b.sessionStarted(s) // resumed
	if got := state(); got != control.StateAttached {
		t.Fatalf("after a resume: %s, want attached", got)
	}
	clock(700 * time.Millisecond)
	b.sessionDetached("gw1", s)
	clock(700*time.Millisecond + b.interval())
	b.serverReport("eu1", attachedReport) // the server says so, an interval on
	if got := state(); got != control.StateAttached {
		t.Fatalf("a report an interval after the detach is ignored: %s", got)
	}
}
