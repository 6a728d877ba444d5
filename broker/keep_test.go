package broker

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/brokerstate"
	"switchyard/control"
	"switchyard/internal/testutil"
)

// memStore is a brokerstate.Store in memory that can be made to fail.
type memStore struct {
	mu      sync.Mutex
	st      brokerstate.State
	fail    error // returned by PutReservation and PutDrain when set
	onPut   func(brokerstate.Reservation)
	puts    int // sessions written
	deletes int
	gate    chan struct{} // Load waits for it to close, when set
}

func newMemStore() *memStore {
	return &memStore{st: brokerstate.State{Drains: map[string]brokerstate.Drain{},
		Reservations: map[string]brokerstate.Reservation{}, Sessions: map[string]control.SessionInfo{}}}
}

func (m *memStore) Load(ctx context.Context) (brokerstate.State, error) {
	m.mu.Lock()
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return brokerstate.State{Drains: maps.Clone(m.st.Drains), Locks: maps.Clone(m.st.Locks), Reservations: maps.Clone(m.st.Reservations),
		Sessions: maps.Clone(m.st.Sessions)}, nil
}

func (m *memStore) PutDrain(ctx context.Context, d brokerstate.Drain) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.st.Drains[d.Server] = d
	return nil
}

func (m *memStore) PutLock(ctx context.Context, l brokerstate.Lock) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.st.Locks == nil {
		m.st.Locks = map[string]brokerstate.Lock{}
	}
	m.st.Locks[l.User] = l
	return nil
}

func (m *memStore) DeleteLock(ctx context.Context, user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.st.Locks, user)
	return nil
}

func (m *memStore) DeleteDrain(ctx context.Context, server string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.st.Drains, server)
	return nil
}

func (m *memStore) PutReservation(ctx context.Context, r brokerstate.Reservation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.onPut != nil {
		m.onPut(r)
	}
	if m.fail != nil {
		return m.fail
	}
	m.st.Reservations[r.ID] = r
	return nil
}

func (m *memStore) DeleteReservation(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.st.Reservations, id)
	return nil
}

func (m *memStore) PutSession(ctx context.Context, s control.SessionInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.Sessions[s.ID] = s
	m.puts++
	return nil
}

func (m *memStore) DeleteSession(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.st.Sessions, id)
	m.deletes++
	return nil
}

func (m *memStore) Close() error { return nil }

func (m *memStore) state() brokerstate.State {
	st, _ := m.Load(context.Background())
	return st
}

// flush writes what nb queued for its store, as Keep would.
func (nb *netBroker) flush() { nb.writeQueued(context.Background()) }

// TestWriteThrough: drains and reservations are in the store when the
// call that made them returns; sessions and the end of reservations once
// the queue is written.
func TestWriteThrough(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	m := newMemStore()
	nb.Store = m
	ctx := context.Background()
	if err := nb.DrainBy(ctx, "s2", true, "alice"); err != nil {
		t.Fatal(err)
	}
	if d := m.state().Drains["s2"]; d.By != "alice" || !d.At.Equal(nb.now()) {
		t.Fatalf("drain in store: %+v", d)
	}
	// The reservation is durable before the redirect is answered, and
	// not yet claimable while it is being written.
	m.onPut = func(r brokerstate.Reservation) {
		nb.mu.Lock()
		defer nb.mu.Unlock()
		if len(nb.reserved) != 0 {
			t.Error("reservation recorded before it was durable")
		}
	}
	pl, err := nb.ask("gw2", term)
	if err != nil || pl.Redirect == nil {
		t.Fatalf("%+v, %v", pl, err)
	}
	r, ok := m.state().Reservations[pl.Redirect.SessionID]
	if !ok || r.PID != pl.Redirect.PID || r.Server != "s1" || r.Gateway != "gw1" || r.From != "gw2" || !r.Pty ||
		!r.Expires.Equal(pl.Redirect.Expires) {
		t.Fatalf("reservation in store: %+v (%v)", r, ok)
	}
	if len(m.state().Sessions) != 0 {
		t.Fatal("sessions written before the queue")
	}
	nb.flush()
	if s := m.state().Sessions[pl.Redirect.SessionID]; s.PID != pl.Redirect.PID || s.State != control.StateDetached {
		t.Fatalf("pre-launched session in store: %+v", s)
	}
	// Reports of the unchanged session write nothing more.
	puts := m.puts
	nb.tick(100 * time.Millisecond)
	nb.tick(100 * time.Millisecond)
	nb.flush()
	if m.puts != puts {
		t.Fatalf("unchanged reports wrote %d sessions", m.puts-puts)
	}
	if pl, err := nb.ask("gw1", term); err != nil || pl.Claim == nil {
		t.Fatalf("claim: %+v, %v", pl, err)
	}
	nb.flush()
	if n := len(m.state().Reservations); n != 0 {
		t.Fatalf("claimed reservation still in store (%d)", n)
	}
	nb.sessionEnded(control.SessionEnded{ID: pl.Redirect.SessionID, Server: "s1"})
	nb.flush()
	if n := len(m.state().Sessions); n != 0 {
		t.Fatalf("ended session still in store (%d)", n)
	}
	if err := nb.DrainBy(ctx, "s2", false, "bob"); err != nil {
		t.Fatal(err)
	}
	if n := len(m.state().Drains); n != 0 {
		t.Fatalf("undrained server still in store")
	}
}

