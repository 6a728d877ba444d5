package selection

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// draw is what the generators below need of a random source: a
// *rand.Rand, or the bytes of a fuzz input.
type draw interface {
	IntN(n int) int
	Float64() float64
}

// byteDraw draws from a fuzz input, then zeros once it is used up.
type byteDraw []byte

func (b *byteDraw) next() int {
	if len(*b) == 0 {
		return 0
	}
	x := (*b)[0]
	*b = (*b)[1:]
	return int(x)
}

func (b *byteDraw) IntN(n int) int { return b.next() % n }

func (b *byteDraw) Float64() float64 { return float64(b.next()) / 256 }

var (
	tableRegions = []string{"", "eu", "us", "ap", "sa"}
	tableApps    = []string{"shell", "db", "gpu"}
)

// pick returns one of xs.
func pick[T any](r draw, xs ...T) T { return xs[r.IntN(len(xs))] }

// adversarialServers is a small list built to find where PlaceTable and
// Place could part: repeated names, ties, full, unhealthy and draining
// servers, no session limit, loads of 0, 1, above 1, negative and NaN,
// unknown regions, app lists in any order, empty or shared, and now and
// then a whole list of one kind (all identical, all full, all unhealthy,
// none offering db, no region known).
func adversarialServers(r draw, size int) []Server {
	shared := []string{"shell", "db"}
	servers := make([]Server, size)
	for i := range servers {
		s := Server{
			Name:     fmt.Sprint("s", r.IntN(size+10)),
			Region:   pick(r, tableRegions...),
			Healthy:  r.IntN(8) != 0,
			Draining: r.IntN(15) == 0,
			Load:     pick(r, 0, 0.5, 1, 2, -0.5, math.NaN(), r.Float64(), 1.3*r.Float64()),
		}
		if r.IntN(4) != 0 {
			s.Max = 1 + r.IntN(10)
			s.Sessions = r.IntN(s.Max + 2)
		} else {
			s.Sessions = r.IntN(5)
		}
		if r.IntN(4) == 0 {
			s.Apps = shared
		} else {
			for _, k := range []int{r.IntN(3), r.IntN(3), r.IntN(3)}[:r.IntN(4)] {
				s.Apps = append(s.Apps, tableApps[k])
			}
		}
		servers[i] = s
	}
	switch r.IntN(8) {
	case 0: // ties
		for i := range servers {
			name := servers[i].Name
			servers[i] = servers[0]
			servers[i].Name = name
		}
	case 1:
		for i := range servers {
			servers[i].Max, servers[i].Sessions = 3, 3
		}
	case 2:
		for i := range servers {
			servers[i].Healthy = false
		}
	case 3:
		for i := range servers {
			servers[i].Apps = []string{"shell"}
		}
	case 4:
		for i := range servers {
			servers[i].Region = ""
		}
	case 5:
		slices.SortFunc(servers, func(a, b Server) int { return cmpName(a.Name, b.Name) })
	}
	return servers
}

func cmpName(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// randomRequest asks for an app (sometimes one nobody offers) from a
// region (sometimes unknown, or one no server is in), with near regions
// and running sessions on servers of the list or elsewhere.
func randomRequest(r draw, servers []Server) Request {
	req := Request{
		User:         "u",
		App:          pick(r, "db", "db", "shell", "gpu", "top"),
		ClientRegion: pick(r, "", "eu", "eu", "us", "ap", "mars"),
		Seed:         uint64(r.IntN(1 << 30)),
	}
	for range r.IntN(3) {
		req.Near = append(req.Near, pick(r, tableRegions...))
	}
	for range r.IntN(4) {
		name := "elsewhere"
		if len(servers) > 0 && r.IntN(4) != 0 {
			name = servers[r.IntN(len(servers))].Name
		}
		req.Existing = append(req.Existing, Placed{Server: name, App: pick(r, tableApps...)})
	}
	return req
}

// tablePolicies are the policies compared: the default, each affinity,
// and weights that favour each criterion.
var tablePolicies = []Policy{
	DefaultPolicy, {}, {Affinity: AffinityUserApp}, {Weights: Weights{Load: 1}},
	{Affinity: AffinityUser, Weights: Weights{Locality: 1}},
	{Affinity: AffinityUser, Weights: Weights{Locality: 0.2, Affinity: 0.5, Load: 0.3}},
	{Affinity: AffinityUserApp, Weights: Weights{Locality: 3, Affinity: 2, Load: 0.5}},
	{Affinity: AffinityUser, SpillAt: 0.5}, {Weights: Weights{Locality: 1, Load: 0.5}, SpillAt: 1.5},
}

// mutate changes one server in both t and servers, by one of the Table's
// setters and by hand.
func mutate(r draw, t *Table, servers []Server) {
	if len(servers) == 0 {
		return
	}
	i := r.IntN(len(servers))
	s := &servers[i]
	switch r.IntN(7) {
	case 0:
		n := r.IntN(12)
		t.SetSessions(i, n)
		s.Sessions = n
	case 1:
		d := r.IntN(5) - 2
		t.AddSession(i, d)
		s.Sessions += d
	case 2:
		l := pick(r, 0, 1, 2, -0.5, math.NaN(), r.Float64())
		t.SetLoad(i, l)
		s.Load = l
	case 3:
		t.SetHealthy(i, !s.Healthy)
		s.Healthy = !s.Healthy
	case 4:
		t.SetDraining(i, !s.Draining)
		s.Draining = !s.Draining
	case 5:
		m := r.IntN(12)
		t.SetMax(i, m)
		s.Max = m
	case 6: // fill it up, or empty it
		n := 0
		if r.IntN(2) == 0 {
			n = s.Max
		}
		t.SetSessions(i, n)
		s.Sessions = n
	}
}

// sameDecision fails unless PlaceTable over t decides as Place over
// servers.
func sameDecision(t testing.TB, p Policy, req Request, servers []Server, tab *Table) {
	t.Helper()
	want, wantErr := p.Place(req, servers)
	got, err := p.PlaceTable(req, tab)
	if got != want || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("policy %+v, request %+v:\nPlace      %+v, %v\nPlaceTable %+v, %v\nservers %+v", p, req, want, wantErr, got, err, servers)
	}
	if err != nil && !errors.Is(err, ErrNoServer) {
		t.Fatalf("PlaceTable error %v does not wrap ErrNoServer", err)
	}
	marked := req
	marked.Existing, marked.Marks = nil, marksOf(tab, req.Existing)
	if got, err := p.PlaceTable(marked, tab); got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("policy %+v, request %+v:\nPlace                %+v, %v\nPlaceTable with Marks %+v, %v\nservers %+v", p, req, want, wantErr, got, err, servers)
	}
}

