package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/internal/testutil"
	"switchyard/selection"
)

// appdCall is one call the broker made to an appd.
type appdCall struct {
	server, method string
	req            any
}

// netBroker has two gateways with disjoint networks, gw1 reaching s1 (in
// region eu) and gw2 reaching s2 (in region us), both hinting, both
// linked and reporting; a eu client prefers s1. Calls to appd are
// recorded, and pre-launches answer session "pre-N" with pid 4240+N.
type netBroker struct {
	*Broker
	t     *testing.T
	clock time.Time
	mu    sync.Mutex
	calls []appdCall
	fail  error // returned by every appd call when set
}

func newNetBroker(t *testing.T, gw1, gw2 GatewaySpec) *netBroker {
	t.Helper()
	nb := &netBroker{t: t, clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := &Broker{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReportInterval: time.Second,
		Now: func() time.Time { return nb.now() }}
	nb.Broker = b
	b.callAppd = nb.call
	apps := []string{"top", "cat"}
	gw1.Region, gw1.Reach, gw1.Address = "eu", []string{"s1"}, "gw1.example.com:22"
	gw2.Region, gw2.Reach, gw2.Address = "us", []string{"s2"}, "gw2.example.com:2223"
	b.SetCluster(Cluster{
		Servers: map[string]ServerSpec{
			"s1": {Addr: "10.0.0.1:7101", Region: "eu", Apps: apps, MaxSessions: 10},
			"s2": {Addr: "10.0.0.2:7101", Region: "us", Apps: apps, MaxSessions: 10},
		},
		Gateways: map[string]GatewaySpec{"gw1": gw1, "gw2": gw2},
		Apps:     map[string]bool{"top": true, "cat": true},
		Allowed:  func(user, app string) bool { return true },
		Policy:   selection.DefaultPolicy,
		RegionOf: func(ip netip.Addr) string { return "eu" },
		Near:     map[string][]string{"eu": {"us"}, "us": {"eu"}},
	})
	for _, s := range []string{"s1", "s2"} {
		b.linkUp(s, +1)
		b.serverReport(s, control.ServerReport{MaxSessions: 10, Apps: apps})
	}
	for _, g := range []string{"gw1", "gw2"} {
		b.linkUp(g, +1)
		b.gatewayReport(g, control.GatewayReport{Capacity: 100})
	}
	return nb
}

func (nb *netBroker) now() time.Time {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	return nb.clock
}

func (nb *netBroker) advance(d time.Duration) {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	nb.clock = nb.clock.Add(d)
}

func (nb *netBroker) call(ctx context.Context, server, method string, req, resp any) error {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	nb.calls = append(nb.calls, appdCall{server, method, req})
	if nb.fail != nil {
		return nb.fail
	}
	if st, ok := resp.(*control.Started); ok {
		n := len(nb.calls)
		*st = control.Started{ID: "pre-" + string(rune('0'+n)), PID: 4240 + n}
	}
	return nil
}

// waitCall waits for the broker's nth appd call (releases run in the
// background) and returns it.
func (nb *netBroker) waitCall(n int) appdCall {
	nb.t.Helper()
	var c appdCall
	testutil.Eventually(nb.t, 5*time.Second, fmt.Sprintf("appd call %d", n), func() bool {
		nb.mu.Lock()
		defer nb.mu.Unlock()
		if len(nb.calls) < n {
			return false
		}
		c = nb.calls[n-1]
		return true
	})
	return c
}

// tick moves the clock on by d, with every node reporting just then.
func (nb *netBroker) tick(d time.Duration) {
	nb.advance(d)
	for _, s := range []string{"s1", "s2"} {
		nb.serverReport(s, control.ServerReport{MaxSessions: 10, Apps: []string{"top", "cat"}, Sessions: nb.sessionsOn(s)})
	}
	for _, g := range []string{"gw1", "gw2"} {
		nb.gatewayReport(g, control.GatewayReport{Capacity: 100})
	}
}

// sessionsOn is what server s would report: the sessions the broker knows there.
func (nb *netBroker) sessionsOn(s string) []control.SessionInfo {
	return sessionsKnownOn(nb.Broker, s)
}

func (nb *netBroker) ncalls() int {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	return len(nb.calls)
}

var term = &control.PtySpec{Term: "xterm", Cols: 80, Rows: 24}

// ask places top for alice (a eu client) from gateway gw.
func (nb *netBroker) ask(gw string, pty *control.PtySpec) (control.Placement, error) {
	return nb.Place(context.Background(), control.PlaceRequest{User: "alice", App: "top", ClientAddr: "10.1.0.5:999",
		Gateway: gw, Pty: pty, Env: map[string]string{"LANG": "C"}})
}

func TestRedirectPrelaunchesThenClaimConfirms(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	pl, err := nb.ask("gw2", term)
	if err != nil {
		t.Fatal(err)
	}
	rd := pl.Redirect
	want := control.Redirect{Gateway: "gw1", Address: "gw1.example.com:22", SessionID: "pre-1", PID: 4241,
		Expires: nb.now().Add(control.DefaultReservation)}
	if rd == nil || *rd != want || pl.Server != "s1" || pl.Claim != nil || pl.Via != nil {
		t.Fatalf("placement %+v redirect %+v, want %+v", pl, rd, want)
	}
	c := nb.waitCall(1)
	preq, _ := c.req.(control.PrelaunchRequest)
	if c.server != "s1" || c.method != control.MethodPrelaunch || preq.Hold != control.DefaultReservation+claimMargin ||
		preq.Gateway != "gw1" || preq.Spawn.Pty != term || preq.Spawn.User != "alice" || preq.Spawn.Env["LANG"] != "C" {
		t.Fatalf("pre-launch call %+v", c)
	}
	st := nb.Status()
	if len(st.Reservations) != 1 || st.Reservations[0].PID != 4241 || st.Reservations[0].Gateway != "gw1" || st.Reservations[0].From != "gw2" {
		t.Fatalf("reservations %+v", st.Reservations)
	}
	if len(st.Sessions) != 1 || st.Sessions[0].State != control.StateDetached || st.Sessions[0].PID != 4241 {
		t.Fatalf("sessions %+v", st.Sessions)
	}
	d := st.Decisions[len(st.Decisions)-1]
	if d.Route != RouteRedirect || d.Target != "gw1" || d.PID != 4241 || !strings.Contains(d.Reason, "redirect from gw2") ||
		!strings.Contains(d.Reason, "pre-launched pid 4241") {
		t.Fatalf("decision %+v", d)
	}

	nb.tick(control.DefaultReservation - time.Millisecond) // just in time
	pl, err = nb.ask("gw1", term)
	if err != nil || pl.Claim == nil || *pl.Claim != (control.Claim{SessionID: "pre-1", PID: 4241}) || pl.Server != "s1" || pl.Redirect != nil {
		t.Fatalf("claim: %+v, %v", pl, err)
	}
	if n := len(nb.Status().Reservations); n != 0 {
		t.Errorf("a claimed reservation is still listed (%d)", n)
	}
	if d := nb.Status().Decisions; d[len(d)-1].Route != RouteClaim {
		t.Errorf("claim decision %+v", d[len(d)-1])
	}
	if nb.ncalls() != 1 {
		t.Errorf("a claim called appd: %+v", nb.calls)
	}
}

func TestRedirectNeverBounces(t *testing.T) {
	for _, tt := range []struct {
		name    string
		arrive  string // gateway the client reaches with its reservation
		change  func(nb *netBroker)
		server  string // where it is served; "" for an error
		errPart string
	}{
		{"reservation's server drained; the other server is the other gateway's", "gw1",
			func(nb *netBroker) { nb.Drain("s1", true); nb.Drain("s2", false) }, "", "no server available from gateway gw1"},
		{"reservation's server down", "gw1",
			func(nb *netBroker) { nb.linkUp("s1", -1); nb.Drain("s2", false) }, "", "from gateway gw1"},
		{"client went back to the first gateway", "gw2",
			func(nb *netBroker) { nb.Drain("s2", false) }, "s2", ""},
		{"client went back, nothing there", "gw2",
			func(nb *netBroker) {}, "", "no server available from gateway gw2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
			nb.Drain("s2", true) // s1 wins: gw2's client is sent to gw1
			if pl, err := nb.ask("gw2", term); err != nil || pl.Redirect == nil {
				t.Fatalf("first placement %+v, %v", pl, err)
			}
			tt.change(nb)
			pl, err := nb.ask(tt.arrive, term)
			if pl.Redirect != nil || pl.Claim != nil {
				t.Fatalf("redirected client got %+v", pl)
			}
			switch {
			case tt.server == "" && (control.ErrorCode(err) != control.CodeNoServer || !strings.Contains(err.Error(), tt.errPart)):
				t.Fatalf("got %+v, %v; want no_server containing %q", pl, err, tt.errPart)
			case tt.server != "" && (err != nil || pl.Server != tt.server):
				t.Fatalf("got %+v, %v; want %s", pl, err, tt.server)
			}
			c := nb.waitCall(2)
			if rel, _ := c.req.(control.ReleaseRequest); c.method != control.MethodPrelaunchRelease || rel.ID != "pre-1" || rel.User != "alice" {
				t.Errorf("the unused pre-launched app was not released: %+v", c)
			}
			d := nb.Status().Decisions
			if !strings.Contains(d[len(d)-1].Reason, "reservation of pid 4241 on s1 not used") {
				t.Errorf("decision %+v", d[len(d)-1])
			}
		})
	}
}

