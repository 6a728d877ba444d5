package sim

import (
	"math/rand/v2"

	"switchyard/selection"
)

// Placer is a placement policy under simulation: it returns the index in
// servers of the chosen server, or -1 when none is eligible. It sees what
// the broker would pass to selection.Policy.Place.
type Placer interface {
	Name() string
	Place(req selection.Request, servers []selection.Server) int
}

// Policies returns the policies compared by Run, ours first, with random
// sources seeded from seed.
func Policies(seed uint64) []Placer {
	return []Placer{
		Selection("switchyard (default, affinity user)", selection.DefaultPolicy),
		&roundRobin{},
		&random{r: rand.New(rand.NewPCG(seed, 1))},
		&leastConn{r: rand.New(rand.NewPCG(seed, 2))},
		&twoChoices{r: rand.New(rand.NewPCG(seed, 3))},
	}
}

// eligible is the filter every policy obeys: healthy, not draining,
// offering the app, with room.
func eligible(s *selection.Server, app string) bool {
	if !s.Healthy || s.Draining || s.Max > 0 && s.Sessions >= s.Max {
		return false
	}
	for _, a := range s.Apps {
		if a == app {
			return true
		}
	}
	return false
}

// ratio is a server's capacity ratio, Sessions/Max.
func ratio(s *selection.Server) float64 {
	if s.Max <= 0 {
		return 0
	}
	return float64(s.Sessions) / float64(s.Max)
}

// Selection returns a Placer for a selection.Policy, named name.
func Selection(name string, p selection.Policy) Placer {
	return &policy{name: name, p: p}
}

// policy is a selection.Policy, the broker's.
type policy struct {
	name  string
	p     selection.Policy
	index map[string]int
}

func (p *policy) Name() string { return p.name }

func (p *policy) Place(req selection.Request, servers []selection.Server) int {
	d, err := p.p.Place(req, servers)
	if err != nil {
		return -1
	}
	if p.index == nil {
		p.index = make(map[string]int, len(servers))
		for i := range servers {
			p.index[servers[i].Name] = i
		}
	}
	return p.index[d.Server]
}

// roundRobin takes the next eligible server after the last one chosen.
type roundRobin struct{ next int }

func (*roundRobin) Name() string { return "round-robin" }

func (rr *roundRobin) Place(req selection.Request, servers []selection.Server) int {
	for k := range servers {
		i := (rr.next + k) % len(servers)
		if eligible(&servers[i], req.App) {
			rr.next = i + 1
			return i
		}
	}
	return -1
}

// random takes an eligible server uniformly at random.
type random struct{ r *rand.Rand }

func (*random) Name() string { return "random" }

func (p *random) Place(req selection.Request, servers []selection.Server) int {
	chosen, seen := -1, 0
	for i := range servers {
		if eligible(&servers[i], req.App) {
			seen++
			if p.r.IntN(seen) == 0 {
				chosen = i
			}
		}
	}
	return chosen
}

// leastConn takes the eligible server with the lowest Sessions/Max (the
// capacity ratio, fair to small servers), ties at random.
type leastConn struct{ r *rand.Rand }

func (*leastConn) Name() string { return "least-connections (sessions/max)" }

func (p *leastConn) Place(req selection.Request, servers []selection.Server) int {
	chosen, ties, best := -1, 0, 0.0
	for i := range servers {
		s := &servers[i]
		if !eligible(s, req.App) {
			continue
		}
		switch q := ratio(s); {
		case chosen < 0 || q < best:
			chosen, ties, best = i, 1, q
		case q == best:
			ties++
			if p.r.IntN(ties) == 0 {
				chosen = i
			}
		}
	}
	return chosen
}

// twoChoices samples two eligible servers and takes the one with the lower
// Sessions/Max, ties at random.
type twoChoices struct {
	r    *rand.Rand
	pool []int
}

func (*twoChoices) Name() string { return "power-of-two-choices (sessions/max)" }

func (p *twoChoices) Place(req selection.Request, servers []selection.Server) int {
	p.pool = p.pool[:0]
	for i := range servers {
		if eligible(&servers[i], req.App) {
			p.pool = append(p.pool, i)
		}
	}
	switch len(p.pool) {
	case 0:
		return -1
	case 1:
		return p.pool[0]
	}
	a := p.r.IntN(len(p.pool))
	b := p.r.IntN(len(p.pool) - 1)
	if b >= a {
		b++
	}
	i, j := p.pool[a], p.pool[b]
	qi, qj := ratio(&servers[i]), ratio(&servers[j])
	if qj < qi || qj == qi && p.r.IntN(2) == 0 {
		return j
	}
	return i
}
