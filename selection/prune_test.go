package selection

import (
	"math"
	"math/rand/v2"
	"testing"
)

// reference is Place without its shortcuts: filter, score every survivor,
// take the best by score, then fewer sessions, then the seeded hash, then
// the first in the list.
func reference(p Policy, req Request, servers []Server) string {
	w := p.weights()
	loc := locator{client: req.ClientRegion, near: req.Near}
	spill := refLevel(p, servers)
	best, bestScore := -1, 0.0
	for i := range servers {
		s := &servers[i]
		if !s.Healthy || s.Draining || s.Max > 0 && s.Sessions >= s.Max || !offers(s.Apps, req.App) {
			continue
		}
		score := w.Locality*loc.score(s.Region) + w.Affinity*refAffinity(p, &req, s.Name) + w.Load*refLoad(spill, s)
		if best >= 0 {
			b := &servers[best]
			switch c := cmpScore(score, bestScore); {
			case c < 0:
				continue
			case c == 0 && s.Sessions > b.Sessions:
				continue
			case c == 0 && s.Sessions == b.Sessions && tieHashOf(s.Name, req.Seed) >= tieHashOf(b.Name, req.Seed):
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

// refLevel is the fill level: the mean fill of the healthy, not draining
// servers with a limit, plus 3% of it, between three quarters of SpillAt
// and SpillAt.
func refLevel(p Policy, servers []Server) float64 {
	at := p.SpillAt
	if at == 0 {
		at = DefaultSpillAt
	}
	sessions, slots := 0, 0
	for _, s := range servers {
		if s.Healthy && !s.Draining && s.Max > 0 {
			sessions += s.Sessions
			slots += s.Max
		}
	}
	if slots == 0 {
		return at
	}
	return min(at, max(0.75*at, 1.03*float64(sessions)/float64(slots)))
}

// refLoad is the load part of s's score: 1 - utilisation, falling
// SpillSlope times faster past the fill level spill and FullSlope times
// faster again past FullAt.
func refLoad(spill float64, s *Server) float64 {
	u := utilisation(s)
	p := 1 - u
	if u > spill {
		p -= SpillSlope * (u - spill)
	}
	if full := max(spill, FullAt); u > full {
		p -= FullSlope * (u - full)
	}
	return p
}

// refAffinity is 1 when the user already runs a session on server (of
// the same app under AffinityUserApp), else 0: every session read.
func refAffinity(p Policy, req *Request, server string) float64 {
	if p.Affinity == AffinityNone {
		return 0
	}
	for _, e := range req.Existing {
		if e.Server == server && (p.Affinity != AffinityUserApp || e.App == req.App) {
			return 1
		}
	}
	return 0
}

// TestPlaceMatchesReference checks that skipping servers that cannot win
// never changes the decision, on random clusters and policies.
func TestPlaceMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for n := range 20200 {
		size := 1 + r.IntN(30)
		if n >= 20000 {
			size = 1024 + r.IntN(3000) // large enough to be sampled first
		}
		servers := adversarialServers(r, size)
		req := randomRequest(r, servers)
		p := tablePolicies[n%len(tablePolicies)]
		d, err := p.Place(req, servers)
		if want := reference(p, req, servers); d.Server != want || (want == "") != (err != nil) {
			t.Fatalf("case %d, policy %+v, request %+v:\nPlace chose %q (%v), reference %q\nservers %+v", n, p, req, d.Server, err, want, servers)
		}
	}
}

// TestCutOfInvertsLoadPart checks that cutOf is the inverse of loadPart,
// which the cuts of Place and PlaceTable rely on: loadPart falls as
// utilisation grows, and cutOf(y) is where it reaches y.
func TestCutOfInvertsLoadPart(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for range 100000 {
		spill := pick(r, 0.6, 0.8, 0.9, 0.95, 1.5, 0.1+2*r.Float64())
		u := pick(r, 0.0, spill, FullAt, 1.0, 3*r.Float64(), 100*r.Float64())
		y := loadPart(u, spill)
		if c := cutOf(y, spill); math.Abs(c-u) > 1e-9*max(1, u) {
			t.Fatalf("spill %v: loadPart(%v) = %v, cutOf(%v) = %v", spill, u, y, y, c)
		}
		if v := u + 0.001; loadPart(v, spill) >= y {
			t.Fatalf("spill %v: loadPart(%v) = %v not below loadPart(%v) = %v", spill, v, loadPart(v, spill), u, y)
		}
	}
	if c := cutOf(math.Inf(-1), 0.8); !math.IsInf(c, 1) {
		t.Fatalf("cutOf(-Inf) = %v", c)
	}
}