func TestReservationExpires(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	nb.Drain("s2", true)
	if pl, err := nb.ask("gw2", term); err != nil || pl.Redirect == nil {
		t.Fatalf("%+v, %v", pl, err)
	}
	nb.tick(control.DefaultReservation + time.Millisecond)
	if n := len(nb.Status().Reservations); n != 0 {
		t.Fatalf("expired reservation listed (%d)", n)
	}
	pl, err := nb.ask("gw1", term)
	if err != nil || pl.Claim != nil || pl.Redirect != nil || pl.Server != "s1" {
		t.Fatalf("after expiry: %+v, %v; want a fresh placement on s1", pl, err)
	}
	if nb.ncalls() != 1 {
		t.Errorf("expiry made appd calls: %+v (appd's hold ends the process)", nb.calls)
	}
	// Another redirect now would be a new one, not a bounce.
	if pl, err := nb.ask("gw2", term); err != nil || pl.Redirect == nil {
		t.Fatalf("a new request after expiry: %+v, %v", pl, err)
	}
}

func TestBatchRedirectAndFailedPrelaunch(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	nb.Drain("s2", true)
	pl, err := nb.ask("gw2", nil)
	if err != nil || pl.Redirect == nil || pl.Redirect.SessionID != "" || pl.Redirect.PID != 0 {
		t.Fatalf("batch redirect %+v, %v", pl, err)
	}
	if nb.ncalls() != 0 {
		t.Fatalf("a batch session was pre-launched: %+v", nb.calls)
	}
	pl, err = nb.ask("gw1", nil)
	if err != nil || pl.Redirect != nil || pl.Claim != nil || pl.Server != "s1" {
		t.Fatalf("batch client arriving: %+v, %v", pl, err)
	}
	nb.fail = errors.New("appd says no")
	pl, err = nb.ask("gw2", term)
	if err != nil || pl.Redirect == nil || pl.Redirect.SessionID != "" || !strings.Contains(pl.Reason, "pre-launch failed: appd says no") {
		t.Fatalf("failed pre-launch: %+v, %v", pl, err)
	}
	if st := nb.Status(); len(st.Reservations) != 1 || st.Reservations[0].PID != 0 {
		t.Fatalf("reservations after a failed pre-launch %+v", st.Reservations)
	}
}

