package broker

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/selection"
)

// placeBroker has servers eu1, eu2 (region eu) and us1 (region us), all
// healthy with no sessions, and a fixed clock.
func placeBroker(t *testing.T) *Broker {
	t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Broker{Now: func() time.Time { return now }, ReportInterval: time.Second}
	apps := []string{"top"}
	b.SetCluster(Cluster{
		Servers: map[string]ServerSpec{
			"eu1": {Addr: "a:1", Region: "eu", Apps: apps, MaxSessions: 10},
			"eu2": {Addr: "a:2", Region: "eu", Apps: apps, MaxSessions: 10},
			"us1": {Addr: "a:3", Region: "us", Apps: apps, MaxSessions: 10},
		},
		Apps:    map[string]bool{"top": true},
		Allowed: func(user, app string) bool { return user != "mallory" },
		Policy:  selection.DefaultPolicy,
		RegionOf: func(ip netip.Addr) string {
			if netip.MustParsePrefix("10.1.0.0/16").Contains(ip) {
				return "eu"
			}
			return "us"
		},
		Near: map[string][]string{"eu": {"us"}, "us": {"eu"}},
	})
	for _, s := range []string{"eu1", "eu2", "us1"} {
		b.linkUp(s, +1)
		b.serverReport(s, control.ServerReport{MaxSessions: 10, Apps: apps})
	}
	return b
}

func TestPlaceUsesClientRegion(t *testing.T) {
	b := placeBroker(t)
	pl, err := b.Place(context.Background(), control.PlaceRequest{User: "alice", App: "top", ClientAddr: "10.2.0.5:4000"})
	if err != nil || pl.Server != "us1" || !strings.Contains(pl.Reason, "client in us") {
		t.Fatalf("got %+v, %v; want us1 for a us client", pl, err)
	}
	pl, err = b.Place(context.Background(), control.PlaceRequest{User: "bob", App: "top", ClientAddr: "10.2.0.5:4000", RegionHint: "eu"})
	if err != nil || !strings.HasPrefix(pl.Server, "eu") {
		t.Fatalf("region hint ignored: %+v, %v", pl, err)
	}
}

func TestPlacementsBetweenReportsSpread(t *testing.T) {
	b := placeBroker(t)
	count := map[string]int{}
	for range 8 {
		pl, err := b.Place(context.Background(), control.PlaceRequest{User: "u", App: "top", ClientAddr: "10.1.0.9:1"})
		if err != nil {
			t.Fatal(err)
		}
		count[pl.Server]++
	}
	if count["eu1"] < 3 || count["eu2"] < 3 {
		t.Fatalf("8 placements with no report in between piled up: %v", count)
	}
}

func TestPlaceRefusals(t *testing.T) {
	b := placeBroker(t)
	for _, tt := range []struct {
		req  control.PlaceRequest
		code string
	}{
		{control.PlaceRequest{User: "alice", App: "nope"}, control.CodeUnknownApp},
		{control.PlaceRequest{User: "mallory", App: "top"}, control.CodeForbidden},
	} {
		if _, err := b.Place(context.Background(), tt.req); control.ErrorCode(err) != tt.code {
			t.Errorf("%+v: got %v, want %s", tt.req, err, tt.code)
		}
	}
	for _, s := range []string{"eu1", "eu2", "us1"} {
		b.linkUp(s, -1) // every link down: no server is healthy
	}
	_, err := b.Place(context.Background(), control.PlaceRequest{User: "alice", App: "top"})
	if control.ErrorCode(err) != control.CodeNoServer {
		t.Fatalf("got %v, want no_server", err)
	}
}