// marksOf counts existing by tab's indexes, as the broker keeps them:
// each session at every index of its server's name.
func marksOf(tab *Table, existing []Placed) *Marks {
	m := &Marks{}
	for _, e := range existing {
		i, ok := tab.Index(e.Server)
		for ; ok && i >= 0; i = tab.nextOf(i) {
			m.Add(i, e.App, 1)
		}
	}
	return m
}

// sameTable fails unless tab, however it was updated, holds what a new
// Table of servers holds.
func sameTable(t testing.TB, tab *Table, servers []Server) {
	t.Helper()
	fresh := NewTable(servers)
	if tab.Len() != len(servers) {
		t.Fatalf("Len %d, want %d", tab.Len(), len(servers))
	}
	for i := range servers {
		got, want := tab.Server(i), servers[i]
		if got.Load != got.Load && want.Load != want.Load {
			got.Load, want.Load = 0, 0 // both NaN
		}
		if !equalServer(got, want) {
			t.Fatalf("Server(%d) = %+v, want %+v", i, got, want)
		}
		if j, ok := tab.Index(servers[i].Name); !ok || servers[j].Name != servers[i].Name || j > i {
			t.Fatalf("Index(%q) = %d, %v", servers[i].Name, j, ok)
		}
	}
	same := func(a, b float64) bool { return a == b || a != a && b != b }
	if !slices.EqualFunc(tab.util, fresh.util, same) || !slices.EqualFunc(tab.mins, fresh.mins, same) ||
		tab.count != fresh.count || !slices.EqualFunc(tab.sets[:], fresh.sets[:], slices.Equal) ||
		tab.sumSessions != fresh.sumSessions || tab.sumMax != fresh.sumMax {
		t.Fatalf("updated table differs from a new one:\nutil %v\n     %v\nmins %v\n     %v\ncount %v %v",
			tab.util, fresh.util, tab.mins, fresh.mins, tab.count, fresh.count)
	}
}