// TestReservationNotKeptRefuses: a store that cannot keep a reservation
// refuses the placement as the broker being unavailable, releases the
// pre-launched app and records nothing; a failed drain changes nothing.
func TestReservationNotKeptRefuses(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	m := newMemStore()
	m.fail = errors.New("disk full")
	nb.Store = m
	nb.Drain("s2", true) // a drain fails too: s2 stays open
	if nb.Status().Servers[1].Draining {
		t.Fatal("a drain the store refused was applied")
	}
	nb.Store = nil
	nb.Drain("s2", true)
	nb.Store = m
	pl, err := nb.ask("gw2", term)
	if control.ErrorCode(err) != control.CodeUnavailable || pl.Redirect != nil || pl.Server != "" {
		t.Fatalf("%+v, %v; want unavailable", pl, err)
	}
	if c := nb.waitCall(2); c.method != control.MethodPrelaunchRelease {
		t.Fatalf("second appd call %+v, want a release", c)
	}
	if n := len(nb.Status().Reservations); n != 0 {
		t.Fatalf("reservation recorded (%d)", n)
	}
}

// TestRestore: a new broker applies the kept drains, reservations and
// sessions; the redirected client claims its pre-launched session.
func TestRestore(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	m := newMemStore()
	at := nb.now().Add(-time.Minute)
	m.st.Drains["s2"] = brokerstate.Drain{Server: "s2", By: "alice", At: at}
	m.st.Drains["gone"] = brokerstate.Drain{Server: "gone", By: "bob", At: at} // no longer configured
	m.st.Reservations["pre-9"] = brokerstate.Reservation{ID: "pre-9", User: "alice", App: "top", Pty: true, Server: "s1",
		Gateway: "gw1", From: "gw2", SessionID: "pre-9", PID: 4249, Expires: nb.now().Add(10 * time.Second)}
	m.st.Reservations["old"] = brokerstate.Reservation{ID: "old", User: "alice", App: "cat", Server: "s1",
		Gateway: "gw1", From: "gw2", Expires: nb.now().Add(-time.Second)}
	m.st.Sessions["pre-9"] = control.SessionInfo{ID: "pre-9", PID: 4249, User: "alice", App: "top", Server: "s1",
		Gateway: "gw1", State: control.StateDetached, Detached: at, Started: at}
	nb.Store = m
	if err := nb.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := nb.Status()
	if s := st.Servers[1]; !s.Draining || s.DrainedBy != "alice" || !s.DrainedAt.Equal(at) {
		t.Fatalf("s2 after restore: %+v", s)
	}
	if len(st.Reservations) != 1 || st.Reservations[0].PID != 4249 {
		t.Fatalf("reservations after restore: %+v", st.Reservations)
	}
	if _, ok := m.state().Reservations["old"]; ok {
		t.Fatal("expired reservation kept in the store")
	}
	if list := nb.UserSessions("alice", "gw1"); len(list.Sessions) != 1 || list.Sessions[0].PID != 4249 {
		t.Fatalf("sessions after restore: %+v", list)
	}
	nb.flush()
	if m.puts != 0 {
		t.Fatalf("restore wrote %d sessions back", m.puts)
	}
	pl, err := nb.ask("gw1", term)
	if err != nil || pl.Claim == nil || pl.Claim.PID != 4249 || pl.Server != "s1" {
		t.Fatalf("claim after restore: %+v, %v", pl, err)
	}
	if pl, err := nb.ask("gw1", term); err != nil || pl.Server != "s1" { // s2 drained: a redirect there is impossible
		t.Fatalf("%+v, %v", pl, err)
	}
}

