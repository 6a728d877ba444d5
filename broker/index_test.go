package broker

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/selection"
)

// refModel is the broker's session bookkeeping as it was before the
// indexes: one map of sessions scanned whole, and one list of pending
// placements swept at every count. The property test holds the indexed
// broker to it.
type refModel struct {
	sessions map[string]sessionState
	pending  []refPending
	interval time.Duration
}

type refPending struct {
	server string
	at     time.Time
}

func (m *refModel) report(name string, r control.ServerReport, now time.Time) {
	reported := map[string]bool{}
	for _, s := range r.Sessions {
		s.Server = name
		reported[s.ID] = true
		if old, ok := m.sessions[s.ID]; ok && s.Gateway == "" {
			s.Gateway = old.info.Gateway
		}
		m.put(s, now)
	}
	for id, s := range m.sessions {
		if s.info.Server == name && !reported[id] && now.Sub(s.seen) > m.interval {
			delete(m.sessions, id)
		}
	}
}

// put records s as seen at now; since stays while it stays on its server
// and user.
func (m *refModel) put(s control.SessionInfo, now time.Time) {
	since := now
	if old, ok := m.sessions[s.ID]; ok && old.info.Server == s.Server && old.info.User == s.User {
		since = old.since
	}
	m.sessions[s.ID] = sessionState{info: s, seen: now, since: since}
}

// placedBy reports whether the oldest placement pending on server was
// made before t.
func (m *refModel) placedBy(server string, t time.Time) bool {
	for _, p := range m.pending {
		if p.server == server {
			return p.at.Before(t)
		}
	}
	return false
}

func (m *refModel) started(s control.SessionInfo, now time.Time) {
	old, known := m.sessions[s.ID]
	resumed := known && !m.placedBy(s.Server, old.since)
	m.put(s, now)
	for i, p := range m.pending {
		if p.server == s.Server && !resumed {
			m.pending = slices.Delete(m.pending, i, i+1)
			break
		}
	}
}

// load counts every server's sessions by a scan and sweeps the pending
// placements, as every placement, status and apps list did.
func (m *refModel) load(now time.Time) map[string]int {
	n := map[string]int{}
	for _, s := range m.sessions {
		n[s.info.Server]++
	}
	m.pending = slices.DeleteFunc(m.pending, func(p refPending) bool { return now.Sub(p.at) >= pendingTTL })
	for _, p := range m.pending {
		n[p.server]++
	}
	return n
}

// candidates builds the selection input as the broker did: every
// configured server with a scan's count, sorted by name.
func (m *refModel) candidates(b *Broker, c Cluster, drained map[string]bool, now time.Time) []selection.Server {
	load := m.load(now)
	var out []selection.Server
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, spec := range c.Servers {
		st := b.servers[name]
		healthy := st != nil && st.links > 0 && !st.lastReport.IsZero() && now.Sub(st.lastReport) <= 3*b.interval()
		s := selection.Server{Name: name, Region: spec.Region, Healthy: healthy,
			Draining: spec.Draining || drained[name], Apps: spec.Apps, Sessions: load[name], Max: spec.MaxSessions}
		if st := b.servers[name]; st != nil {
			s.Load = loadOf(st)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y selection.Server) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// TestIndexesMatchScan runs seeded random sequences of session starts,
// ends, server reports (of unchanged, changed, moved and missing
// sessions), pre-launches, placements, status and apps calls, drains,
// links of servers and gateways going up and down, gateway reports and
// config reloads against a broker and refModel, and checks after each
// step that the broker's sessions equal the model's, that its indexes
// equal a scan of its sessions, that every count equals the model's and
// that b.tab equals a Table built anew. At each placement it checks that
// deciding over b.tab and scanning every server decide the same, for the
// placement itself and for a request from a gateway.
func TestIndexesMatchScan(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { indexProperty(t, seed, 400) })
	}
}

