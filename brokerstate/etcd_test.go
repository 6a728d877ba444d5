package brokerstate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/internal/etcdtest"
	"switchyard/internal/testutil"
)

// testTTL is the lease of the election tests: the default, which is what
// the failover figure is about.
const testTTL = DefaultLeaseTTL

// open opens a store named name on endpoints under prefix, closed when
// the test ends.
func open(t *testing.T, eps []string, prefix, cluster, name string) *Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := OpenEtcd(ctx, EtcdConfig{
		Endpoints: eps, Prefix: prefix, Cluster: cluster, Name: name,
		LeaseTTL: testTTL, DialTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(testLogOut, &slog.HandlerOptions{Level: slog.LevelDebug})).With("broker", name),
	})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// eventually polls cond until it holds, failing after d, and returns how
// long that took.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	testutil.Eventually(t, d, what, cond)
	return time.Since(start)
}

// TestEtcd shares one three-member cluster among the store's tests, each
// under its own prefix; the quorum test stops members, so it runs last.
func TestEtcd(t *testing.T) {
	start := time.Now()
	c := etcdtest.Start(t, 3)
	t.Logf("3-member etcd ready in %v", time.Since(start))
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, c.Endpoints()) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, c.Endpoints()) })
	t.Run("Failover", func(t *testing.T) { testFailover(t, c.Endpoints()) })
	t.Run("QuorumLost", func(t *testing.T) { testQuorumLost(t, c) })
}

func testRoundTrip(t *testing.T, eps []string) {
	ctx := context.Background()
	e := open(t, eps, "/rt/", "c1", "")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := Drain{Server: "s1", By: "alice", At: at}
	r := Reservation{ID: "r1", User: "bob", App: "top", Args: []string{"-d", "1"}, Pty: true, Server: "s2",
		Gateway: "gw2", From: "gw1", SessionID: "x1", PID: 42, Expires: at.Add(30 * time.Second)}
	must(t, e.PutDrain(ctx, d))
	must(t, e.PutDrain(ctx, Drain{Server: "s9", By: "token", At: at}))
	must(t, e.DeleteDrain(ctx, "s9"))
	lk := Lock{User: "mallory", By: "root", At: at, Until: at.Add(time.Hour), Reason: "audit"}
	must(t, e.PutLock(ctx, lk))
	must(t, e.PutLock(ctx, Lock{User: "eve", By: "token", At: at}))
	must(t, e.DeleteLock(ctx, "eve"))
	must(t, e.PutReservation(ctx, r))
	must(t, e.PutReservation(ctx, Reservation{ID: "r2"}))
	must(t, e.DeleteReservation(ctx, "r2"))
	var want []control.SessionInfo
	for i := range 250 { // more than one transaction's worth
		s := control.SessionInfo{ID: fmt.Sprintf("s%03d", i), PID: 1000 + i, User: "u", App: "top", Server: "s1", Gateway: "gw1", Started: at}
		must(t, e.PutSession(ctx, s))
		if i%10 == 0 {
			must(t, e.DeleteSession(ctx, s.ID))
		} else {
			want = append(want, s)
		}
	}
	// Close flushes the queued sessions; a new store reads everything.
	must(t, e.Close())
	if err := e.PutSession(ctx, control.SessionInfo{ID: "late"}); err == nil {
		t.Errorf("PutSession after Close succeeded")
	}
	st, err := open(t, eps, "/rt/", "c1", "").Load(ctx)
	must(t, err)
	if !reflect.DeepEqual(st.Drains, map[string]Drain{"s1": d}) {
		t.Errorf("drains %+v", st.Drains)
	}
	if !reflect.DeepEqual(st.Locks, map[string]Lock{"mallory": lk}) {
		t.Errorf("locks %+v", st.Locks)
	}
	if !reflect.DeepEqual(st.Reservations, map[string]Reservation{"r1": r}) {
		t.Errorf("reservations %+v", st.Reservations)
	}
	if len(st.Sessions) != len(want) {
		t.Fatalf("%d sessions, want %d", len(st.Sessions), len(want))
	}
	for _, s := range want {
		if got := st.Sessions[s.ID]; !reflect.DeepEqual(got, s) {
			t.Fatalf("session %s: %+v, want %+v", s.ID, got, s)
		}
	}
	if l := e.Latency(); l.Count == 0 || l.Mean <= 0 || l.Errors != 0 {
		t.Errorf("latency %+v", l)
	}
}