// TestRestoreRebuildsPrelaunchedSession: a reservation kept without its
// pre-launched session (sessions are batched; the broker died before
// writing it) brings the session back, detached, so it can be claimed.
func TestRestoreRebuildsPrelaunchedSession(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	m := newMemStore()
	m.st.Reservations["pre-9"] = brokerstate.Reservation{ID: "pre-9", User: "alice", App: "top", Pty: true, Server: "s1",
		Gateway: "gw1", From: "gw2", SessionID: "pre-9", PID: 4249, Expires: nb.now().Add(10 * time.Second)}
	nb.Store = m
	if err := nb.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	list := nb.UserSessions("alice", "gw1")
	if len(list.Sessions) != 1 || list.Sessions[0].PID != 4249 || list.Sessions[0].State != control.StateDetached ||
		!list.Sessions[0].Started.Equal(nb.now().Add(10*time.Second-control.DefaultReservation)) {
		t.Fatalf("sessions after restore: %+v", list.Sessions)
	}
	if pl, err := nb.ask("gw1", term); err != nil || pl.Claim == nil || pl.Claim.PID != 4249 {
		t.Fatalf("claim: %+v, %v", pl, err)
	}
}

// TestRestoredSessionGoesWithTheFirstReport: a restored session stays
// listed until its server reports; the first report, which lists every
// session the server runs, keeps those it names and drops the others at
// once.
func TestRestoredSessionGoesWithTheFirstReport(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	m := newMemStore()
	m.st.Sessions["x"] = control.SessionInfo{ID: "x", PID: 7, User: "alice", App: "top", Server: "s1", Gateway: "gw1"}
	m.st.Sessions["y"] = control.SessionInfo{ID: "y", PID: 8, User: "alice", App: "top", Server: "s1", Gateway: "gw1"}
	nb.Store = m
	if err := nb.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	nb.advance(nb.interval() * 5) // s1 silent meanwhile: nothing drops them
	if n := len(nb.UserSessions("alice", "gw1").Sessions); n != 2 {
		t.Fatalf("%d restored sessions listed before any report, want 2", n)
	}
	report := func(sessions ...control.SessionInfo) {
		nb.linkUp("s1", +1)
		nb.serverReport("s1", control.ServerReport{MaxSessions: 10, Apps: []string{"top", "cat"}, Sessions: sessions})
	}
	report(control.SessionInfo{ID: "y", PID: 8, User: "alice", App: "top"})
	list := nb.UserSessions("alice", "gw1").Sessions
	if len(list) != 1 || list[0].ID != "y" {
		t.Fatalf("after the first report: %+v, want only y", list)
	}
	nb.advance(nb.interval() / 2)
	report() // y now ages like any other session: an interval
	if n := len(nb.UserSessions("alice", "gw1").Sessions); n != 1 {
		t.Fatal("a reported session dropped within one interval")
	}
	nb.flush()
	if _, ok := m.state().Sessions["x"]; ok {
		t.Fatal("dropped session kept in the store")
	}
}

// TestRestartWithFile: a broker writing to a real brokerstate.File, and a
// second one opening it after the first is closed, as across a restart.
func TestRestartWithFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), brokerstate.FileName)
	f, err := brokerstate.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	nb.Store = f
	ctx, cancel := context.WithCancel(context.Background())
	kept := make(chan struct{})
	go func() { defer close(kept); nb.Keep(ctx) }()
	nb.DrainBy(ctx, "s2", true, "alice")
	pl, err := nb.ask("gw2", term)
	if err != nil || pl.Redirect == nil {
		t.Fatalf("%+v, %v", pl, err)
	}
	cancel()
	<-kept
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	g, err := brokerstate.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	nb2 := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	nb2.Store = g
	if err := nb2.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := nb2.Status()
	if !st.Servers[1].Draining || st.Servers[1].DrainedBy != "alice" || len(st.Reservations) != 1 || len(st.Sessions) != 1 {
		t.Fatalf("after restart: servers %+v, reservations %+v, sessions %+v", st.Servers, st.Reservations, st.Sessions)
	}
	if pl2, err := nb2.ask("gw1", term); err != nil || pl2.Claim == nil || pl2.Claim.PID != pl.Redirect.PID {
		t.Fatalf("claim after restart: %+v, %v", pl2, err)
	}
}

// fakeLeader is a Leadership a test switches.
type fakeLeader struct {
	mu      sync.Mutex
	leading bool
	since   time.Time // of the current term
	changes chan struct{}
}

func (l *fakeLeader) Leading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

func (l *fakeLeader) Leader() (string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "", l.since
}

func (l *fakeLeader) Changes() <-chan struct{} { return l.changes }

func (l *fakeLeader) set(on bool) {
	l.mu.Lock()
	l.leading = on
	if on {
		l.since = time.Now()
	}
	l.mu.Unlock()
	select {
	case l.changes <- struct{}{}:
	default:
	}
}