func TestRelayMode(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{Internal: "10.0.0.11:7201"}, GatewaySpec{Redirect: RedirectRelay})
	nb.Drain("s2", true)
	pl, err := nb.ask("gw2", term)
	if err != nil || pl.Redirect != nil || pl.Via == nil || *pl.Via != (control.Via{Gateway: "gw1", Addr: "10.0.0.11:7201"}) || pl.Server != "s1" {
		t.Fatalf("relay placement %+v, %v", pl, err)
	}
	if nb.ncalls() != 0 || len(nb.Status().Reservations) != 0 {
		t.Fatalf("relay pre-launched or reserved: %+v", nb.calls)
	}
	// A relaying gateway that reaches the server serves it itself, even
	// when another gateway scores better.
	nb.Drain("s2", false)
	nb.Drain("s1", true)
	pl, err = nb.ask("gw2", term)
	if err != nil || pl.Via != nil || pl.Redirect != nil || pl.Server != "s2" {
		t.Fatalf("relay gateway reaching the server: %+v, %v", pl, err)
	}
}

func TestDownGatewayNeverChosen(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	nb.linkUp("gw1", -1) // gw1 stopped
	for range 3 {
		pl, err := nb.ask("gw2", term) // s1 would win, but only gw1 reaches it
		if err != nil || pl.Redirect != nil || pl.Server != "s2" || !strings.Contains(pl.Reason, "not carried by any gateway: [s1]") {
			t.Fatalf("with gw1 down: %+v, %v", pl, err)
		}
	}
	nb.Drain("s2", true)
	_, err := nb.ask("gw2", term)
	if control.ErrorCode(err) != control.CodeNoServer || !strings.Contains(err.Error(), "no gateway can carry a session to [s1]") {
		t.Fatalf("got %v", err)
	}
	// Stale reports count as down too.
	nb.linkUp("gw1", +1)
	nb.advance(3*time.Second + time.Millisecond)
	nb.serverReport("s1", control.ServerReport{MaxSessions: 10})
	nb.serverReport("s2", control.ServerReport{MaxSessions: 10})
	nb.gatewayReport("gw2", control.GatewayReport{})
	if _, err := nb.ask("gw2", term); control.ErrorCode(err) != control.CodeNoServer {
		t.Fatalf("gw1 silent for 3 intervals was chosen: %v", err)
	}
}

