package selection

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// manySessions is the running sessions of a user with n of them on the
// given count of servers of servers, in random order (as the broker reads
// them from a map), half of them db; each name is its own copy, as
// decoded from a report.
func manySessions(servers []Server, n, on int) []Placed {
	r := rand.New(rand.NewPCG(9, 10))
	hosts := make([]string, on)
	for k := range hosts {
		hosts[k] = servers[r.IntN(len(servers))].Name
	}
	out := make([]Placed, n)
	for k := range out {
		out[k] = Placed{Server: strings.Clone(hosts[r.IntN(on)]), App: pick(r, "db", "shell")}
	}
	return out
}

// benchUser times PlaceTable over 10,000 servers for a user with 2,000
// sessions on the given count of servers, counted in Marks as the broker
// keeps them.
func benchUser(b *testing.B, on int) {
	servers := groupedServers(10000)
	t := NewTable(servers)
	req := Request{User: "alice", App: "db", ClientRegion: "eu", Near: []string{"us", "sa"},
		Marks: marksOf(t, manySessions(servers, 2000, on))}
	benchRequest(b, req, func(req Request) (Decision, error) { return DefaultPolicy.PlaceTable(req, t) })
}

// BenchmarkPlaceTable10kUser2000On50 is a user with 2,000 sessions on 50
// servers, as affinity groups them.
func BenchmarkPlaceTable10kUser2000On50(b *testing.B) { benchUser(b, 50) }

// BenchmarkPlaceTable10kUser2000On2000 is a user with 2,000 sessions on
// as many servers (some twice): the worst case.
func BenchmarkPlaceTable10kUser2000On2000(b *testing.B) { benchUser(b, 2000) }

// BenchmarkPlaceTable10kUser20 is a user with 20 sessions on 10 servers.
func BenchmarkPlaceTable10kUser20(b *testing.B) {
	servers := groupedServers(10000)
	t := NewTable(servers)
	req := Request{User: "alice", App: "db", ClientRegion: "eu", Near: []string{"us", "sa"},
		Marks: marksOf(t, manySessions(servers, 20, 10))}
	benchRequest(b, req, func(req Request) (Decision, error) { return DefaultPolicy.PlaceTable(req, t) })
}

// BenchmarkPlaceTable10kUser2000On2000Existing is
// BenchmarkPlaceTable10kUser2000On2000 with the sessions listed in
// Request.Existing, each looked up by name, instead of counted in Marks.
func BenchmarkPlaceTable10kUser2000On2000Existing(b *testing.B) {
	servers := groupedServers(10000)
	t := NewTable(servers)
	req := Request{User: "alice", App: "db", ClientRegion: "eu", Near: []string{"us", "sa"},
		Existing: manySessions(servers, 2000, 2000)}
	benchRequest(b, req, func(req Request) (Decision, error) { return DefaultPolicy.PlaceTable(req, t) })
}

// BenchmarkPlace10kUser2000On50 is BenchmarkPlaceTable10kUser2000On50
// over a []Server.
func BenchmarkPlace10kUser2000On50(b *testing.B) {
	servers := groupedServers(10000)
	req := Request{User: "alice", App: "db", ClientRegion: "eu", Near: []string{"us", "sa"},
		Existing: manySessions(servers, 2000, 50)}
	benchRequest(b, req, func(req Request) (Decision, error) { return DefaultPolicy.Place(req, servers) })
}

// TestManySessions checks that a user with many sessions, on few or many
// servers, with names short, long and alike, is placed by PlaceTable as
// by Place and by the reference, which reads every session for every
// server.
func TestManySessions(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, size := range []int{50, 600, 3000} {
		servers := adversarialServers(r, size)
		for i := range servers {
			switch i % 3 {
			case 0: // longer than 16 bytes, alike but for the middle
				servers[i].Name = "server-" + strings.Repeat("x", i%7) + "-in-the-rack"
			case 1:
				servers[i].Name = strings.Repeat("s", 1+i%9)
			}
			servers[i].Healthy, servers[i].Draining = true, false
		}
		tab := NewTable(servers)
		for _, on := range []int{1, 5, 40, 500} {
			for _, p := range tablePolicies {
				req := randomRequest(r, servers)
				req.Existing = manySessions(servers, 2000, on)
				sameDecision(t, p, req, servers, tab)
				if d, _ := p.Place(req, servers); d.Server != reference(p, req, servers) {
					t.Fatalf("size %d, on %d, policy %+v: Place chose %q, reference %q", size, on, p, d.Server, reference(p, req, servers))
				}
			}
		}
	}
}