// TestPlaceTableMatchesPlace checks that PlaceTable decides exactly as
// Place (server, reason, error) on random and adversarial lists, small and
// large, before and after random updates made through the Table's setters
// and to the equivalent []Server.
func TestPlaceTableMatchesPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	check := func(servers []Server, rounds, updates, requests int) {
		servers = slices.Clone(servers)
		tab := NewTable(servers)
		for round := range rounds {
			if round > 0 {
				for range 1 + r.IntN(updates) {
					mutate(r, tab, servers)
				}
			}
			sameTable(t, tab, servers)
			for range requests {
				req := randomRequest(r, servers)
				sameDecision(t, tablePolicies[r.IntN(len(tablePolicies))], req, servers, tab)
			}
		}
	}
	check(nil, 1, 1, 5)
	for range 2000 {
		check(adversarialServers(r, 1+r.IntN(200)), 4, 20, 5)
	}
	// More regions than PlaceTable scores up front, more apps than one
	// mask word holds.
	for range 300 {
		servers := adversarialServers(r, 1+r.IntN(300))
		for i := range servers {
			servers[i].Region = fmt.Sprint("r", r.IntN(90))
			servers[i].Apps = append(slices.Clip(servers[i].Apps), fmt.Sprint("a", r.IntN(150)), fmt.Sprint("a", r.IntN(150)))
		}
		tab := NewTable(servers)
		for range 20 {
			req := randomRequest(r, servers)
			req.App, req.ClientRegion = fmt.Sprint("a", r.IntN(150)), fmt.Sprint("r", r.IntN(90))
			req.Near = []string{fmt.Sprint("r", r.IntN(90)), fmt.Sprint("r", r.IntN(90))}
			sameDecision(t, tablePolicies[r.IntN(len(tablePolicies))], req, servers, tab)
			mutate(r, tab, servers)
		}
		sameTable(t, tab, servers)
	}
	// Unique names (mostly), so that affinity does not keep PlaceTable
	// from reading blocks of one region and app list as such; servers of
	// a few kinds, so that there are such blocks, and runs of servers in
	// the same state; the user's sessions on few or many blocks.
	for range 150 {
		servers := adversarialServers(r, 200+r.IntN(2000))
		kinds := adversarialServers(r, 1+r.IntN(6))
		names := len(servers)
		if r.IntN(3) == 0 {
			names = 1 + len(servers)/4
		}
		for i := range servers {
			k := &kinds[r.IntN(len(kinds))]
			servers[i].Name, servers[i].Region, servers[i].Apps = fmt.Sprint("u", i%names), k.Region, k.Apps
			if r.IntN(4) != 0 {
				servers[i].Sessions, servers[i].Max, servers[i].Load = k.Sessions, k.Max, k.Load
			}
		}
		tab := NewTable(servers)
		for range 20 {
			req := randomRequest(r, servers)
			for range pick(r, 0, 3, 20, 40) {
				req.Existing = append(req.Existing, Placed{Server: servers[r.IntN(len(servers))].Name, App: pick(r, tableApps...)})
			}
			sameDecision(t, tablePolicies[r.IntN(len(tablePolicies))], req, servers, tab)
			mutate(r, tab, servers)
		}
		sameTable(t, tab, servers)
	}
	// Lists large enough to be sampled first and split into many blocks.
	for _, n := range []int{1023, 1024, 1100, 3000} {
		check(adversarialServers(r, n), 4, 200, 20)
	}
	for _, n := range []int{1024, 10000} {
		for _, servers := range [][]Server{randomServers(n), groupedServers(n)} {
			check(servers, 3, 2000, 15)
		}
	}
}

// TestTableTieOfSameNames checks that PlaceTable, reading servers grouped
// by region, breaks a tie between servers of the same name as Place does:
// the first in the list wins, though it comes second in its Table.
// Copies differ by a CPU load too low to change the score but shown in
// the reason.
func TestTableTieOfSameNames(t *testing.T) {
	servers := make([]Server, 2048)
	for i := range servers {
		// Region a: index 0 and the second half; region b: the rest.
		s := Server{Name: fmt.Sprint("n", i%1024), Region: "b", Healthy: true, Apps: []string{"db"}, Sessions: 10, Max: 100}
		if i == 0 || i >= 1024 {
			s.Region, s.Load = "a", 0.05
		}
		servers[i] = s
	}
	tab := NewTable(servers)
	for seed := range uint64(30) {
		req := Request{App: "db", Seed: seed}
		sameDecision(t, DefaultPolicy, req, servers, tab)
		if d, _ := DefaultPolicy.PlaceTable(req, tab); d.Server != "n0" && !strings.Contains(d.Reason, "cpu 0.00") {
			t.Fatalf("seed %d: chose the second of a name: %s", seed, d.Reason)
		}
	}
}

// TestTableBenchDecision checks the benchmarks' own requests too.
func TestTableBenchDecision(t *testing.T) {
	for _, servers := range [][]Server{groupedServers(10000), randomServers(10000), idleServers(10000)} {
		tab := NewTable(servers)
		req := Request{User: "alice", App: "db", ClientRegion: "eu", Near: []string{"us", "sa"},
			Existing: []Placed{{servers[17].Name, "db"}, {servers[len(servers)/2].Name, "shell"}, {servers[len(servers)-9].Name, "db"}}}
		for seed := range uint64(20) {
			req.Seed = seed
			sameDecision(t, DefaultPolicy, req, servers, tab)
		}
	}
}

// FuzzPlaceTable reads a list of servers, updates and requests from its
// input and fails where PlaceTable and Place decide differently.
func FuzzPlaceTable(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x05\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Add([]byte("\x20tie tie tie tie tie tie tie tie\x00\x00\x00\x00"))
	f.Add([]byte("\xff\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x10\x20\x30\x40\x50"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := byteDraw(data)
		servers := adversarialServers(&r, r.IntN(64))
		tab := NewTable(servers)
		for len(r) > 0 {
			sameDecision(t, tablePolicies[r.IntN(len(tablePolicies))], randomRequest(&r, servers), servers, tab)
			mutate(&r, tab, servers)
		}
		sameDecision(t, DefaultPolicy, randomRequest(&r, servers), servers, tab)
		sameTable(t, tab, servers)
	})
}
