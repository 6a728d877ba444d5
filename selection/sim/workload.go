package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// DefaultDuration is the simulated time of the zero Config.
const DefaultDuration = 4 * time.Hour

// Config is one simulation. The zero value runs the default workload.
type Config struct {
	Seed        uint64        // seeds the workload and the random policies; 1 if zero
	Servers     int           // app servers, 60 if zero
	Sessions    int           // sessions requested over Duration (about), 100000 if zero
	Duration    time.Duration // simulated time, 4h if zero
	Utilisation float64       // offered load over total capacity, 0.7 if zero
	Report      time.Duration // server report interval, 2s if zero
	Warmup      time.Duration // not measured, Duration/4 if zero
	Provision   string        // how regions are sized: ProvisionObserved if empty, or ProvisionMix; planned workload only
	Workload    string        // WorkloadPlanned if empty, or WorkloadSkewed
}

// The workload families.
const (
	// WorkloadPlanned is the first family: three regions sized to their
	// demand, servers of 10 slots a core, sessions light on CPU.
	WorkloadPlanned = "planned"
	// WorkloadSkewed is the second family, built to break a policy: see
	// the package comment.
	WorkloadSkewed = "skewed"
)

// How servers are spread over regions.
const (
	// ProvisionObserved sizes each region to the session time its clients
	// actually ask for in the measured period, as capacity planning from
	// observed usage would.
	ProvisionObserved = "observed"
	// ProvisionMix sizes each region to the expected client mix (47.5%,
	// 30.5%, 22% with travellers), so random variation in the realised
	// demand becomes a regional surplus or shortage.
	ProvisionMix = "mix"
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Servers == 0 {
		c.Servers = 60
	}
	if c.Sessions == 0 {
		c.Sessions = 100000
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Utilisation == 0 {
		c.Utilisation = 0.7
	}
	if c.Report == 0 {
		c.Report = 2 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = c.Duration / 4
	}
	if c.Provision == "" {
		c.Provision = ProvisionObserved
	}
	if c.Workload == "" {
		c.Workload = WorkloadPlanned
	}
	return c
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Workload != WorkloadPlanned && c.Workload != WorkloadSkewed:
		return fmt.Errorf("sim: workload %q must be %q or %q", c.Workload, WorkloadPlanned, WorkloadSkewed)
	case c.Workload == WorkloadPlanned && c.Servers < len(regions):
		return fmt.Errorf("sim: need at least %d servers, one per region", len(regions))
	case c.Workload == WorkloadSkewed && c.Servers < 2*len(skewedRegions):
		return fmt.Errorf("sim: need at least %d servers, two per region", 2*len(skewedRegions))
	case c.Sessions < 1 || c.Duration <= 0 || c.Report <= 0:
		return fmt.Errorf("sim: sessions, duration and report interval must be positive")
	case c.Warmup >= c.Duration:
		return fmt.Errorf("sim: warmup %v must be shorter than the duration %v", c.Warmup, c.Duration)
	case c.Provision != ProvisionObserved && c.Provision != ProvisionMix:
		return fmt.Errorf("sim: provision %q must be %q or %q", c.Provision, ProvisionObserved, ProvisionMix)
	case c.Utilisation <= 0 || c.Utilisation > 2:
		return fmt.Errorf("sim: utilisation %v must be in (0, 2]", c.Utilisation)
	}
	return nil
}

// region is one region with its share of clients and its near list.
type region struct {
	name  string
	share float64
	near  []string
}

var regions = []region{
	{"eu", 0.5, []string{"us"}},
	{"us", 0.3, []string{"eu", "ap"}},
	{"ap", 0.2, []string{"us"}},
}

// app is one app with its share of requests and which servers offer it.
type app struct {
	name  string
	share float64
	every int     // offered by every every-th server of a region
	cpu   float64 // CPUs a session uses; 0: batchCPU or interCPU
}

var apps = []app{{"shell", 0.5, 1, 0}, {"editor", 0.25, 1, 0}, {"db", 0.2, 2, 0}, {"gpu", 0.05, 5, 0}}

const (
	batchShare     = 0.4  // of sessions
	batchMean      = 0.05 // of the interactive mean T
	batchCPU       = 0.5  // CPUs a batch session uses
	interCPU       = 0.05 // CPUs an interactive session uses
	interSigma     = 1.0  // log-normal shape of interactive lifetimes
	sessionsPerCPU = 10   // a server has Max/10 CPUs
	travelShare    = 0.1  // visits from outside the user's home region
	meanGap        = 30 * time.Second
	extraMean      = 1.5 // mean extra sessions per visit (geometric)
	maxPerVisit    = 8
)

// server is a simulated app server's fixed description.
type server struct {
	name   string
	region int
	max    int
	cpus   float64
	apps   []string
}

// session is one requested session of the workload.
type session struct {
	at     time.Duration // request time
	life   time.Duration
	user   int32
	client int8 // region index of the client
	app    int8
	batch  bool
	cpu    float32 // CPUs it uses while it runs
}

// event is a server dying, coming back, draining or resuming.
type event struct {
	at     time.Duration
	server int
	kind   eventKind
}

type eventKind int8

const (
	die eventKind = iota
	revive
	drain
	resume
)

// workload is what every policy is run against.
type workload struct {
	regions  []region
	apps     []app
	servers  []server
	users    []int8 // home region per user
	sessions []session
	events   []event // in time order
	capacity int
}

