package selection

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrNoServer is returned (wrapped, with a one-line reason a user can read)
// when no server can take the session.
var ErrNoServer = errors.New("no server available")

// Affinity says which of a user's running sessions attract a new session of
// the same user to their server.
type Affinity int

const (
	// AffinityNone ignores the user's running sessions.
	AffinityNone Affinity = iota
	// AffinityUser prefers a server where the user runs any session.
	AffinityUser
	// AffinityUserApp prefers a server where the user runs the same app.
	AffinityUserApp
)

// ParseAffinity reads an affinity as written in the config: "none", "user"
// or "user+app".
func ParseAffinity(s string) (Affinity, error) {
	switch s {
	case "none":
		return AffinityNone, nil
	case "user":
		return AffinityUser, nil
	case "user+app":
		return AffinityUserApp, nil
	}
	return AffinityNone, fmt.Errorf("selection: unknown affinity %q (want none, user or user+app)", s)
}

// String returns the config spelling of a: "none", "user" or "user+app".
func (a Affinity) String() string {
	switch a {
	case AffinityNone:
		return "none"
	case AffinityUser:
		return "user"
	case AffinityUserApp:
		return "user+app"
	}
	return fmt.Sprintf("Affinity(%d)", int(a))
}

// Policy is how servers and gateways are chosen. The zero Policy uses
// DefaultWeights and no affinity; DefaultPolicy is the recommended one.
type Policy struct {
	Affinity Affinity // which running sessions attract a new one, none if zero
	Weights  Weights  // score weights, DefaultWeights if all zero
	// SpillAt is the utilisation past which a server's score falls
	// SpillSlope times faster: the fill level at which a region gives
	// way to a near region with headroom (see DefaultSpillAt).
	// DefaultSpillAt if zero; 1 or more spills only past full.
	SpillAt float64
}

// DefaultPolicy is the policy the broker uses unless configured otherwise:
// default weights and affinity to any of the user's sessions.
var DefaultPolicy = Policy{Affinity: AffinityUser, Weights: DefaultWeights}

// Server is one app server as the broker sees it at decision time.
type Server struct {
	Name     string
	Region   string   // where it runs; "" if not configured
	Healthy  bool     // heartbeat fresh and link up
	Draining bool     // admin asked for no new sessions
	Apps     []string // apps offered
	Sessions int      // running as last reported plus placed since that report
	Max      int      // max sessions; 0 means no limit
	Load     float64  // CPU in use per CPU (1.0 = all cores busy), with what was placed since the report; may exceed 1
}

// Placed is one of the user's running sessions.
type Placed struct {
	Server string // where it runs
	App    string // what it runs
}

// Request is the session to place.
type Request struct {
	User         string
	App          string
	ClientRegion string   // region of the client's address; "" when unknown
	Near         []string // regions near ClientRegion, in preference order
	Existing     []Placed // the user's running sessions, for affinity
	Seed         uint64   // breaks ties: same inputs and seed, same decision
	// Marks, if set, is what PlaceTable reads instead of Existing: the
	// same sessions counted by the Table's server indexes, so that a
	// decision costs the same whatever the user's session count. Place
	// reads Existing only.
	Marks *Marks
}

// Decision is the chosen server and why.
type Decision struct {
	Server string
	Reason string // one line: the winner's score parts and what was excluded
}

// Place chooses the server for req among servers: it drops those that
// cannot take the session (unhealthy, draining, full, not offering req.App)
// and takes the best score among the rest (see the package comment). The
// error wraps ErrNoServer with a reason a user can read. Place does not
// modify servers and allocates only the reason string, and the sorted list
// of the user's servers when they have more than 16 sessions.
//
// For speed, a server too busy to beat the best score so far, even with
// the best locality and affinity, is passed over before its app list is
// read; so the reason of a successful placement counts the unhealthy,
// draining and full servers but not those lacking the app. A failed
// placement explains every server.
func (p Policy) Place(req Request, servers []Server) (Decision, error) {
	pl := listPlacer{servers: servers, lastLen: -1}
	sessions, slots := 0, 0
	for i := range servers {
		s := &servers[i]
		a, b := shareOf(s.Healthy, s.Draining, s.Sessions, s.Max)
		sessions += a
		slots += b
	}
	pl.init(p, req, sessions, slots)
	pl.markMine()
	// Score a sample first, so that the cut is tight from the start
	// whatever the order of servers (by name, a whole remote region may
	// come first). Considering a server twice changes nothing.
	for i := 0; len(servers) >= 8*sampled && i < len(servers); i += len(servers) / sampled {
		if s := &servers[i]; s.Healthy && !s.Draining && (s.Max <= 0 || s.Sessions < s.Max) {
			pl.consider(i)
		}
	}
	cut := pl.cut
	for i := range servers {
		s := &servers[i]
		switch {
		case !s.Healthy:
			pl.ex.add(unhealthy, s.Name)
			continue
		case s.Draining:
			pl.ex.add(draining, s.Name)
			continue
		case s.Max > 0 && s.Sessions >= s.Max:
			pl.ex.add(full, s.Name)
			continue
		}
		if !within(s, cut) {
			continue
		}
		pl.consider(i)
		cut = pl.cut
	}
	if pl.best < 0 {
		return Decision{}, noServerIn(req.App, servers)
	}
	s := &servers[pl.best]
	return Decision{Server: s.Name, Reason: placeReason(s, req, p, &pl.placer, len(servers))}, nil
}