func TestStaleReportsMakeServerUnhealthy(t *testing.T) {
	b := placeBroker(t)
	now := b.Now()
	b.Now = func() time.Time { return now.Add(3*time.Second + time.Millisecond) } // 3 intervals and a bit
	b.serverReport("us1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}})
	for range 4 {
		pl, err := b.Place(context.Background(), control.PlaceRequest{User: "alice", App: "top", ClientAddr: "10.1.0.1:1"})
		if err != nil || pl.Server != "us1" {
			t.Fatalf("got %+v, %v; only us1 reported within 3 intervals", pl, err)
		}
	}
}

func TestReportRebuildsSessions(t *testing.T) {
	b := placeBroker(t)
	started := b.Now()
	b.serverReport("eu1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}, Sessions: []control.SessionInfo{
		{ID: "x1", PID: 4242, User: "alice", App: "top", Started: started},
	}})
	st := b.Status()
	if len(st.Sessions) != 1 || st.Sessions[0].PID != 4242 || st.Sessions[0].Server != "eu1" {
		t.Fatalf("sessions from a report: %+v", st.Sessions)
	}
	later := started.Add(5 * time.Second)
	b.Now = func() time.Time { return later }
	b.serverReport("eu1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}})
	if n := len(b.Status().Sessions); n != 0 {
		t.Fatalf("a session the server no longer reports is still listed (%d)", n)
	}
}

func TestDrain(t *testing.T) {
	b := placeBroker(t)
	if err := b.Drain("us1", true); err != nil {
		t.Fatal(err)
	}
	pl, err := b.Place(context.Background(), control.PlaceRequest{User: "alice", App: "top", ClientAddr: "10.2.0.1:1"})
	if err != nil || pl.Server == "us1" {
		t.Fatalf("placed on drained us1: %+v, %v", pl, err)
	}
	if err := b.Drain("nope", true); err == nil {
		t.Fatal("drained an unknown server")
	}
}

// TestPlaceAvoids: a server the gateway could not reach is left out of
// that decision only, even where it would win; with every server avoided
// the answer is no_server.
func TestPlaceAvoids(t *testing.T) {
	b := placeBroker(t)
	ctx := context.Background()
	us := control.PlaceRequest{User: "alice", App: "top", ClientAddr: "10.2.0.5:4000"}
	avoiding := us
	avoiding.Avoid = []string{"us1"}
	pl, err := b.Place(ctx, avoiding)
	if err != nil || pl.Server == "us1" {
		t.Fatalf("got %+v, %v; want a server other than the avoided us1", pl, err)
	}
	if pl, err := b.Place(ctx, us); err != nil || pl.Server != "us1" {
		t.Fatalf("got %+v, %v; want us1 again once not avoided", pl, err)
	}
	avoiding.Avoid = []string{"us1", "eu1", "eu2"}
	if _, err := b.Place(ctx, avoiding); control.ErrorCode(err) != control.CodeNoServer {
		t.Fatalf("every server avoided: %v, want no_server", err)
	}
}

// A direct placement knows no session yet: once the server reports the
// session, the decision shows its id and PID (status and -json), and a
// second session of the same user and app goes to the second decision.
func TestDecisionLearnsItsSession(t *testing.T) {
	b := placeBroker(t)
	var placed []string
	for _, client := range []string{"10.1.0.1:5000", "10.1.0.1:5001"} {
		pl, err := b.Place(context.Background(), control.PlaceRequest{User: "alice", App: "top", ClientAddr: client, Gateway: "gw1"})
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, pl.Server)
	}
	if d := b.Status().Decisions; d[0].PID != 0 || d[0].Session != "" {
		t.Fatalf("a decision with a session before any report: %+v", d[0])
	}
	b.serverReport(placed[1], control.ServerReport{MaxSessions: 10, Apps: []string{"top"}, Sessions: []control.SessionInfo{
		{ID: "s2", PID: 4343, User: "alice", App: "top", ClientAddr: "10.1.0.1:5001", Started: b.Now()},
	}})
	d := b.Status().Decisions
	if d[1].Session != "s2" || d[1].PID != 4343 || d[0].Session != "" {
		t.Fatalf("after the report of the second session: %+v", d)
	}
	var out strings.Builder
	writeDecisions(&out, d)
	if !strings.Contains(out.String(), "pid 4343") {
		t.Fatalf("LAST PLACEMENTS lacks the PID:\n%s", out.String())
	}
}
