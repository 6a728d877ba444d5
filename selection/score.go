package selection

import (
	"fmt"
	"math"
)

// Weights scale the parts of a server's score. Each part is in [0, 1], so a
// weight is the most that part can add; what matters is the ratio of two
// weights, which says how much utilisation one criterion is worth.
type Weights struct {
	Locality float64 // client and server in the same region (1) or a near one (0.5, less further down the list)
	Affinity float64 // the user already runs a session on the server
	Load     float64 // loadPart(utilisation), utilisation = max((Sessions+1)/Max, Load), not capped at 1
}

// DefaultSpillAt is the highest fill level of the zero Policy. The fill
// level in force (Policy.fillLevel) is the cluster's mean fill (the
// sessions over the session limits of its healthy, not draining servers)
// plus 3% of it, never above SpillAt nor below three quarters of it. Past
// the fill level a server's load part falls SpillSlope+1 times as fast, so
// that a region whose demand outgrows its capacity gives the overflow to
// the nearest region with headroom once its servers are past the
// cluster's mean, not once they are full: there locality is worth 1.5
// points of utilisation, not 60 (a local server 1 point past the level
// loses to a near one at the level, and 2 points past to a remote one),
// and the busiest servers stay within a few points of the mean. Below the
// level locality wins as before: a local server 59 points busier beats an
// idle remote one. At a mean fill below 60% the level is 60%, so locality
// wins while the cluster is quiet, at the price of balance. A server past
// its cores (CPU load above 1) is past any level and loses to every server
// that is not, the more the further past.
const DefaultSpillAt = 0.8

// SpillSlope is how many times faster than below the fill level a
// server's load part falls past it.
const SpillSlope = 40

// FullAt is the utilisation past which a server's load part falls
// another FullSlope times faster, whatever the fill level: near full,
// locality and affinity are worth a fraction of a point, so a server
// does not fill up while another has room, not even in a flash crowd
// that fills the whole cluster past the fill level.
const (
	FullAt    = 0.9
	FullSlope = 400
)

// maxUtil caps utilisation so that scores stay finite: a server past a
// thousand times its cores, or whose load is unknown (NaN), counts as that
// busy.
const maxUtil = 1000

// loadPart is the load part of the score of a server of utilisation u
// under fill level spill: 1-u, less SpillSlope times what u is past spill,
// less FullSlope times what it is past FullAt (or spill, if higher). It
// falls as u grows, without bound below.
func loadPart(u, spill float64) float64 {
	full := max(spill, FullAt)
	p := 1 - u
	if u > spill {
		p -= SpillSlope * (u - spill)
	}
	if u > full {
		p -= FullSlope * (u - full)
	}
	return p
}

// cutOf is the greatest utilisation whose loadPart under spill is at
// least y, the inverse of loadPart: +Inf when y is -Inf.
func cutOf(y, spill float64) float64 {
	full := max(spill, FullAt)
	atFull := 1 - full - SpillSlope*(full-spill)
	switch {
	case y >= 1-spill:
		return 1 - y
	case y >= atFull:
		return spill + (1-spill-y)/(1+SpillSlope)
	}
	return full + (atFull-y)/(1+SpillSlope+FullSlope)
}

// DefaultWeights are the weights of the zero Policy. With Load = 1 the other
// two read as points of utilisation: how much busier than the best
// alternative a server may be and still win.
//
//   - Locality 0.6. A same-region server beats an idle remote one until it is
//     more than 60% busy, and any remote server until it is 60 points busier
//     than it; the first near region (locality 0.5, worth 0.3) takes over
//     once the local servers are 30 points busier. So a local server that is
//     not heavily loaded keeps the session, a full region (filtered out) or
//     a nearly full one (say 95% against 60%) spills to its near region
//     first, and to remote regions only when the near ones are busy too.
//     Terminal sessions are interactive: a round trip across a continent is
//     felt on every key, so locality is worth a lot, though not a hot server.
//   - Affinity 0.02. A server already running one of the user's sessions
//     wins while it has room (the capacity filter comes first; affinity never
//     overrides it) and is at most 2 points busier than the best alternative
//     at the same locality; anything more overloaded loses, so overload wins
//     over affinity. Being below half the near step (0.3), it never pulls a
//     user out of their region. It is small on purpose: within a region the
//     load part keeps servers within a few points of each other, so even a
//     2-point margin groups about 70% of a returning user's sessions in
//     selection/sim (load-only policies: about 6%), while every point of
//     margin is a point of peak utilisation (0.04 groups 78% but puts the
//     peak 5% above least-connections; 0.02 keeps it within about 4%).
//   - Load 1, the unit. Within a tier (same locality and affinity) the least
//     utilised server wins, which is least-connections by capacity ratio; it
//     spreads a burst of placements because the broker counts its own
//     placements since the last report in Sessions.
//
// Below the fill level (see DefaultSpillAt) regions do not balance each
// other until they are 30 points apart; past it, within a point or two.
var DefaultWeights = Weights{Locality: 0.6, Affinity: 0.02, Load: 1}