// sampled is how many servers Place and PlaceTable score before their main
// pass when there are at least 8*sampled of them.
const sampled = 128

// placer is the state of one decision that does not depend on how the
// servers are stored: the request, the best server so far and the cut
// derived from it. Place and PlaceTable feed it the servers that can
// still win, each in its own order: the best is the greatest in a total
// order (see beats), so the order does not change the decision.
type placer struct {
	p        Policy
	w        Weights
	req      Request
	key      uint64 // seedKey(req.Seed)
	loc      locator
	maxLoc   float64 // the best locality any server can have
	affBound float64 // the most affinity can add to a score
	ex       tally   // exclusions

	best         int     // index of the best server so far, -1 if none
	bestParts    parts   // its score
	bestSessions int     // its sessions
	bestHash     uint64  // its tie hash
	cut          float64 // utilisation above which no server can reach best
	bar          float64 // the load part a server of locality 0 needs to reach best, -Inf before the first best
	spill        float64 // the fill level in force (see fillLevel)
}

// init sets what follows from the policy and request, on a cluster whose
// healthy, not draining servers with a limit hold sessions of slots.
func (pl *placer) init(p Policy, req Request, sessions, slots int) {
	pl.p, pl.w, pl.req, pl.key = p, p.weights(), req, seedKey(req.Seed)
	pl.best, pl.cut, pl.bar = -1, math.Inf(1), math.Inf(-1)
	pl.spill = p.fillLevel(sessions, slots)
	pl.loc = locator{client: req.ClientRegion, near: req.Near}
	if req.ClientRegion != "" {
		pl.maxLoc = 1
	}
}

// attracts says whether the user's session e attracts the requested
// session to its server under the policy's affinity.
func (pl *placer) attracts(e *Placed) bool {
	switch pl.p.Affinity {
	case AffinityNone:
		return false
	case AffinityUserApp:
		return equalShort(e.App, pl.req.App)
	}
	return true
}

// cutFor is the utilisation above which a server of locality loc cannot
// reach the best score: it would need Load*loadPart(u) + Locality*loc +
// affBound >= best - epsilon. It is +Inf when any utilisation could.
func (pl *placer) cutFor(loc float64) float64 {
	if pl.w.Load <= 0 {
		return math.Inf(1)
	}
	return cutOf(pl.bar-pl.w.Locality*loc/pl.w.Load, pl.spill) + 1e-9
}

// score is the score of a server of locality loc and utilisation u with
// affinity aff (1 if the user has a session there that attracts this
// one, else 0).
func (pl *placer) score(loc, u, aff float64) parts {
	sp := pl.scoreOf(loc, u)
	if aff > 0 {
		sp.affinity = aff
		sp.total += pl.w.Affinity * aff
	}
	return sp
}

// scoreOf is the score of a server of locality loc and utilisation u
// with no affinity.
func (pl *placer) scoreOf(loc, u float64) parts {
	w := pl.w
	sp := parts{locality: loc, load: loadPart(u, pl.spill)}
	sp.total = w.Load*sp.load + w.Locality*sp.locality
	return sp
}

// rank compares a server of score total and sessions with the best so
// far: 1 if it is better (or there is none), -1 if worse, 0 if they tie
// on both and the tie hash decides (see beats).
func (pl *placer) rank(total float64, sessions int) int {
	if pl.best < 0 {
		return 1
	}
	if c := cmpScore(total, pl.bestParts.total); c != 0 {
		return c
	}
	switch {
	case sessions < pl.bestSessions:
		return 1
	case sessions > pl.bestSessions:
		return -1
	}
	return 0
}

// beats says whether server i, of tie hash h, which ties with the best
// on score and sessions, comes before it: a lower tie hash, or the same
// (a repeated name) and a lower index. With rank, this is the total
// order of servers: score down, then sessions, tie hash and index up.
func (pl *placer) beats(i int, h uint64) bool {
	return h < pl.bestHash || h == pl.bestHash && i < pl.best
}

// take makes server i (score sp, sessions, tie hash h) the best so far.
func (pl *placer) take(i int, sp parts, sessions int, h uint64) {
	pl.best, pl.bestParts, pl.bestSessions, pl.bestHash = i, sp, sessions, h
	// The cuts derived from the new best; the 1e-9 slack in cutFor keeps
	// them on the safe side of rounding.
	if w := pl.w; w.Load > 0 {
		pl.bar = (sp.total - scoreEpsilon - pl.affBound) / w.Load
	}
	pl.cut = pl.cutFor(pl.maxLoc)
}