func testRefusals(t *testing.T, eps []string) {
	ctx := context.Background()
	e := open(t, eps, "/ref/", "A", "")
	if _, err := e.client.Put(ctx, "/fmt/format", "2"); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ prefix, cluster, want string }{
		{"/ref/", "B", "etcd prefix /ref/ holds cluster A's data, not B's"},
		{"/fmt/", "A", "etcd prefix /fmt/ holds format 2; this broker knows 1"},
	}
	for _, tc := range cases {
		_, err := OpenEtcd(ctx, EtcdConfig{Endpoints: eps, Prefix: tc.prefix, Cluster: tc.cluster})
		if err == nil || err.Error() != tc.want {
			t.Errorf("open %s as %s: %v, want %q", tc.prefix, tc.cluster, err, tc.want)
		}
	}
	// Same cluster again: accepted.
	open(t, eps, "/ref/", "A", "")

	// Nothing listening: refused at once, naming the endpoint and cause.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close()
	start := time.Now()
	_, err = OpenEtcd(ctx, EtcdConfig{Endpoints: []string{dead}, Cluster: "A", DialTimeout: time.Second})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "etcd "+dead+": ") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("open of a dead endpoint: %v", err)
	}
	if took > 3*time.Second {
		t.Errorf("open of a dead endpoint took %v with a 1s dial timeout", took)
	}
	t.Logf("dead endpoint refused in %v: %v", took, err)
}

func testFailover(t *testing.T, eps []string) {
	const tries = 5
	var times []time.Duration
	a := open(t, eps, "/fo/", "c", "b1")
	for i := range tries {
		b := open(t, eps, "/fo/", "c", fmt.Sprintf("b%d", i+2))
		eventually(t, 10*time.Second, "one leader", func() bool { return a.Leading() != b.Leading() })
		leader, other := a, b
		if b.Leading() {
			leader, other = b, a
		}
		if name, _ := other.Leader(); name != leader.cfg.Name {
			eventually(t, 5*time.Second, "the other sees the leader", func() bool {
				name, _ := other.Leader()
				return name == leader.cfg.Name
			})
		}
		var cands []Candidate
		eventually(t, 5*time.Second, "two candidates", func() bool {
			var err error
			cands, err = other.Candidates(context.Background())
			must(t, err)
			return len(cands) == 2
		})
		if !cands[0].Leader || cands[0].Name != leader.cfg.Name {
			t.Fatalf("candidates %+v, leader %s", cands, leader.cfg.Name)
		}
		// Kill the leader: no resign, its lease runs out.
		killed := time.Now()
		must(t, leader.shutdown(false))
		eventually(t, testTTL+3*time.Second, "the other leads", func() bool {
			if leader.Leading() {
				t.Fatalf("the killed broker still leads")
			}
			return other.Leading()
		})
		times = append(times, time.Since(killed))
		a = other
	}
	slices.Sort(times)
	t.Logf("failover after kill (TTL %v), %d tries: min %v, median %v, max %v, all %v",
		testTTL, tries, times[0], times[tries/2], times[tries-1], times)

	// A clean Close hands over at once.
	b := open(t, eps, "/fo/", "c", "clean")
	eventually(t, 5*time.Second, "a leads", a.Leading)
	closed := time.Now()
	must(t, a.Close())
	eventually(t, 2*time.Second, "b leads after a's Close", b.Leading)
	t.Logf("handover after Close: %v", time.Since(closed))
}

func testQuorumLost(t *testing.T, c *etcdtest.Cluster) {
	eps := c.Endpoints()
	a := open(t, eps, "/q/", "c", "a")
	b := open(t, eps, "/q/", "c", "b")
	eventually(t, 10*time.Second, "one leader", func() bool { return a.Leading() != b.Leading() })
	leader := a
	if b.Leading() {
		leader = b
	}
	// The leader's Changes signals the loss; Leading turns false within
	// the TTL, and nobody leads while quorum is lost.
	drain(leader.Changes())
	c.Stop(1)
	c.Stop(2)
	// The bound is TTL − TTL/3 after the last renewal sent; an etcd leader
	// that lost its peers still renews for up to an election timeout (1s)
	// before it steps down, which etcd makes up for by extending every
	// lease by as much when a new leader takes over.
	d := eventually(t, testTTL+time.Second, "the leader stops leading", func() bool { return !leader.Leading() })
	select {
	case <-leader.Changes():
	case <-time.After(time.Second):
		t.Errorf("no Changes signal when leading stopped")
	}
	t.Logf("quorum lost: the leader stopped leading %v after the second member stopped", d)
	deadline := time.Now().Add(2 * testTTL)
	for time.Now().Before(deadline) {
		if a.Leading() || b.Leading() {
			t.Fatalf("a broker leads without quorum")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := a.Health(context.Background())
	if h[0].Err != "" || h[0].Leader != 0 || h[1].Err == "" || h[2].Err == "" {
		t.Errorf("health without quorum: %+v", h)
	}
	restarted := time.Now()
	c.RestartAll()
	t.Logf("members back in %v", time.Since(restarted))
	d = eventually(t, 30*time.Second, "a leader again", func() bool { return a.Leading() != b.Leading() })
	t.Logf("a leader again %v after the members were back", d)
	for _, h := range a.Health(context.Background()) {
		if h.Err != "" || h.Leader == 0 || h.MemberID == 0 || h.DBSize == 0 {
			t.Errorf("health after restart: %+v", h)
		}
	}
}

// drain empties a Changes channel.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testLogOut receives the stores' logs: set SWITCHYARD_TEST_LOG=1 to see
// them.
var testLogOut io.Writer = io.Discard

func init() {
	if os.Getenv("SWITCHYARD_TEST_LOG") != "" {
		testLogOut = os.Stderr
	}
}