// Validate reports weights that cannot rank servers: negative, NaN or
// infinite.
func (w Weights) Validate() error {
	for _, f := range [...]struct {
		name string
		v    float64
	}{{"locality", w.Locality}, {"affinity", w.Affinity}, {"load", w.Load}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("selection: %s weight %v must be a finite number >= 0", f.name, f.v)
		}
	}
	return nil
}

// parts is a candidate's score, unweighted parts and weighted total.
type parts struct {
	locality, affinity, load float64
	total                    float64
}

// locator scores a region against the client's.
type locator struct {
	client string
	near   []string
}

// score is 1 for the client's region, 0.5/(i+1) for near[i], else 0; 0 for
// every region when the client's region is unknown.
func (l locator) score(region string) float64 {
	if l.client == "" || region == "" {
		return 0
	}
	if equalShort(region, l.client) {
		return 1
	}
	for i, n := range l.near {
		if equalShort(region, n) {
			return 0.5 / float64(i+1)
		}
	}
	return 0
}

// appendRegion writes how region relates to the client's: "same region
// eu", "near region us", "remote region ap" or "client region unknown,
// server in eu".
func (l locator) appendRegion(b []byte, region string) []byte {
	switch v := l.score(region); {
	case l.client == "":
		b = append(b, "client region unknown"...)
		if region != "" {
			b = append(b, ", server in "...)
			b = append(b, region...)
		}
		return b
	case region == "":
		return append(b, "server region unknown"...)
	case v == 1:
		b = append(b, "same region "...)
	case v > 0:
		b = append(b, "near region "...)
	default:
		b = append(b, "remote region "...)
	}
	return append(b, region...)
}

// utilisation is how busy s would be with the session being placed, 0 or
// more and not capped at 1: the larger of its session ratio with that
// session counted, (Sessions+1)/Max, and its CPU load, or the CPU load
// alone when it has no session limit. Counting the new session is what
// makes a small server as full as it would be: at 18 of 20 it is 95%, not
// 90%, so it does not jump past a busier big server's 92% and to 95% in
// one placement. An unreadable load (NaN) counts as maxUtil, as busy as
// can be.
func utilisation(s *Server) float64 { return utilisationOf(s.Load, s.Sessions, s.Max) }

// utilisationOf is utilisation of a server with that CPU load, sessions
// and session limit (0 for none).
func utilisationOf(load float64, sessions, limit int) float64 {
	u := load
	if limit > 0 {
		u = max(u, float64(sessions+1)/float64(limit))
	}
	switch {
	case u >= maxUtil || u != u:
		return maxUtil
	case u > 0:
		return u
	}
	return 0
}

// scoreEpsilon absorbs float rounding so that servers in the same state
// tie exactly and go to the seeded tie-break.
const scoreEpsilon = 1e-9

// cmpScore is -1, 0 or 1 as a is below, about equal to, or above b.
func cmpScore(a, b float64) int {
	switch {
	case a < b-scoreEpsilon:
		return -1
	case a > b+scoreEpsilon:
		return 1
	}
	return 0
}

// A tie goes to the lower tie hash of the server's name under the
// request's seed: tieHash(nameHash(name), seedKey(seed)). The name's part
// does not depend on the seed, so a Table computes it once per server and
// a tie costs one finaliser. For any two names whose hashes differ, x and
// x^d (d their xor) are equally likely to be the lower for a uniform key,
// so a tie between two servers is even; seedKey and mix spread sequential
// seeds and close names over all 64 bits.

// nameHash is the 64-bit FNV-1a hash of name.
func nameHash(name string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	return h
}

// seedKey is what a request's seed adds to every name's tie hash: the
// splitmix64 output for that seed.
func seedKey(seed uint64) uint64 { return mix(seed + 0x9e3779b97f4a7c15) }

// tieHash is the tie hash of a name whose nameHash is nh under the seed
// whose seedKey is key.
func tieHash(nh, key uint64) uint64 { return mix(nh ^ key) }

// tieHashOf is the tie hash of name under seed.
func tieHashOf(name string, seed uint64) uint64 { return tieHash(nameHash(name), seedKey(seed)) }

// mix is the splitmix64 finaliser, a bijection in which every input bit
// changes about half the output bits.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}