// listPlacer is the state of one Place call: a placer reading a []Server.
type listPlacer struct {
	placer
	servers []Server

	// The last app list checked and whether it offers req.App: servers
	// of a group often share one list.
	lastApps   *string
	lastLen    int
	lastOffers bool

	// The last region scored and its locality.
	lastRegion   string
	lastLocality float64
	regionKnown  bool

	// The servers of the user's sessions that attract this one, sorted
	// and each once; mineBuf holds them when they are few.
	mine    []string
	mineBuf [16]string
}

// markMine lists, once per decision, the servers on which the user runs a
// session that attracts this one: each server once, sorted, so a
// candidate's affinity is a binary search whatever the user's session
// count. It sets the affinity bound if there is one.
func (pl *listPlacer) markMine() {
	mine := pl.mineBuf[:0]
	for k := range pl.req.Existing {
		e := &pl.req.Existing[k]
		if !pl.attracts(e) || len(mine) > 0 && mine[len(mine)-1] == e.Server {
			continue
		}
		mine = append(mine, e.Server)
	}
	if len(mine) == 0 {
		return
	}
	slices.Sort(mine)
	pl.mine = slices.Compact(mine)
	pl.affBound = pl.w.Affinity
}

// affinity is 1 if the user runs a session that attracts this one on
// the server named name, else 0.
func (pl *listPlacer) affinity(name string) float64 {
	if len(pl.mine) == 0 {
		return 0
	}
	if _, ok := slices.BinarySearch(pl.mine, name); ok {
		return 1
	}
	return 0
}

// locality scores region, remembering the answer for the next server in
// the same region: one comparison instead of one per near region.
func (pl *listPlacer) locality(region string) float64 {
	if pl.regionKnown && equalShort(region, pl.lastRegion) {
		return pl.lastLocality
	}
	pl.lastRegion, pl.lastLocality, pl.regionKnown = region, pl.loc.score(region), true
	return pl.lastLocality
}

// offers says whether s offers the requested app, remembering the answer
// for the next server with the same app list.
func (pl *listPlacer) offers(s *Server) bool {
	var list *string
	if len(s.Apps) > 0 {
		list = &s.Apps[0]
	}
	if list != pl.lastApps || len(s.Apps) != pl.lastLen {
		pl.lastApps, pl.lastLen, pl.lastOffers = list, len(s.Apps), offers(s.Apps, pl.req.App)
	}
	return pl.lastOffers
}

// consider offers servers[i], which is healthy, not draining and has room,
// to the placer if it offers the app and may still win. It reads the
// region, the app list and the name only of servers that can still win.
func (pl *listPlacer) consider(i int) {
	s := &pl.servers[i]
	loc := pl.locality(s.Region)
	if !within(s, pl.cutFor(loc)) || !pl.offers(s) {
		return
	}
	sp := pl.score(loc, utilisation(s), pl.affinity(s.Name))
	var h uint64
	switch pl.rank(sp.total, s.Sessions) {
	case -1:
		return
	case 0:
		if h = tieHash(nameHash(s.Name), pl.key); !pl.beats(i, h) {
			return
		}
	default:
		h = tieHash(nameHash(s.Name), pl.key)
	}
	pl.take(i, sp, s.Sessions, h)
}

// shareOf is what a server adds to the cluster's mean fill: its sessions
// and limit if it is healthy, not draining and has a limit, else nothing.
func shareOf(healthy, draining bool, sessions, limit int) (int, int) {
	if !healthy || draining || limit <= 0 {
		return 0, 0
	}
	return sessions, limit
}

// fillLevel is the utilisation past which a server's load part falls
// SpillSlope+1 times as fast, on a cluster whose healthy, not draining
// servers with a limit hold sessions of slots: the cluster's mean fill
// plus spillMargin of it, so that a region does not run much busier than
// the rest, but never above the policy's SpillAt nor below spillFloor of
// it, so that locality wins while the cluster is quiet.
func (p Policy) fillLevel(sessions, slots int) float64 {
	at := p.spillAt()
	if slots <= 0 {
		return at
	}
	mean := float64(sessions) / float64(slots)
	return min(at, max(at*spillFloor, mean*(1+spillMargin)))
}

// spillMargin and spillFloor shape fillLevel.
const (
	spillMargin = 0.03
	spillFloor  = 0.75
)

// spillAt returns the policy's highest fill level: DefaultSpillAt for zero.
func (p Policy) spillAt() float64 {
	if p.SpillAt > 0 {
		return p.SpillAt
	}
	return DefaultSpillAt
}

// weights returns the weights in force: DefaultWeights for the zero value.
func (p Policy) weights() Weights {
	if p.Weights == (Weights{}) {
		return DefaultWeights
	}
	return p.Weights
}