func indexProperty(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	universe := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	users := []string{"alice", "bob", "carol", "dave", "erin"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	sessionID := func() string { return fmt.Sprintf("id%02d", rng.IntN(30)) }

	b := &Broker{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReportInterval: time.Second,
		Now: func() time.Time { return clock }}
	var prelaunched control.Started
	b.callAppd = func(ctx context.Context, server, method string, req, resp any) error {
		*resp.(*control.Started) = prelaunched
		return nil
	}
	m := &refModel{sessions: map[string]sessionState{}, interval: time.Second}
	drained := map[string]bool{}
	regions := []string{"eu", "us", ""}
	gateways := []string{"gw1", "gw2", "gw3"}
	var cluster Cluster
	reload := func() {
		servers := map[string]ServerSpec{}
		for _, s := range universe {
			if rng.IntN(3) > 0 {
				apps := []string{"top", "vi"}
				if rng.IntN(5) == 0 {
					apps = []string{"vi"}
				}
				servers[s] = ServerSpec{Addr: s + ":7101", Region: pick(regions), Apps: apps, MaxSessions: 2 + rng.IntN(8),
					Draining: rng.IntN(8) == 0}
			}
		}
		gws := map[string]GatewaySpec{}
		for _, g := range gateways {
			if rng.IntN(4) == 0 {
				continue
			}
			spec := GatewaySpec{Region: pick(regions), Capacity: rng.IntN(4), Redirect: pick([]string{RedirectHint, RedirectRelay})}
			if rng.IntN(2) == 0 {
				spec.Internal = g + ":7102"
			}
			if rng.IntN(4) > 0 { // else it reaches every server
				spec.Reach = []string{}
				for _, s := range universe {
					if rng.IntN(3) > 0 {
						spec.Reach = append(spec.Reach, s)
					}
				}
			}
			gws[g] = spec
		}
		cluster = Cluster{Servers: servers, Gateways: gws, Apps: map[string]bool{"top": true, "vi": true},
			Allowed: func(user, app string) bool { return true }, Policy: selection.DefaultPolicy,
			Near: map[string][]string{"eu": {"us"}, "us": {"eu"}}}
		b.SetCluster(cluster)
		for name := range servers {
			b.mu.Lock()
			links := b.servers[name].links
			b.mu.Unlock()
			if links == 0 {
				b.linkUp(name, +1)
			}
		}
	}
	reload()
	// flap brings up a link of node, which has links, or at random takes
	// one down, and says which.
	flap := func(node string, links int) string {
		delta := +1
		if links > 0 && rng.IntN(2) == 0 {
			delta = -1
		}
		b.linkUp(node, delta)
		return fmt.Sprintf("link %s %+d", node, delta)
	}

	for step := range steps {
		var did string
		switch op := rng.IntN(110); {
		case op < 10:
			d := time.Duration(rng.IntN(4000)) * time.Millisecond
			if rng.IntN(2) == 0 { // whole intervals, to meet the bounds exactly
				d = d.Truncate(500 * time.Millisecond)
			}
			clock = clock.Add(d)
			did = fmt.Sprintf("advance %v", d)
		case op < 30:
			s := control.SessionInfo{ID: sessionID(), PID: rng.IntN(1000), User: pick(users), App: "top",
				Server: pick(universe), Gateway: pick([]string{"gw1", "gw2"}), Started: clock, State: control.StateAttached}
			b.sessionStarted(s)
			m.started(s, clock)
			did = fmt.Sprintf("started %+v", s)
		case op < 40:
			id := sessionID()
			b.sessionEnded(control.SessionEnded{ID: id})
			delete(m.sessions, id)
			did = "ended " + id
		case op < 65:
			name := pick(universe)
			r := control.ServerReport{Load: rng.Float64()}
			for _, s := range m.sessions {
				if s.info.Server != name || rng.IntN(10) < 3 {
					continue
				}
				info := s.info
				switch rng.IntN(6) {
				case 0:
					info.Gateway = "" // appd does not always know it
				case 1:
					info.State, info.Detached = control.StateDetached, clock
				case 2:
					info.PID++
				}
				r.Sessions = append(r.Sessions, info)
			}
			for range rng.IntN(3) { // new, or moved from another server
				r.Sessions = append(r.Sessions, control.SessionInfo{ID: sessionID(), PID: rng.IntN(1000), User: pick(users),
					App: "vi", Started: clock})
			}
			rng.Shuffle(len(r.Sessions), func(i, j int) { r.Sessions[i], r.Sessions[j] = r.Sessions[j], r.Sessions[i] })
			b.serverReport(name, r)
			m.report(name, r, clock)
			did = fmt.Sprintf("report %s %d sessions", name, len(r.Sessions))
		case op < 70:
			if len(cluster.Servers) == 0 {
				continue
			}
			prelaunched = control.Started{ID: sessionID(), PID: rng.IntN(1000)}
			server := pick(slices.Sorted(maps.Keys(cluster.Servers)))
			user := pick(users)
			o := outcome{pl: control.Placement{Server: server, Redirect: &control.Redirect{Gateway: "gw2", Expires: clock.Add(time.Minute)}}}
			b.prelaunch(context.Background(), control.PlaceRequest{User: user, App: "vi"}, &o, time.Minute)
			m.put(control.SessionInfo{ID: prelaunched.ID,
				PID: prelaunched.PID, User: user, App: "vi", Server: server, Gateway: "gw2", Started: clock,
				State: control.StateDetached, Detached: clock}, clock)
			did = fmt.Sprintf("prelaunch %s on %s", prelaunched.ID, server)
		case op < 85:
			user, region := pick(users), pick(regions)
			gw, bound := pick(append([]string{""}, gateways...)), rng.IntN(3) == 0
			// The decision over b.tab first, as Place makes it, then by a
			// scan; then what a scan decides for the placement below.
			b.mu.Lock()
			gws := b.gatewayView(clock, gw)
			sreq := selection.Request{User: user, App: "top", ClientRegion: region, Near: cluster.Near[region],
				Marks: b.userMarks[user], Seed: b.seq + 1}
			d, dropped, err := b.chooseServer(sreq, gws, gw, bound, false, nil, clock)
			sd, sdropped, serr := b.chooseServer(sreq, gws, gw, bound, true, nil, clock)
			pd, _, perr := b.chooseServer(sreq, nil, "", false, true, nil, clock)
			for _, s := range universe { // routeTo narrows what the gateways reach to s
				pool := slices.Clone(gws)
				b.narrowReach(pool, s)
				for i := range pool {
					if reachesList(pool[i].Reach, s) != reachesList(gws[i].Reach, s) {
						t.Errorf("step %d: narrowed to %s, %s reaches %v, not %v", step, s, pool[i].Name, pool[i].Reach, gws[i].Reach)
					}
				}
			}
			b.mu.Unlock()
			if d != sd || !slices.Equal(dropped, sdropped) || fmt.Sprint(err) != fmt.Sprint(serr) {
				t.Errorf("step %d: for %s from %s (bound %v) the table decides %+v, %v, %v; a scan %+v, %v, %v",
					step, user, gw, bound, d, dropped, err, sd, sdropped, serr)
			}

			want := m.candidates(b, cluster, drained, clock)
			b.mu.Lock()
			got := slices.Clone(b.candidates(clock))
			b.mu.Unlock()
			if (len(got) > 0 || len(want) > 0) && !reflect.DeepEqual(got, want) {
				t.Errorf("step %d: candidates\n%+v\nwant\n%+v", step, got, want)
			}
			pl, err := b.Place(context.Background(), control.PlaceRequest{User: user, App: "top", RegionHint: region})
			wantReason := pd.Reason
			if region != "" {
				wantReason = "client in " + region + "; " + wantReason
			}
			if fmt.Sprint(err) != fmt.Sprint(perr) || err == nil && (pl.Server != pd.Server || pl.Reason != wantReason) {
				t.Errorf("step %d: placed %q (%s), %v; a scan decides %+v, %v", step, pl.Server, pl.Reason, err, pd, perr)
			}
			m.load(clock)
			if err == nil {
				m.pending = append(m.pending, refPending{server: pl.Server, at: clock})
			}
			did = fmt.Sprintf("place for %s: %q %v", user, pl.Server, err)
		case op < 90:
			st := b.Status()
			load := m.load(clock)
			for _, s := range st.Servers {
				if want := load[s.Name]; s.Sessions != want {
					t.Errorf("step %d: status shows %d sessions on %s, the scan counts %d", step, s.Sessions, s.Name, want)
				}
				if want := cluster.Servers[s.Name].Draining || drained[s.Name]; s.Draining != want {
					t.Errorf("step %d: status shows %s draining %v, want %v", step, s.Name, s.Draining, want)
				}
			}
			did = "status"
		case op < 93:
			b.UserApps(pick(users))
			m.load(clock)
			did = "apps"
		case op < 96:
			name, on := pick(universe), rng.IntN(2) == 0
			if b.Drain(name, on) == nil {
				drained[name] = on
			}
			did = fmt.Sprintf("drain %s %v", name, on)
		case op < 100:
			reload()
			did = fmt.Sprintf("reload: %v", slices.Sorted(maps.Keys(cluster.Servers)))
		case op < 104:
			name := pick(universe)
			if _, ok := cluster.Servers[name]; !ok {
				continue
			}
			b.mu.Lock()
			links := b.servers[name].links
			b.mu.Unlock()
			did = flap(name, links)
		case op < 107:
			name := pick(gateways)
			b.mu.Lock()
			links := b.gateway(name).links
			b.mu.Unlock()
			did = flap(name, links)
		default:
			name := pick(gateways)
			b.gatewayReport(name, control.GatewayReport{Sessions: rng.IntN(5)})
			did = "report " + name
		}
		checkIndexes(t, b, m, universe, users)
		checkTable(t, b)
		if t.Failed() {
			t.Fatalf("after step %d: %s", step, did)
		}
	}
}

// checkIndexes compares b with the model and its indexes with scans of
// its sessions, without sweeping anything.
func checkIndexes(t *testing.T, b *Broker, m *refModel, universe, users []string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sessions) != len(m.sessions) {
		t.Errorf("%d sessions, the model has %d", len(b.sessions), len(m.sessions))
	}
	for id, want := range m.sessions {
		if got := b.sessions[id]; got == nil || *got != want {
			t.Errorf("session %s is %+v, the model's %+v", id, got, want)
		}
	}
	nServer, nUser := 0, 0
	for id, s := range b.sessions {
		if s.info.ID != id {
			t.Errorf("session %s filed under %s", s.info.ID, id)
		}
		if o := b.byServer[s.info.Server]; o == nil || o.sessions[id] != s {
			t.Errorf("session %s is not indexed under its server %s", id, s.info.Server)
		}
		if b.byUser[s.info.User][id] != s {
			t.Errorf("session %s is not indexed under its user %s", id, s.info.User)
		}
	}
	for name, o := range b.byServer {
		nServer += len(o.sessions)
		for id, s := range o.sessions {
			if b.sessions[id] != s || s.info.Server != name {
				t.Errorf("server %s indexes session %s (%+v) wrongly", name, id, s.info)
			}
		}
		live := o.pending // none is pendingTTL older than b.countedAt
		var want []time.Time
		for _, p := range m.pending {
			if p.server == name {
				want = append(want, p.at)
			}
		}
		if !slices.Equal(live, want) {
			t.Errorf("server %s has pending placements %v, the model %v", name, live, want)
		}
		if _, ok := b.cluster.Servers[name]; !ok && len(o.sessions) == 0 && len(o.pending) == 0 {
			t.Errorf("an empty index entry is kept for %s, not configured", name)
		}
	}
	for _, p := range m.pending {
		if b.byServer[p.server] == nil {
			t.Errorf("the model's pending placement on %s is not indexed", p.server)
		}
	}
	for user, u := range b.byUser {
		if len(u) == 0 {
			t.Errorf("an empty index entry is kept for user %s", user)
		}
		nUser += len(u)
		for id, s := range u {
			if b.sessions[id] != s || s.info.User != user {
				t.Errorf("user %s indexes session %s (%+v) wrongly", user, id, s.info)
			}
		}
	}
	if nServer != len(b.sessions) || nUser != len(b.sessions) {
		t.Errorf("%d sessions, %d indexed by server, %d by user", len(b.sessions), nServer, nUser)
	}
	names := slices.Sorted(maps.Keys(b.cluster.Servers))
	if len(names) == 0 {
		names = nil
	}
	if !slices.Equal(b.serverNames, names) || len(b.table) != len(names) {
		t.Fatalf("table of %d: %v, configured %v", len(b.table), b.serverNames, names)
	}
	for i, name := range names {
		s := b.table[i]
		if s.name != name || s.st != b.servers[name] || s.on != b.byServer[name] || !reflect.DeepEqual(s.spec, b.cluster.Servers[name]) {
			t.Errorf("table[%d] = %+v, not server %s", i, s, name)
		}
	}

	// What b.userMarks counts, by a scan of the sessions on configured
	// servers: each user's sessions by server and app, and what placed
	// lists of them.
	counted := map[string]map[selection.Placed]int{}
	for _, s := range b.sessions {
		if _, ok := b.cluster.Servers[s.info.Server]; !ok {
			continue
		}
		if counted[s.info.User] == nil {
			counted[s.info.User] = map[selection.Placed]int{}
		}
		counted[s.info.User][selection.Placed{Server: s.info.Server, App: s.info.App}]++
	}
	for user, m := range b.userMarks {
		if counted[user] == nil {
			t.Errorf("marks kept for user %s, who runs nothing on a configured server", user)
		}
		servers := map[string]bool{}
		for p := range counted[user] {
			servers[p.Server] = true
		}
		if m.Len() != len(servers) {
			t.Errorf("marks of %s count %d servers, a scan %d", user, m.Len(), len(servers))
		}
	}
	for _, user := range users {
		want := slices.Collect(maps.Keys(counted[user]))
		got := slices.Clone(b.placed(b.userMarks[user]))
		byPlace := func(x, y selection.Placed) int {
			return cmp.Or(cmp.Compare(x.Server, y.Server), cmp.Compare(x.App, y.App))
		}
		slices.SortFunc(want, byPlace)
		slices.SortFunc(got, byPlace)
		if !slices.Equal(got, want) {
			t.Errorf("placed(%s) = %v, a scan finds %v", user, got, want)
		}
	}
}

// checkTable compares b.tab with a Table built anew from the servers as
// they are, healthy as of b.freshAt: what NewTable would make of
// candidates then.
func checkTable(t *testing.T, b *Broker) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	want := selection.NewTable(b.appendServers(nil, b.freshSince(b.freshAt)))
	if b.tab.Len() != want.Len() {
		t.Fatalf("b.tab has %d servers, want %d", b.tab.Len(), want.Len())
	}
	for i := range want.Len() {
		if got, want := b.tab.Server(i), want.Server(i); !sameServer(got, want) {
			t.Errorf("b.tab server %d is %+v, want %+v", i, got, want)
		}
	}
}

// sameServer reports whether x and y are the same server to the policy.
func sameServer(x, y selection.Server) bool {
	return x.Name == y.Name && x.Region == y.Region && x.Healthy == y.Healthy && x.Draining == y.Draining &&
		slices.Equal(x.Apps, y.Apps) && x.Sessions == y.Sessions && x.Max == y.Max && x.Load == y.Load
}
