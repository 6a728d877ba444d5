package selection

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// reference is Place without its shortcuts: filter, score every survivor,
// take the best by score, then fewer sessions, then the seeded hash.
func reference(p Policy, req Request, servers []Server) string {
	w := p.weights()
	loc := locator{client: req.ClientRegion, near: req.Near}
	best, bestScore := -1, 0.0
	for i := range servers {
		s := &servers[i]
		if !s.Healthy || s.Draining || s.Max > 0 && s.Sessions >= s.Max || !offers(s.Apps, req.App) {
			continue
		}
		score := w.Locality*loc.score(s.Region) + w.Affinity*p.affinity(&req, s.Name) + w.Load*(1-utilisation(s))
		if best >= 0 {
			b := &servers[best]
			switch c := cmpScore(score, bestScore); {
			case c < 0:
				continue
			case c == 0 && s.Sessions > b.Sessions:
				continue
			case c == 0 && s.Sessions == b.Sessions && tieHash(s.Name, req.Seed) >= tieHash(b.Name, req.Seed):
				continue
			}
		}
		best, bestScore = i, score
	}
	if best < 0 {
		return ""
	}
	return servers[best].Name
}

// TestPlaceMatchesReference checks that skipping servers that cannot win
// never changes the decision, on random clusters and policies.
func TestPlaceMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	regions := []string{"", "eu", "us", "ap", "sa"}
	apps := []string{"shell", "db", "gpu"}
	policies := []Policy{DefaultPolicy, {}, {Affinity: AffinityUserApp}, {Weights: Weights{Load: 1}},
		{Affinity: AffinityUser, Weights: Weights{Locality: 1}}, {Affinity: AffinityUser, Weights: Weights{Locality: 0.2, Affinity: 0.5, Load: 0.3}}}
	for n := range 20200 {
		size := 1 + r.IntN(30)
		if n >= 20000 {
			size = 1024 + r.IntN(3000) // large enough to be sampled first
		}
		servers := make([]Server, size)
		for i := range servers {
			s := Server{Name: fmt.Sprint("s", r.IntN(size+10)), Region: regions[r.IntN(len(regions))], Healthy: r.IntN(8) != 0,
				Draining: r.IntN(15) == 0, Load: []float64{0, 0.2, 0.5, 1, 1.3}[r.IntN(5)] * r.Float64()}
			if r.IntN(4) != 0 {
				s.Max = 1 + r.IntN(10)
				s.Sessions = r.IntN(s.Max + 1)
			} else {
				s.Sessions = r.IntN(5)
			}
			if r.IntN(5) == 0 {
				s.Load = []float64{0, 0.5, 1, 2}[r.IntN(4)] // exact ties and overload
			}
			for _, a := range apps {
				if r.IntN(3) != 0 {
					s.Apps = append(s.Apps, a)
				}
			}
			servers[i] = s
		}
		req := Request{User: "u", App: apps[r.IntN(3)], ClientRegion: regions[r.IntN(len(regions))], Seed: r.Uint64()}
		req.Near = []string{regions[r.IntN(len(regions))], regions[r.IntN(len(regions))]}
		for range r.IntN(3) {
			req.Existing = append(req.Existing, Placed{servers[r.IntN(len(servers))].Name, apps[r.IntN(3)]})
		}
		p := policies[n%len(policies)]
		d, err := p.Place(req, servers)
		if want := reference(p, req, servers); d.Server != want || (want == "") != (err != nil) {
			t.Fatalf("case %d, policy %+v, request %+v:\nPlace chose %q (%v), reference %q\nservers %+v", n, p, req, d.Server, err, want, servers)
		}
	}
}
