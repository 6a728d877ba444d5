package selection

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMarks starts and ends sessions at random, counting them in Marks
// and in a map, and checks after each step that Marks lists what the map
// holds and that PlaceTable reading it decides as Place reading the
// sessions.
func TestMarks(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	servers := adversarialServers(r, 200)
	tab := NewTable(servers)
	var m Marks
	model := map[Placed]int{} // sessions by server and app
	apps := []string{"db", "shell", "gpu"}
	for step := range 3000 {
		i, app := r.IntN(len(servers)), apps[r.IntN(len(apps))]
		k := Placed{Server: servers[i].Name, App: app}
		d := 1
		if r.IntN(5) < 2 {
			d = -1
		}
		if model[k]+d < 0 {
			d = 0 // a session that does not run cannot end
		}
		// Every index of the name, as marksOf and the broker count.
		for j, ok := tab.Index(k.Server); ok && j >= 0; j = tab.nextOf(j) {
			m.Add(j, app, d)
		}
		if model[k] += d; model[k] == 0 {
			delete(model, k)
		}
		checkMarks(t, &m, tab, model)
		var existing []Placed
		for p, n := range model {
			for range n {
				existing = append(existing, p)
			}
		}
		req := randomRequest(r, servers)
		req.Existing = existing
		sameDecision(t, tablePolicies[step%len(tablePolicies)], req, servers, tab)
		req.Existing, req.Marks = nil, &m
		p := tablePolicies[step%len(tablePolicies)]
		want, wantErr := p.Place(Request{User: req.User, App: req.App, ClientRegion: req.ClientRegion, Near: req.Near,
			Existing: existing, Seed: req.Seed}, servers)
		if got, err := p.PlaceTable(req, tab); got != want || (err == nil) != (wantErr == nil) {
			t.Fatalf("step %d: PlaceTable with the kept Marks %+v, %v; Place %+v, %v", step, got, err, want, wantErr)
		}
	}
}

// checkMarks fails unless m lists each server and app of model once, and
// each server with a session once for any app.
func checkMarks(t *testing.T, m *Marks, tab *Table, model map[Placed]int) {
	t.Helper()
	var got, want []Placed
	for i, app := range m.All() {
		got = append(got, Placed{Server: tab.names[i], App: app})
	}
	servers := map[string]bool{}
	for p := range model {
		for i, ok := tab.Index(p.Server); ok && i >= 0; i = tab.nextOf(i) {
			want = append(want, p)
		}
		servers[p.Server] = true
	}
	byPlace := func(x, y Placed) int { return cmp.Or(cmp.Compare(x.Server, y.Server), cmp.Compare(x.App, y.App)) }
	slices.SortFunc(got, byPlace)
	slices.SortFunc(want, byPlace)
	if !slices.Equal(got, want) {
		t.Fatalf("Marks lists %v, want %v", got, want)
	}
	var any []string
	for _, i := range m.serversFor(AffinityUser, "") {
		any = append(any, tab.names[i])
	}
	slices.Sort(any)
	names := slices.Sorted(maps.Keys(servers))
	var wantAny []string
	for _, n := range names { // every index of each name
		for i, ok := tab.Index(n); ok && i >= 0; i = tab.nextOf(i) {
			wantAny = append(wantAny, n)
		}
	}
	if !slices.Equal(any, wantAny) || m.Len() != len(wantAny) {
		t.Fatalf("Marks has sessions on %v (Len %d), want %v", any, m.Len(), wantAny)
	}
}

// TestMarksIgnoresStrangers checks that Add ignores a negative index and
// an end of a session never counted, and that PlaceTable ignores an index
// past the Table.
func TestMarksIgnoresStrangers(t *testing.T) {
	var m Marks
	m.Add(-1, "db", 1)
	m.Add(3, "db", -1)
	if m.Len() != 0 || len(m.apps) != 0 {
		t.Fatalf("Marks counts %d servers, %d apps after adding nothing", m.Len(), len(m.apps))
	}
	m.Add(5, "db", 1)
	tab := NewTable([]Server{{Name: "a", Healthy: true, Apps: []string{"db"}}})
	d, err := DefaultPolicy.PlaceTable(Request{App: "db", Marks: &m}, tab)
	if err != nil || d.Server != "a" {
		t.Fatalf("PlaceTable with a mark past the Table: %+v, %v", d, err)
	}
}
