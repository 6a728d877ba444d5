package selection

import (
	"fmt"
	"testing"
)

// idleServers is a fresh cluster: n identical idle servers in four
// regions, every one offering every app, so that every server of the
// client's region ties for the best score.
func idleServers(n int) []Server {
	regions := []string{"eu", "us", "ap", "sa"}
	out := make([]Server, n)
	for i := range out {
		out[i] = Server{Name: fmt.Sprintf("srv-%05d", i), Region: regions[i%4], Healthy: true, Max: 100, Apps: benchApps}
	}
	return out
}

// idleRequest asks for db from eu, by a user with no sessions.
var idleRequest = Request{User: "alice", App: "db", ClientRegion: "eu", Near: []string{"us", "sa"}}

// BenchmarkPlaceTable10kIdle places on 10,000 idle identical servers: a
// quarter of them tie for the best score, and the seeded hash must pick
// among them.
func BenchmarkPlaceTable10kIdle(b *testing.B) {
	t := NewTable(idleServers(10000))
	benchRequest(b, idleRequest, func(req Request) (Decision, error) { return DefaultPolicy.PlaceTable(req, t) })
}

// BenchmarkPlace10kIdle is BenchmarkPlaceTable10kIdle over a []Server.
func BenchmarkPlace10kIdle(b *testing.B) {
	servers := idleServers(10000)
	benchRequest(b, idleRequest, func(req Request) (Decision, error) { return DefaultPolicy.Place(req, servers) })
}
