package selection

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"
)

// Table is a list of servers kept in a compact form for repeated
// decisions: the broker builds it with NewTable when the config changes
// and updates it in place as reports and placements arrive (SetSessions,
// AddSession, SetLoad, SetHealthy, SetDraining, SetMax, each in constant
// time, at worst rescanning one block of blockSize servers),
// and Policy.PlaceTable decides over it what Policy.Place decides over the
// equivalent []Server: the same server, reason and error.
//
// What a decision scans is one float64 per server, its utilisation (NaN
// when it cannot take a session at all), and one minimum per block of
// blockSize servers, so a decision reads only the blocks that hold a
// server that can still win; the counts and first names of the unhealthy,
// draining and full servers are kept up to date by the setters. Regions
// and app lists are interned: a decision scores each region once and
// tests an app with one bit.
//
// Inside, the servers are kept grouped by region, then by app list
// (server i is at position pos[i]), so that most blocks hold one region
// and one app list, and a decision passes over whole the blocks of a
// region too far to win and those without the app. The order in which a
// decision reads the servers does not change it (see placer).
//
// A Table is not safe for concurrent use while it is being updated;
// concurrent PlaceTable calls with no update running are safe.
type Table struct {
	names []string // by index, in the order NewTable was given
	pos   []int32  // the position of each index

	// By position.
	at   []int32   // the index at each position
	rows []row     // what the Table holds of each server but its name
	util []float64 // utilisation of each eligible server, NaN if not eligible
	hash []uint64  // nameHash of each name
	mins []float64 // least util of each block of blockSize, NaN if none eligible

	// What the servers of each block offer and where they are, whatever
	// their state: the union of their app masks (words a block) and, if
	// there are at most 64 regions, a bit for each region.
	blockApps    []uint64
	blockRegions []uint64
	same         []bool // all the servers of the block share one region and one app list

	// The sessions and session limits summed over the healthy, not
	// draining servers that have a limit: the cluster's mean fill.
	sumSessions, sumMax int

	unique bool    // no two servers share a name
	next   []int32 // if not unique, the next index of the same name, -1 if none

	marks sync.Pool // of *[]uint64, a bit by position, for PlaceTable's affinity

	// Servers by state: the count and a bitset by index of each reason
	// a server cannot take a session (unhealthy, draining, full), as
	// Place tallies them.
	count [nWhy]int
	sets  [nWhy][]uint64

	byName map[string]int // first index of each name

	regions []string // interned regions; row.region indexes it

	// Interned app lists: row.apps indexes lists, and app a of the
	// table's dictionary appIndex is in list k if bit a%64 of
	// masks[k*words+a/64] is set.
	lists    [][]string
	appIndex map[string]int
	masks    []uint64
	words    int
}

// row is what a Table holds of one server besides its name.
type row struct {
	load     float64
	sessions int
	max      int
	region   uint32 // index in Table.regions
	apps     uint32 // index in Table.lists
	healthy  bool
	draining bool
	why      why // eligible, or why Place excludes it: unhealthy, draining or full
}

// blockSize is how many servers share one minimum utilisation in a Table.
const blockSize = 32

