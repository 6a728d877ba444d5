package sim

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// The skewed family (WorkloadSkewed): four regions whose capacity does not
// follow their demand, servers of 3, 5 or 7 slots a core, apps heavy on
// CPU offered by some servers only, a flash crowd, servers dying and
// draining, and a few users with hundreds of sessions.
var skewedRegions = []region{
	{"eu", 0.40, []string{"us"}},
	{"us", 0.30, []string{"eu", "sa"}},
	{"ap", 0.18, []string{"us"}},
	{"sa", 0.12, []string{"us"}},
}

var skewedApps = []app{
	{"shell", 0.42, 1, 0.03}, {"editor", 0.20, 1, 0.03}, {"db", 0.15, 2, 0.1},
	{"build", 0.15, 2, 0.4}, {"gpu", 0.08, 3, 0.8},
}

// slotsPerCore are the densities the skewed family's servers are built
// with, one drawn per server.
var slotsPerCore = []float64{3, 5, 7}

const (
	powerUsers = 3    // users with hundreds of sessions
	powerShare = 0.08 // of the capacity their sessions hold
	flashShare = 0.12 // of the capacity the flash crowd asks for
	flashSpan  = time.Second
)

// newSkewed builds a workload of the skewed family. One of eu and us (by
// the seed) gets 17 to 24 points less of the capacity than of the demand
// its clients make in the measured period, the others share the surplus
// by their demand.
func newSkewed(c Config) *workload {
	r := rand.New(rand.NewPCG(c.Seed, 0x5eed2))
	w := &workload{regions: skewedRegions, apps: skewedApps}
	maxes := make([]int, c.Servers)
	spc := make([]float64, c.Servers)
	for i := range maxes {
		maxes[i] = 20 + 10*r.IntN(19)
		spc[i] = slotsPerCore[r.IntN(len(slotsPerCore))]
		w.capacity += maxes[i]
	}
	w.users = make([]int8, max(100, c.Sessions/40))
	for i := range w.users {
		w.users[i] = int8(pickRegion(r, w.regions))
	}
	hot := r.IntN(2)
	short := 0.17 + 0.07*r.Float64()
	sessions, interMean := newSessions(r, c, w, c.Utilisation-powerShare)
	sessions = append(sessions, powerSessions(r, c, w)...)
	sessions = append(sessions, flashCrowd(r, c, w, hot, interMean)...)
	slices.SortStableFunc(sessions, func(a, b session) int { return cmp.Compare(a.at, b.at) })
	w.sessions = sessions

	// Capacity by the demand observed, less short for the hot region.
	demand := observedShares(c, w.sessions, len(w.regions))
	capShares := make([]float64, len(demand))
	for j, d := range demand {
		capShares[j] = d + short*d/(1-demand[hot])
	}
	capShares[hot] = demand[hot] - short
	w.servers = newServers(maxes, spc, capShares, w.regions, w.apps)
	w.events = failures(r, c, len(w.servers))
	return w
}

// powerSessions are the sessions of powerUsers users, each holding a
// share of powerShare of the capacity (hundreds of sessions on the
// default 60 servers), opened during the warmup and running to the end.
func powerSessions(r *rand.Rand, c Config, w *workload) []session {
	var out []session
	each := int(powerShare * float64(w.capacity) / powerUsers)
	for range powerUsers {
		u := r.IntN(len(w.users))
		for range each {
			at := seconds(r.Float64() * c.Warmup.Seconds())
			out = append(out, session{at: at, life: c.Duration, user: int32(u), client: w.users[u],
				app: int8(r.IntN(2)), cpu: float32(w.apps[0].cpu)})
		}
	}
	return out
}

// flashCrowd is flashShare of the capacity asked for from the hot region
// within flashSpan, starting a quarter of a report interval after a
// report half way through the measured period, so that no report comes
// in between; the sessions are interactive.
func flashCrowd(r *rand.Rand, c Config, w *workload, hot int, interMean float64) []session {
	mid := c.Warmup + (c.Duration-c.Warmup)/2
	start := mid - mid%c.Report + c.Report/4
	span := min(flashSpan, c.Report/2)
	var home []int
	for u, g := range w.users {
		if int(g) == hot {
			home = append(home, u)
		}
	}
	mu := math.Log(interMean) - interSigma*interSigma/2
	n := int(flashShare * float64(w.capacity))
	out := make([]session, n)
	for k := range out {
		a := pickApp(r, w.apps)
		out[k] = session{at: start + time.Duration(r.Int64N(int64(span))), user: int32(home[r.IntN(len(home))]),
			client: int8(hot), app: int8(a), cpu: float32(w.apps[a].cpu),
			life: seconds(math.Exp(mu + interSigma*r.NormFloat64()))}
	}
	return out
}

// failures are, at three times in the measured period, one server in 30
// (at least one) dying and as many draining, each back an eighth of the
// measured period later.
func failures(r *rand.Rand, c Config, servers int) []event {
	var out []event
	span := c.Duration - c.Warmup
	k := max(1, servers/30)
	for t := range 3 {
		at := c.Warmup + span*time.Duration(t+1)/4 + c.Report/3
		for j, i := range r.Perm(servers)[:2*k] {
			kind := die
			if j%2 == 1 {
				kind = drain
			}
			out = append(out, event{at: at, server: i, kind: kind}, event{at: at + span/8, server: i, kind: kind + 1})
		}
	}
	slices.SortStableFunc(out, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	return out
}