func newWorkload(c Config) *workload {
	if c.Workload == WorkloadSkewed {
		return newSkewed(c)
	}
	r := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	w := &workload{regions: regions, apps: apps}
	maxes := make([]int, c.Servers)
	for i := range maxes {
		maxes[i] = 20 + 10*r.IntN(19)
		w.capacity += maxes[i]
	}
	w.users = make([]int8, max(100, c.Sessions/40))
	for i := range w.users {
		w.users[i] = int8(pickRegion(r, w.regions))
	}
	w.sessions, _ = newSessions(r, c, w, c.Utilisation)
	demand := clientShares(w.regions)
	if c.Provision == ProvisionObserved {
		demand = observedShares(c, w.sessions, len(w.regions))
	}
	spc := make([]float64, len(maxes))
	for i := range spc {
		spc[i] = sessionsPerCPU
	}
	w.servers = newServers(maxes, spc, demand, w.regions, w.apps)
	return w
}

// newServers provisions regions with the given servers' capacity: largest
// first, each to the region furthest below its share of demand, and at
// least one server per region.
func newServers(maxes []int, spc, demand []float64, regions []region, apps []app) []server {
	n := len(maxes)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return maxes[b] - maxes[a] })
	total := 0
	for _, m := range maxes {
		total += m
	}
	got := make([]float64, len(regions))
	perRegion := make([]int, len(regions))
	out := make([]server, n)
	for k, i := range order {
		g := 0
		if k >= len(regions) {
			for j := range regions {
				if demand[j]*float64(total)-got[j] > demand[g]*float64(total)-got[g] {
					g = j
				}
			}
		} else {
			g = k
		}
		got[g] += float64(maxes[i])
		idx := perRegion[g]
		perRegion[g]++
		s := server{name: fmt.Sprintf("%s-%02d", regions[g].name, idx), region: g, max: maxes[i], cpus: float64(maxes[i]) / spc[i]}
		for _, a := range apps {
			if idx%a.every == 0 {
				s.apps = append(s.apps, a.name)
			}
		}
		out[i] = s
	}
	slices.SortFunc(out, func(a, b server) int { return cmp.Compare(a.name, b.name) })
	return out
}

// observedShares is each client region's share of the session time the
// workload asks for during the measured period: what an operator sizing
// regions from last month's usage would provision for.
func observedShares(c Config, sessions []session, regions int) []float64 {
	out := make([]float64, regions)
	total := 0.0
	for _, s := range sessions {
		from, to := max(s.at, c.Warmup), min(s.at+s.life, c.Duration)
		if to > from {
			out[s.client] += (to - from).Seconds()
			total += (to - from).Seconds()
		}
	}
	for i := range out {
		out[i] /= total
	}
	return out
}

// newSessions generates the visits and their sessions, in request order,
// enough to fill util of the capacity, and the mean interactive lifetime
// in seconds.
func newSessions(r *rand.Rand, c Config, w *workload, util float64) ([]session, float64) {
	regions := w.regions
	// Sessions per visit: 1 + geometric, capped at maxPerVisit.
	q, meanPerVisit := extraMean/(1+extraMean), 0.0
	for k := range maxPerVisit {
		meanPerVisit += math.Pow(q, float64(k))
	}
	visitRate := float64(c.Sessions) / meanPerVisit / c.Duration.Seconds()
	// Little's law: concurrent = rate * mean life.
	meanLife := util * float64(w.capacity) / (float64(c.Sessions) / c.Duration.Seconds())
	interMean := meanLife / (batchShare*batchMean + (1 - batchShare))
	mu := math.Log(interMean) - interSigma*interSigma/2
	var out []session
	for t := 0.0; ; {
		t += r.ExpFloat64() / visitRate
		if t >= c.Duration.Seconds() {
			break
		}
		u := r.IntN(len(w.users))
		client := int(w.users[u])
		if r.Float64() < travelShare {
			client = (client + 1 + r.IntN(len(regions)-1)) % len(regions)
		}
		n := 1
		for n < maxPerVisit && r.Float64() < q {
			n++
		}
		at := t
		for k := range n {
			if k > 0 {
				at += r.ExpFloat64() * meanGap.Seconds()
			}
			if at >= c.Duration.Seconds() {
				break
			}
			s := session{at: seconds(at), user: int32(u), client: int8(client), app: int8(pickApp(r, w.apps)), cpu: interCPU}
			if r.Float64() < batchShare {
				s.batch, s.cpu = true, batchCPU
				s.life = seconds(r.ExpFloat64() * batchMean * interMean)
			} else {
				s.life = seconds(math.Exp(mu + interSigma*r.NormFloat64()))
			}
			if a := w.apps[s.app]; a.cpu > 0 {
				s.cpu = float32(a.cpu)
			}
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b session) int { return cmp.Compare(a.at, b.at) })
	return out, interMean
}

// clientShares is the share of requests from each region: users' home
// regions, less those travelling, plus travellers from the other regions.
func clientShares(regions []region) []float64 {
	out := make([]float64, len(regions))
	for i, g := range regions {
		out[i] += g.share * (1 - travelShare)
		for j := range regions {
			if j != i {
				out[j] += g.share * travelShare / float64(len(regions)-1)
			}
		}
	}
	return out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func pickRegion(r *rand.Rand, regions []region) int {
	x := r.Float64()
	for i, g := range regions {
		if x < g.share {
			return i
		}
		x -= g.share
	}
	return len(regions) - 1
}

func pickApp(r *rand.Rand, apps []app) int {
	x := r.Float64()
	for i, a := range apps {
		if x < a.share {
			return i
		}
		x -= a.share
	}
	return len(apps) - 1
}