// NewTable returns a Table of servers, in their order, which is the order
// of the names in reasons, as for Place (the broker passes servers sorted
// by name). It keeps the servers' names and copies the rest; later changes
// to servers do not reach the Table.
func NewTable(servers []Server) *Table {
	n := len(servers)
	t := &Table{
		names:    make([]string, n),
		pos:      make([]int32, n),
		rows:     make([]row, n),
		util:     make([]float64, n),
		hash:     make([]uint64, n),
		mins:     make([]float64, (n+blockSize-1)/blockSize),
		byName:   make(map[string]int, n),
		appIndex: map[string]int{},
	}
	for w := range t.sets {
		t.sets[w] = make([]uint64, (n+63)/64)
	}
	regionIndex := map[string]uint32{}
	listIndex := map[string]uint32{}
	regions := make([]uint32, n) // by index, until the positions are known
	lists := make([]uint32, n)
	var key []byte
	for i := range servers {
		s := &servers[i]
		// Servers in a row often share a region: no lookup then.
		region := uint32(0)
		if i > 0 && s.Region == servers[i-1].Region {
			region = regions[i-1]
		} else if k, ok := regionIndex[s.Region]; ok {
			region = k
		} else {
			region = uint32(len(t.regions))
			regionIndex[s.Region] = region
			t.regions = append(t.regions, s.Region)
		}
		// App lists are interned by their names, each after its length.
		key = key[:0]
		for _, a := range s.Apps {
			key = binary.AppendUvarint(key, uint64(len(a)))
			key = append(key, a...)
		}
		list, ok := listIndex[string(key)]
		if !ok {
			list = uint32(len(t.lists))
			listIndex[string(key)] = list
			t.lists = append(t.lists, slices.Clone(s.Apps))
		}
		t.names[i] = s.Name
		regions[i], lists[i] = region, list
	}

	for i := n - 1; i >= 0; i-- {
		t.byName[servers[i].Name] = i // the first of a name is set last
	}
	t.unique = len(t.byName) == n
	if !t.unique {
		t.next = make([]int32, n)
		last := make(map[string]int, n)
		for i := n - 1; i >= 0; i-- {
			t.next[i] = -1
			if j, ok := last[servers[i].Name]; ok {
				t.next[i] = int32(j)
			}
			last[servers[i].Name] = i
		}
	}

	// The positions: by region, then app list, then index.
	t.at = make([]int32, n)
	for i := range t.at {
		t.at[i] = int32(i)
	}
	t.at = sortBy(t.at, len(t.lists), lists)
	t.at = sortBy(t.at, len(t.regions), regions)
	for p, i := range t.at {
		t.pos[i] = int32(p)
	}

	// The app dictionary and each list's mask over it.
	for _, l := range t.lists {
		for _, a := range l {
			if _, ok := t.appIndex[a]; !ok {
				t.appIndex[a] = len(t.appIndex)
			}
		}
	}
	t.words = (len(t.appIndex) + 63) / 64
	t.masks = make([]uint64, len(t.lists)*t.words)
	for k, l := range t.lists {
		for _, a := range l {
			x := t.appIndex[a]
			t.masks[k*t.words+x/64] |= 1 << (x % 64)
		}
	}

	t.blockApps = make([]uint64, len(t.mins)*t.words)
	if len(t.regions) <= maxRegions {
		t.blockRegions = make([]uint64, len(t.mins))
	}
	t.same = make([]bool, len(t.mins))
	for p, i := range t.at {
		s := &servers[i]
		r := &t.rows[p]
		*r = row{load: s.Load, sessions: s.Sessions, max: s.Max, region: regions[i], apps: lists[i], healthy: s.Healthy, draining: s.Draining}
		t.hash[p] = nameHash(s.Name)
		b := p / blockSize
		for w := range t.words {
			t.blockApps[b*t.words+w] |= t.masks[int(r.apps)*t.words+w]
		}
		if t.blockRegions != nil {
			t.blockRegions[b] |= 1 << r.region
		}
		r.why = r.state()
		t.count[r.why]++
		ns, nm := r.share()
		t.sumSessions += ns
		t.sumMax += nm
		if r.why != eligible {
			t.sets[r.why][i/64] |= 1 << (i % 64)
			t.util[p] = math.NaN()
		} else {
			t.util[p] = utilisationOf(r.load, r.sessions, r.max)
		}
	}
	for b := range t.mins {
		t.setMin(b)
		lo, hi := b*blockSize, min((b+1)*blockSize, n)
		t.same[b] = t.rows[lo].region == t.rows[hi-1].region && t.rows[lo].apps == t.rows[hi-1].apps // sorted by both
	}
	return t
}

// nextOf is the next index after i of a server named as i, -1 if none.
func (t *Table) nextOf(i int) int {
	if t.next == nil {
		return -1
	}
	return int(t.next[i])
}

// getMarks returns a cleared bitset of a bit per position, from t.marks
// when it has one, so that a decision allocates none in the long run.
func (t *Table) getMarks() *[]uint64 {
	if m, ok := t.marks.Get().(*[]uint64); ok {
		return m
	}
	m := make([]uint64, (len(t.rows)+63)/64)
	return &m
}

// putMarks clears m, from getMarks, and keeps it for the next decision;
// nothing if m is nil.
func (t *Table) putMarks(m *[]uint64) {
	if m == nil {
		return
	}
	clear(*m)
	t.marks.Put(m)
}

