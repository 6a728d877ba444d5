package selection

import (
	"fmt"
	"strconv"
)

// LeastSessions is the simplest useful policy, kept as a baseline: the
// eligible server (healthy, not draining, offering the app, with room) with
// the fewest sessions, ties to a hash of the name seeded by req.Seed. It
// ignores regions, affinity, capacity ratios and CPU load.
func LeastSessions(req Request, servers []Server) (Decision, error) {
	var ex tally
	best, bestHash := -1, uint64(0)
	for i := range servers {
		s := &servers[i]
		if why := exclude(s, req.App); why != eligible {
			ex.add(why, s.Name)
			continue
		}
		if best >= 0 && s.Sessions > servers[best].Sessions {
			continue
		}
		h := tieHashOf(s.Name, req.Seed)
		if best >= 0 && s.Sessions == servers[best].Sessions && h >= bestHash {
			continue
		}
		best, bestHash = i, h
	}
	if best < 0 {
		return Decision{}, noServerIn(req.App, servers)
	}
	s := &servers[best]
	reason := fmt.Sprintf("%s: fewest sessions (%d/%s)", s.Name, s.Sessions, limit(s.Max))
	if k := ex.total(); k > 0 {
		reason += "; excluded " + strconv.Itoa(k) + ":" + string(appendCounts(nil, &ex, serverLabel))
	}
	return Decision{Server: s.Name, Reason: reason}, nil
}

func limit(max int) string {
	if max == 0 {
		return "unlimited"
	}
	return strconv.Itoa(max)
}
