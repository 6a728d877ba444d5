package sim

import (
	"container/heap"
	"math"
	"strconv"
	"time"

	"switchyard/selection"
)

// Result is one policy's outcome over the measured period (after warmup).
type Result struct {
	Policy    string
	Requests  int     // sessions requested
	Placed    int     // sessions placed
	Imbalance float64 // mean over report instants of peak/cluster utilisation
	MeanUtil  float64 // mean over report instants of cluster utilisation
	Full      float64 // mean over report instants of the share of servers at 95% of Max or more
	CPUOver   float64 // mean over report instants of the share of servers using more CPUs than they have
	Local     float64 // share of placed sessions in the client's region
	Returning int     // placed sessions whose user already had one running
	Affinity  float64 // share of Returning placed beside one of the user's sessions
	NoRoom    int     // rejected: eligible servers exist, none had room
	NoServer  int     // rejected: no healthy server offers the app
}

// Summary is a whole run: the workload and every policy's result.
type Summary struct {
	Config   Config // with defaults filled in
	Servers  int
	Capacity int // sum of Max
	Users    int
	Sessions int // sessions requested over the whole run
	Results  []Result
}

// Run simulates every policy of Policies(c.Seed) on the workload of c.
func Run(c Config) (Summary, error) {
	c = c.withDefaults()
	return RunWith(c, Policies(c.Seed))
}

// RunWith simulates the given policies on the workload of c, each from the
// same initial state.
func RunWith(c Config, policies []Placer) (Summary, error) {
	if err := c.Validate(); err != nil {
		return Summary{}, err
	}
	c = c.withDefaults()
	w := newWorkload(c)
	sum := Summary{Config: c, Servers: len(w.servers), Capacity: w.capacity, Users: len(w.users), Sessions: len(w.sessions)}
	for _, p := range policies {
		sum.Results = append(sum.Results, simulate(c, w, p))
	}
	return sum, nil
}

// departure is a running session's end.
type departure struct {
	at time.Duration
	k  int32 // session index
}

type departures []departure

func (d departures) Len() int { return len(d) }
func (d departures) Less(i, j int) bool {
	return d[i].at < d[j].at || d[i].at == d[j].at && d[i].k < d[j].k
}
func (d departures) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *departures) Push(x any)   { *d = append(*d, x.(departure)) }
func (d *departures) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

// run is one policy's simulation state.
type run struct {
	c       Config
	w       *workload
	view    []selection.Server // what the policy sees
	running []int              // true running sessions per server
	cpu     []int64            // true CPU in use per server, in thousandths of a CPU (exact: see milli)
	dead    []bool             // per server
	onUser  [][]int32          // running session indices per user
	placed  []int32            // server of each session, -1 if rejected
	alive   []bool             // per session: running
	est     []float64          // expected CPUs of a new session, per app
	ends    departures
	next    int // next event of w.events
	res     Result

	samples      int
	sumImbalance float64
	sumUtil      float64
	sumFull      float64
	sumOver      float64
	local        int
	besides      int
}

func simulate(c Config, w *workload, p Placer) Result {
	r := &run{c: c, w: w, running: make([]int, len(w.servers)), cpu: make([]int64, len(w.servers)),
		dead: make([]bool, len(w.servers)), onUser: make([][]int32, len(w.users)),
		placed: make([]int32, len(w.sessions)), alive: make([]bool, len(w.sessions)), est: w.appCPU()}
	r.res.Policy = p.Name()
	for _, s := range w.servers {
		r.view = append(r.view, selection.Server{Name: s.name, Region: w.regions[s.region].name, Healthy: true, Apps: s.apps, Max: s.max})
	}
	users := make([]string, len(w.users))
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
	}
	nextReport := time.Duration(0)
	var existing []selection.Placed
	for k := range w.sessions {
		s := &w.sessions[k]
		nextReport = r.advance(s.at, nextReport)
		existing = existing[:0]
		for _, e := range r.onUser[s.user] {
			existing = append(existing, selection.Placed{Server: w.servers[r.placed[e]].name, App: w.apps[w.sessions[e].app].name})
		}
		g := &w.regions[s.client]
		req := selection.Request{User: users[s.user], App: w.apps[s.app].name, ClientRegion: g.name, Near: g.near, Existing: existing, Seed: uint64(k)}
		i := p.Place(req, r.view)
		r.record(s, i, existing)
		if i < 0 {
			r.placed[k] = -1
			continue
		}
		// What the broker counts of a placement until the next report:
		// a session, and the app's CPU estimate.
		r.view[i].Sessions++
		r.view[i].Load += r.est[s.app] / w.servers[i].cpus
		r.running[i]++
		r.cpu[i] += milli(s.cpu)
		r.placed[k], r.alive[k] = int32(i), true
		r.onUser[s.user] = append(r.onUser[s.user], int32(k))
		heap.Push(&r.ends, departure{at: s.at + s.life, k: int32(k)})
	}
	r.advance(c.Duration, nextReport)
	return r.result()
}