func TestResumedReservationIsDropped(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	nb.Drain("s2", true)
	if pl, err := nb.ask("gw2", term); err != nil || pl.Redirect == nil {
		t.Fatalf("%+v, %v", pl, err)
	}
	// The user resumed the pre-launched session through the picker instead.
	nb.sessionStarted(control.SessionInfo{ID: "pre-1", PID: 4241, User: "alice", App: "top", Server: "s1", Gateway: "gw1"})
	if n := len(nb.Status().Reservations); n != 0 {
		t.Fatalf("reservation of an attached session still listed (%d)", n)
	}
	if pl, err := nb.ask("gw1", term); err != nil || pl.Claim != nil {
		t.Fatalf("claimed a session attached elsewhere: %+v, %v", pl, err)
	}
}

func TestOneGatewayUnchanged(t *testing.T) {
	b := testBroker(t)
	b.linkUp("gw1", +1)
	pl, err := b.Place(context.Background(), control.PlaceRequest{User: "alice", App: "top", Gateway: "gw1", Pty: term})
	if err != nil || pl.Redirect != nil || pl.Via != nil || pl.Claim != nil || strings.Contains(pl.Reason, "gateway") {
		t.Fatalf("one gateway: %+v, %v", pl, err)
	}
}

func TestStatusShowsReservations(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{Redirect: RedirectHint})
	nb.Drain("s2", true)
	if pl, err := nb.ask("gw2", term); err != nil || pl.Redirect == nil {
		t.Fatalf("%+v, %v", pl, err)
	}
	st := nb.Status()
	var gw2 GatewayStatus
	for _, g := range st.Gateways {
		if g.Name == "gw2" {
			gw2 = g
		}
	}
	if !gw2.Healthy || gw2.Redirect != RedirectHint || strings.Join(gw2.Reach, ",") != "s2" {
		t.Errorf("gateway status %+v", gw2)
	}
	var out strings.Builder
	if err := WriteStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"REDIRECT", "gw2      yes        hint      s2", "RESERVATION", "pre-1", "4241", "30.0s", "redirect gw1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCarriableFiltersInPlace(t *testing.T) {
	b := &Broker{}
	b.SetCluster(Cluster{Gateways: map[string]GatewaySpec{"gw1": {Reach: []string{"s1", "s3", "s4"}}}})
	servers := []selection.Server{{Name: "s1"}, {Name: "s2"}, {Name: "s3"}, {Name: "s4"}, {Name: "s5"}}
	gws := []selection.Gateway{{Name: "gw1", Reach: []string{"s1", "s3", "s4"}, Healthy: true}}
	got, dropped := b.carriable(servers, gws, "gw1", true)
	if names := namesOfServers(got); !slices.Equal(names, []string{"s1", "s3", "s4"}) || !slices.Equal(dropped, []string{"s2", "s5"}) {
		t.Fatalf("carried %v, dropped %v", names, dropped)
	}
	if &got[0] != &servers[0] {
		t.Error("carriable copied the servers")
	}
}

