package selection

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

var benchApps = []string{"build", "db", "editor", "gpu", "shell"}

// randomServers is a worst case for branch prediction: every server draws
// its region (of four), health (10% unhealthy), draining (3%), Max (0 for
// 10%, else 20-200), sessions, CPU load (0-1.2) and a random subset of one
// to four of five apps in random order, independently of its neighbours.
// Every string is its own allocation, as decoded from a config, so no
// comparison can short-cut on a shared pointer.
func randomServers(n int) []Server {
	r := rand.New(rand.NewPCG(1, 2))
	regions := []string{"eu", "us", "ap", "sa"}
	out := make([]Server, n)
	for i := range out {
		s := Server{
			Name:     fmt.Sprintf("srv-%05d", i),
			Region:   strings.Clone(regions[r.IntN(4)]),
			Healthy:  r.IntN(10) != 0,
			Draining: r.IntN(33) == 0,
			Load:     r.Float64() * 1.2,
		}
		if r.IntN(10) != 0 {
			s.Max = 20 + r.IntN(181)
			s.Sessions = r.IntN(s.Max + 1)
		} else {
			s.Sessions = r.IntN(100)
		}
		for _, k := range r.Perm(len(benchApps))[:1+r.IntN(4)] {
			s.Apps = append(s.Apps, strings.Clone(benchApps[k]))
		}
		out[i] = s
	}
	return out
}

// groupedServers is a cluster as a config describes it and the broker
// passes it, sorted by name: groups of identical servers per region (web,
// db, build, gpu, and general ones offering every app), 3% unhealthy, 1%
// draining, random Max, sessions and CPU load. Each server has its own app
// list; the general ones share the strings of the config's app names, as
// config.Load's default list does.
func groupedServers(n int) []Server {
	r := rand.New(rand.NewPCG(3, 4))
	regions := []string{"eu", "us", "ap", "sa"}
	groups := []struct {
		name string
		apps []string
	}{
		{"web", []string{"shell", "editor"}}, {"db", []string{"shell", "db"}},
		{"build", []string{"shell", "build", "editor"}}, {"gpu", []string{"shell", "gpu"}}, {"gen", nil},
	}
	out := make([]Server, n)
	for i := range out {
		g := groups[r.IntN(len(groups))]
		region := regions[r.IntN(len(regions))]
		s := Server{
			Name:     fmt.Sprintf("%s-%s-%05d", region, g.name, i),
			Region:   strings.Clone(region),
			Healthy:  r.IntN(33) != 0,
			Draining: r.IntN(100) == 0,
			Load:     r.Float64() * 1.2,
		}
		if r.IntN(20) != 0 {
			s.Max = 20 + r.IntN(181)
			s.Sessions = r.IntN(s.Max + 1)
		} else {
			s.Sessions = r.IntN(100)
		}
		if g.apps == nil {
			s.Apps = slices.Clone(benchApps)
		} else {
			for _, a := range g.apps {
				s.Apps = append(s.Apps, strings.Clone(a))
			}
		}
		out[i] = s
	}
	slices.SortFunc(out, func(a, b Server) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func benchPlace(b *testing.B, servers []Server) {
	benchDecide(b, servers, func(req Request) (Decision, error) { return DefaultPolicy.Place(req, servers) })
}

func benchPlaceTable(b *testing.B, servers []Server) {
	t := NewTable(servers)
	benchDecide(b, servers, func(req Request) (Decision, error) { return DefaultPolicy.PlaceTable(req, t) })
}

// benchDecide times decide on a request for db from eu by a user with
// three sessions on servers, one seed per decision.
func benchDecide(b *testing.B, servers []Server, decide func(Request) (Decision, error)) {
	req := Request{
		User: "alice", App: strings.Clone("db"),
		ClientRegion: strings.Clone("eu"), Near: []string{strings.Clone("us"), strings.Clone("sa")},
		Existing: []Placed{{servers[17].Name, "db"}, {servers[len(servers)/2].Name, "shell"}, {servers[len(servers)-9].Name, "db"}},
	}
	benchRequest(b, req, decide)
}

// benchRequest times decide on req, one seed per decision.
func benchRequest(b *testing.B, req Request, decide func(Request) (Decision, error)) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req.Seed = uint64(i)
		if _, err := decide(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlace10k places on a config-shaped cluster of 10,000 servers.
func BenchmarkPlace10k(b *testing.B) { benchPlace(b, groupedServers(10000)) }

// BenchmarkPlace10kRandom places on 10,000 servers whose every attribute
// is drawn independently: the worst case for the CPU's branch predictor.
func BenchmarkPlace10kRandom(b *testing.B) { benchPlace(b, randomServers(10000)) }

func BenchmarkPlace100(b *testing.B) { benchPlace(b, groupedServers(100)) }

// BenchmarkPlaceTable10k is BenchmarkPlace10k over a Table.
func BenchmarkPlaceTable10k(b *testing.B) { benchPlaceTable(b, groupedServers(10000)) }

// BenchmarkPlaceTable10kRandom is BenchmarkPlace10kRandom over a Table.
func BenchmarkPlaceTable10kRandom(b *testing.B) { benchPlaceTable(b, randomServers(10000)) }

// BenchmarkNewTable10k builds the Table of BenchmarkPlaceTable10k, as the
// broker does on a config reload.
func BenchmarkNewTable10k(b *testing.B) {
	servers := groupedServers(10000)
	b.ReportAllocs()
	for b.Loop() {
		NewTable(servers)
	}
}

// BenchmarkTableUpdate is one report's update of a server in a Table of
// 10,000: its index by name, sessions and load.
func BenchmarkTableUpdate(b *testing.B) {
	servers := groupedServers(10000)
	t := NewTable(servers)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := i * 7919 % len(servers)
		j, _ := t.Index(servers[k].Name)
		t.SetSessions(j, i%150)
		t.SetLoad(j, float64(i%100)/100)
	}
}

func BenchmarkPickGateway(b *testing.B) {
	// 200 gateways in four regions, each reaching 100 of 1,000 servers.
	r := rand.New(rand.NewPCG(5, 6))
	regions := []string{"eu", "us", "ap", "sa"}
	gws := make([]Gateway, 200)
	for i := range gws {
		g := Gateway{Name: fmt.Sprintf("gw-%03d", i), Region: regions[i%4], Healthy: r.IntN(20) != 0, Capacity: 500, Sessions: r.IntN(501)}
		for k := range 100 {
			g.Reach = append(g.Reach, fmt.Sprintf("srv-%04d", (i*37+k*10)%1000))
		}
		gws[i] = g
	}
	req := GatewayRequest{Requesting: "gw-042", Server: strings.Clone("srv-0420"), ClientRegion: "eu", Near: []string{"us"}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req.Seed = uint64(i)
		if _, err := DefaultPolicy.PickGateway(req, gws); err != nil {
			b.Fatal(err)
		}
	}
}