// appCPU is, per app, the CPUs its sessions use weighted by how long they
// run: what appd learns from its running sessions.
func (w *workload) appCPU() []float64 {
	cpu, life := make([]float64, len(w.apps)), make([]float64, len(w.apps))
	for _, s := range w.sessions {
		cpu[s.app] += float64(s.cpu) * s.life.Seconds()
		life[s.app] += s.life.Seconds()
	}
	for a := range cpu {
		if life[a] > 0 {
			cpu[a] /= life[a]
		}
	}
	return cpu
}

// advance processes departures, server events and reports up to t, in
// that order on a tie, and returns the time of the next report.
func (r *run) advance(t, nextReport time.Duration) time.Duration {
	for {
		next := min(t, nextReport)
		if r.next < len(r.w.events) {
			next = min(next, r.w.events[r.next].at)
		}
		switch {
		case len(r.ends) > 0 && r.ends[0].at <= next:
			if k := heap.Pop(&r.ends).(departure).k; r.alive[k] {
				r.depart(k)
			}
		case r.next < len(r.w.events) && r.w.events[r.next].at <= next:
			r.event(r.w.events[r.next])
			r.next++
		case nextReport <= t:
			r.report(nextReport)
			nextReport += r.c.Report
		default:
			return nextReport
		}
	}
}

func (r *run) depart(k int32) {
	s := &r.w.sessions[k]
	i := r.placed[k]
	r.alive[k] = false
	r.running[i]--
	r.cpu[i] -= milli(s.cpu)
	list := r.onUser[s.user]
	for j, e := range list {
		if e == k {
			r.onUser[s.user] = append(list[:j], list[j+1:]...)
			break
		}
	}
}

// event applies a server's death (its sessions end at once, the broker
// sees it at once as a link drops), return, drain or resumption.
func (r *run) event(e event) {
	v := &r.view[e.server]
	switch e.kind {
	case die:
		for _, d := range r.ends {
			if r.alive[d.k] && int(r.placed[d.k]) == e.server {
				r.depart(d.k)
			}
		}
		r.dead[e.server], v.Healthy = true, false
	case revive:
		r.dead[e.server], v.Healthy, v.Sessions, v.Load = false, true, r.running[e.server], 0
	case drain:
		v.Draining = true
	case resume:
		v.Draining = false
	}
}

// report refreshes what the policy sees and samples the balance, over
// the servers that are up.
func (r *run) report(at time.Duration) {
	total, capacity, peak, full, over, up := 0, 0, 0.0, 0, 0, 0
	for i := range r.view {
		if r.dead[i] {
			continue
		}
		v := &r.view[i]
		v.Sessions = r.running[i]
		v.Load = float64(r.cpu[i]) / 1000 / r.w.servers[i].cpus
		total += r.running[i]
		capacity += v.Max
		up++
		peak = max(peak, float64(r.running[i])/float64(v.Max))
		if float64(r.running[i]) >= fullAt*float64(v.Max) {
			full++
		}
		if float64(r.cpu[i]) > 1000*r.w.servers[i].cpus+1e-6 {
			over++
		}
	}
	if at < r.c.Warmup || total == 0 {
		return
	}
	mean := float64(total) / float64(capacity)
	r.samples++
	r.sumImbalance += peak / mean
	r.sumUtil += mean
	r.sumFull += float64(full) / float64(up)
	r.sumOver += float64(over) / float64(up)
}

// milli is cpu in thousandths of a CPU. The CPU in use is summed in
// these, exactly, so that a server using exactly its cores (3 sessions at
// 0.5 and 10 at 0.05 on 2 cores) is not counted past them by a sum of
// floats drifting as sessions come and go.
func milli(cpu float32) int64 { return int64(math.Round(float64(cpu) * 1000)) }

// fullAt is the share of its sessions at which a server counts as full
// in Result.Full.
const fullAt = 0.95

// record counts a placement (i >= 0) or a rejection in the measured period.
func (r *run) record(s *session, i int, existing []selection.Placed) {
	if s.at < r.c.Warmup {
		return
	}
	r.res.Requests++
	if i < 0 {
		if r.anyOffers(r.w.apps[s.app].name) {
			r.res.NoRoom++
		} else {
			r.res.NoServer++
		}
		return
	}
	r.res.Placed++
	if r.w.servers[i].region == int(s.client) {
		r.local++
	}
	if len(existing) == 0 {
		return
	}
	r.res.Returning++
	for _, e := range existing {
		if e.Server == r.view[i].Name {
			r.besides++
			break
		}
	}
}

// anyOffers says whether a healthy, not draining server offers app.
func (r *run) anyOffers(app string) bool {
	for i := range r.view {
		v := &r.view[i]
		if v.Healthy && !v.Draining {
			for _, a := range v.Apps {
				if a == app {
					return true
				}
			}
		}
	}
	return false
}

func (r *run) result() Result {
	res := r.res
	if r.samples > 0 {
		res.Imbalance = r.sumImbalance / float64(r.samples)
		res.MeanUtil = r.sumUtil / float64(r.samples)
		res.Full = r.sumFull / float64(r.samples)
		res.CPUOver = r.sumOver / float64(r.samples)
	}
	if res.Placed > 0 {
		res.Local = float64(r.local) / float64(res.Placed)
	}
	if res.Returning > 0 {
		res.Affinity = float64(r.besides) / float64(res.Returning)
	}
	return res
}