// sortBy returns the indexes of in stably sorted by their key in keys, a
// number below k.
func sortBy(in []int32, k int, keys []uint32) []int32 {
	next := make([]int, k+1) // where the next index of each key goes
	for _, i := range in {
		next[keys[i]+1]++
	}
	for j := range k {
		next[j+1] += next[j]
	}
	out := make([]int32, len(in))
	for _, i := range in {
		out[next[keys[i]]] = i
		next[keys[i]]++
	}
	return out
}

// state is why Place excludes the server before scoring it, or eligible.
func (r *row) state() why { return state(r.healthy, r.draining, r.sessions, r.max) }

// Len is the number of servers in t.
func (t *Table) Len() int { return len(t.rows) }

// Index returns the index of the server named name (the first one, should
// two share it) and whether there is one.
func (t *Table) Index(name string) (int, bool) {
	i, ok := t.byName[name]
	return i, ok
}

// Server returns server i as Place would see it. Its Apps is shared with
// the Table and with other servers offering the same list: do not modify
// it.
func (t *Table) Server(i int) Server {
	r := &t.rows[t.pos[i]]
	return Server{
		Name:     t.names[i],
		Region:   t.regions[r.region],
		Healthy:  r.healthy,
		Draining: r.draining,
		Apps:     t.lists[r.apps],
		Sessions: r.sessions,
		Max:      r.max,
		Load:     r.load,
	}
}

// SetSessions sets the sessions of server i: those running as last
// reported plus those placed since.
func (t *Table) SetSessions(i, n int) {
	r := &t.rows[t.pos[i]]
	t.uncount(r)
	r.sessions = n
	t.update(i)
}

// AddSession adds delta (which may be negative) to the sessions of server
// i, as when a session is placed on it or ends.
func (t *Table) AddSession(i, delta int) {
	r := &t.rows[t.pos[i]]
	t.uncount(r)
	r.sessions += delta
	t.update(i)
}

// SetLoad sets the CPU load per CPU that server i reported.
func (t *Table) SetLoad(i int, load float64) {
	r := &t.rows[t.pos[i]]
	t.uncount(r)
	r.load = load
	t.update(i)
}

// SetHealthy sets whether server i is healthy (link up, reports fresh).
func (t *Table) SetHealthy(i int, healthy bool) {
	r := &t.rows[t.pos[i]]
	t.uncount(r)
	r.healthy = healthy
	t.update(i)
}

// SetDraining sets whether server i is draining (takes no new session).
func (t *Table) SetDraining(i int, draining bool) {
	r := &t.rows[t.pos[i]]
	t.uncount(r)
	r.draining = draining
	t.update(i)
}

// SetMax sets the session limit of server i, 0 for none.
func (t *Table) SetMax(i, max int) {
	r := &t.rows[t.pos[i]]
	t.uncount(r)
	r.max = max
	t.update(i)
}

// uncount takes r, about to change, out of the sums; update puts it
// back.
func (t *Table) uncount(r *row) {
	s, m := r.share()
	t.sumSessions -= s
	t.sumMax -= m
}

// share is what r adds to the cluster's mean fill: its sessions and
// limit if it is healthy, not draining and has a limit, else nothing.
func (r *row) share() (sessions, max int) { return shareOf(r.healthy, r.draining, r.sessions, r.max) }

// update recomputes what follows from server i's row: its state,
// utilisation and block minimum.
func (t *Table) update(i int) {
	p := int(t.pos[i])
	r := &t.rows[p]
	s, m := r.share()
	t.sumSessions += s
	t.sumMax += m
	if w := r.state(); w != r.why {
		if r.why != eligible {
			t.sets[r.why][i/64] &^= 1 << (i % 64)
		}
		if w != eligible {
			t.sets[w][i/64] |= 1 << (i % 64)
		}
		t.count[r.why]--
		t.count[w]++
		r.why = w
	}
	old, u := t.util[p], math.NaN()
	if r.why == eligible {
		u = utilisationOf(r.load, r.sessions, r.max)
	}
	t.util[p] = u
	b := p / blockSize
	switch m := t.mins[b]; {
	case m != m || u < m:
		t.mins[b] = u // the block's only eligible server (or none), or its new least
	case old == m && u != m:
		t.setMin(b) // the least has gone up or left
	}
}

// setMin recomputes the least utilisation of block b.
func (t *Table) setMin(b int) {
	m := math.NaN()
	for _, u := range t.util[b*blockSize : min((b+1)*blockSize, len(t.util))] {
		if u < m || m != m {
			m = u
		}
	}
	t.mins[b] = m
}