// TestFollowerNeitherPlacesNorDrains, and restores what the leader kept
// when it becomes leader.
func TestFollowerNeitherPlacesNorDrains(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	lead := &fakeLeader{changes: make(chan struct{}, 1)}
	m := newMemStore()
	nb.Store, nb.Leadership = m, lead
	if _, err := nb.ask("gw1", term); control.ErrorCode(err) != control.CodeNotLeader {
		t.Fatalf("follower placed: %v", err)
	}
	if err := nb.DrainBy(context.Background(), "s1", true, "alice"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower drained: %v", err)
	}
	m.st.Drains["s1"] = brokerstate.Drain{Server: "s1", By: "bob", At: nb.now()} // the leader's
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go nb.Keep(ctx)
	lead.set(true)
	testutil.Eventually(t, 5*time.Second, "the new leader to restore the drain", func() bool { return nb.Status().Servers[0].Draining })
	if pl, err := nb.ask("gw1", term); err != nil || pl.Server != "s2" && pl.Redirect == nil {
		t.Fatalf("new leader: %+v, %v", pl, err)
	}
}

// TestNewLeaderPlacesOnlyOnceRestored: a broker just elected does not
// place until it has read what its predecessor kept (here a drain it
// never heard of); meanwhile it answers not_leader without a name, so
// the node tries again.
func TestNewLeaderPlacesOnlyOnceRestored(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	lead := &fakeLeader{changes: make(chan struct{}, 1)}
	m := newMemStore()
	nb.Store, nb.Leadership = m, lead
	if err := nb.Restore(context.Background()); err != nil { // as a follower, at start
		t.Fatal(err)
	}
	m.st.Drains["s2"] = brokerstate.Drain{Server: "s2", By: "bob", At: nb.now()} // by the leader since
	gate := make(chan struct{})
	m.mu.Lock()
	m.gate = gate
	m.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go nb.Keep(ctx)
	lead.set(true)
	_, err := nb.ask("gw2", term)
	var re *control.RemoteError
	if !errors.As(err, &re) || re.Code != control.CodeNotLeader || re.Message != "" {
		t.Fatalf("placed before restoring: %v", err)
	}
	close(gate)
	testutil.Eventually(t, 5*time.Second, "the new leader to restore the drain", func() bool { return nb.Status().Servers[1].Draining })
	for range 3 {
		// gw2 reaches only s2, drained: never placed there.
		if pl, err := nb.ask("gw2", term); pl.Server == "s2" || control.ErrorCode(err) == control.CodeNotLeader {
			t.Fatalf("restored leader: %+v, %v", pl, err)
		}
	}
}

// TestAdminDrainNamesCaller: the admin API records who drained: the
// listener's caller, or "token" on a token listener; status shows it.
func TestAdminDrainNamesCaller(t *testing.T) {
	nb := newNetBroker(t, GatewaySpec{}, GatewaySpec{})
	m := newMemStore()
	nb.Store = m
	post := func(h http.Handler, ctx context.Context, path string) int {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, nil)
		req.Header.Set("Authorization", "Bearer t0k")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	sock := nb.AdminHandler(AdminAccess{})
	if code := post(sock, WithCaller(context.Background(), "carol"), "/drain/s1"); code != 200 {
		t.Fatalf("drain: %d", code)
	}
	if by := m.state().Drains["s1"].By; by != "carol" {
		t.Fatalf("drain by %q", by)
	}
	tcp := nb.AdminHandler(AdminAccess{Token: "t0k"})
	if code := post(tcp, context.Background(), "/drain/s2"); code != 200 {
		t.Fatalf("drain: %d", code)
	}
	if by := m.state().Drains["s2"].By; by != "token" {
		t.Fatalf("drain by %q", by)
	}
	if code := post(tcp, context.Background(), "/drain/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown server: %d", code)
	}
	var out bytes.Buffer
	WriteStatus(&out, nb.Status())
	if !strings.Contains(out.String(), "yes (carol, ") || !strings.Contains(out.String(), "yes (token, ") {
		t.Fatalf("status does not show who drained:\n%s", out.String())
	}
}

// TestConfigDrainShowsConfig: draining = true shows "config".
func TestConfigDrainShowsConfig(t *testing.T) {
	b := placeBroker(t)
	c := b.cluster
	spec := c.Servers["us1"]
	spec.Draining = true
	c.Servers["us1"] = spec
	b.SetCluster(c)
	for _, s := range b.Status().Servers {
		if s.Name == "us1" && (!s.Draining || s.DrainedBy != "config") {
			t.Fatalf("us1: %+v", s)
		}
	}
}