func namesOfServers(servers []selection.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Name)
	}
	return out
}

// A session on a server the asking gateway does not reach is listed with
// the gateway to relay through: any healthy one with an internal listener
// and room that reaches the server, whatever the asking gateway's redirect
// mode. With none, Via stays nil and Addr is still given.
func TestUserSessionsVia(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{Internal: "10.0.0.11:7201", Capacity: 2}, GatewaySpec{}) // gw2 hints and has no internal listener
	nb.serverReport("s1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}, Sessions: []control.SessionInfo{
		{ID: "on1", User: "alice", App: "top", State: control.StateDetached},
		{ID: "on1b", User: "alice", App: "top"},
	}})
	nb.serverReport("s2", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}, Sessions: []control.SessionInfo{
		{ID: "on2", User: "alice", App: "top", State: control.StateDetached},
	}})
	via := func(gateway string) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, s := range nb.UserSessions("alice", gateway).Sessions {
			if s.Addr != nb.cluster.Servers[s.Server].Addr {
				t.Errorf("session %s on %s listed with addr %q", s.ID, s.Server, s.Addr)
			}
			got[s.ID] = "-"
			if s.Via != nil {
				got[s.ID] = s.Via.Gateway + "@" + s.Via.Addr
			}
		}
		return got
	}
	check := func(what, gateway string, want map[string]string) {
		t.Helper()
		if got := via(gateway); !maps.Equal(got, want) {
			t.Errorf("%s: sessions listed for %s relay through %v, want %v", what, gateway, got, want)
		}
	}
	check("gw2 reaches s2 only", "gw2", map[string]string{"on1": "gw1@10.0.0.11:7201", "on1b": "gw1@10.0.0.11:7201", "on2": "-"})
	check("gw2 has no internal listener", "gw1", map[string]string{"on1": "-", "on1b": "-", "on2": "-"})
	check("a gateway not configured", "gw9", map[string]string{"on1": "-", "on1b": "-", "on2": "-"})

	// The RPC gives the broker the asking gateway's name.
	body, _ := json.Marshal(control.UserRequest{User: "alice"})
	res, err := nb.handlerFor("gw2")(context.Background(), control.MethodSessionsList, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.(control.SessionList).Sessions {
		if (s.Via != nil) != (s.Server == "s1") {
			t.Errorf("sessions.list from gw2: %s on %s via %+v", s.ID, s.Server, s.Via)
		}
	}

	nb.gatewayReport("gw1", control.GatewayReport{Sessions: 2})
	check("gw1 full", "gw2", map[string]string{"on1": "-", "on1b": "-", "on2": "-"})
	nb.gatewayReport("gw1", control.GatewayReport{Sessions: 1})
	check("gw1 with room again", "gw2", map[string]string{"on1": "gw1@10.0.0.11:7201", "on1b": "gw1@10.0.0.11:7201", "on2": "-"})
	nb.linkUp("gw1", -1)
	check("gw1 down", "gw2", map[string]string{"on1": "-", "on1b": "-", "on2": "-"})
}
