package selection

import (
	"math/bits"
)

// tablePlacer is the state of one PlaceTable call: a placer reading a
// Table.
type tablePlacer struct {
	placer
	t    *Table
	locs []float64 // locality of each region, if there are few
	word int       // where the requested app's bit is in an app list's mask
	bit  uint64
	near uint64 // the regions of locality above 0, if Table.blockRegions is set

	// A bit by position for each server on which the user runs a
	// session that attracts this one; nil if there is none.
	marks []uint64
	held  *[]uint64 // marks, from Table.getMarks
}

// locality is the locality of region k of the Table.
func (pl *tablePlacer) locality(k uint32) float64 {
	if int(k) < len(pl.locs) {
		return pl.locs[k]
	}
	return pl.loc.score(pl.t.regions[k])
}

// markMine marks in pl.marks, once per decision, the position of each
// server on which the user runs a session that attracts this one, so that
// a candidate's affinity is one bit whatever the user's session count; a
// run of sessions on one server costs one lookup. It sets the affinity
// bound if there is such a session, as listPlacer.markMine does. Callers
// give pl.marks back with Table.putMarks.
func (pl *tablePlacer) markMine() {
	if pl.req.Marks != nil {
		pl.markFrom(pl.req.Marks)
		return
	}
	if pl.p.Affinity == AffinityNone || len(pl.req.Existing) == 0 {
		return
	}
	if len(pl.req.Existing) <= fewSessions {
		pl.markEach()
		return
	}
	var seen [seenSlots]nameKey // the last name looked up in each slot
	have, sameApp, app := false, pl.p.Affinity == AffinityUserApp, pl.req.App
	for k := range pl.req.Existing {
		e := &pl.req.Existing[k]
		if sameApp && !equalShort(e.App, app) {
			continue
		}
		have = true
		key := keyOf(e.Server)
		slot := &seen[key.hash()>>(64-seenBits)]
		if key.same(slot) {
			continue
		}
		*slot = key
		pl.mark(e.Server)
	}
	if have {
		pl.affBound = pl.w.Affinity
	}
}

// markFrom is markMine for a user whose sessions m counts: one bit per
// server of theirs, whatever their session count, and no name looked up.
func (pl *tablePlacer) markFrom(m *Marks) {
	servers := m.serversFor(pl.p.Affinity, pl.req.App)
	if len(servers) == 0 {
		return
	}
	pl.affBound = pl.w.Affinity
	pl.held = pl.t.getMarks()
	pl.marks = *pl.held
	pos := pl.t.pos
	for _, i := range servers {
		if int(i) < len(pos) {
			p := pos[i]
			pl.marks[p/64] |= 1 << (p % 64)
		}
	}
}

// fewSessions is how many sessions markMine looks up one by one, without
// remembering the names it has seen.
const fewSessions = 16

// markEach is markMine for a user with few sessions.
func (pl *tablePlacer) markEach() {
	for k := range pl.req.Existing {
		if e := &pl.req.Existing[k]; pl.attracts(e) {
			pl.affBound = pl.w.Affinity
			pl.mark(e.Server)
		}
	}
}

// mark marks the positions of the servers named name, if any.
func (pl *tablePlacer) mark(name string) {
	t := pl.t
	i, ok := t.byName[name]
	if !ok {
		return
	}
	if pl.marks == nil {
		pl.held = t.getMarks()
		pl.marks = *pl.held
	}
	for ; i >= 0; i = t.nextOf(i) {
		p := t.pos[i]
		pl.marks[p/64] |= 1 << (p % 64)
	}
}

// seenSlots is how many names markMine remembers having looked up, by
// their quickHash: 2^seenBits.
const (
	seenBits  = 8
	seenSlots = 1 << seenBits
)

// nameKey is a name as markMine remembers it: its first and last eight
// bytes (all of them, packed, if it is shorter than eight) and the name,
// so that names of up to 16 bytes compare as three words.
type nameKey struct {
	first, last uint64
	s           string
}

// keyOf is the nameKey of s.
func keyOf(s string) nameKey {
	k := nameKey{s: s}
	if n := len(s); n >= 8 {
		k.first, k.last = le64(s), le64(s[n-8:])
	} else {
		for i := range n {
			k.first = k.first<<8 | uint64(s[i])
		}
	}
	return k
}

// le64 is the first eight bytes of s as a little-endian word (the
// compiler makes it one load).
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hash is a hash of the name of k, from its key alone.
func (k *nameKey) hash() uint64 {
	return mix(k.first ^ bits.RotateLeft64(k.last, 29) ^ uint64(len(k.s)))
}

// same says whether k and o are keys of the same name.
func (k *nameKey) same(o *nameKey) bool {
	return k.first == o.first && k.last == o.last && len(k.s) == len(o.s) && (len(k.s) <= 16 || k.s == o.s)
}

// mineIn says whether block b holds a server marked by markMine.
func (pl *tablePlacer) mineIn(b int) bool {
	if pl.marks == nil {
		return false
	}
	lo := b * blockSize
	return pl.marks[lo/64]>>(lo%64)&(1<<blockSize-1) != 0
}

// affinity is 1 if position p is marked by markMine, else 0.
func (pl *tablePlacer) affinity(p int) float64 {
	if pl.marks != nil && pl.marks[p/64]&(1<<(p%64)) != 0 {
		return 1
	}
	return 0
}

// blockCut is the cut for block b: that of the best locality among its
// regions, or the cut for any locality when the Table does not know them.
// A higher locality has a higher cut, since weights are not negative.
func (pl *tablePlacer) blockCut(b int) float64 {
	if pl.t.blockRegions == nil {
		return pl.cut
	}
	loc := 0.0
	for x := pl.t.blockRegions[b] & pl.near; x != 0; x &= x - 1 {
		loc = max(loc, pl.locs[bits.TrailingZeros64(x)])
	}
	return pl.cutFor(loc)
}

// maxRegions is how many regions PlaceTable scores up front and Table
// keeps a bit of for each block; with more, PlaceTable scores a server's
// region when it considers the server, and skips blocks by utilisation
// and apps alone.
const maxRegions = 64

// PlaceTable chooses the server for req among t's servers: the decision
// (server, reason, error) is the one Place makes over the equivalent
// []Server (see Table.Server), faster. PlaceTable does not modify t and
// allocates only the reason string.
func (p Policy) PlaceTable(req Request, t *Table) (Decision, error) {
	n := len(t.rows)
	app, ok := t.appIndex[req.App]
	if !ok {
		return Decision{}, t.noServer(req.App, -1)
	}
	pl := tablePlacer{t: t, word: app / 64, bit: 1 << (app % 64)}
	pl.init(p, req, t.sumSessions, t.sumMax)
	pl.markMine()
	defer t.putMarks(pl.held)
	var locs [maxRegions]float64
	if len(t.regions) <= len(locs) {
		pl.locs = locs[:len(t.regions)]
		for k, r := range t.regions {
			pl.locs[k] = pl.loc.score(r)
			if pl.locs[k] > 0 {
				pl.near |= 1 << k
			}
		}
	}

	// A sample, as Place does, then every position. A server whose
	// utilisation is above the cut could not win, nor could a block whose
	// least utilisation is above the cut for its best locality, nor one
	// where no server offers the app. Skipping them skips only servers
	// that consider would pass over.
	util := t.util
	for p := 0; n >= 8*sampled && p < n; p += n / sampled {
		if util[p] == util[p] {
			pl.consider(p)
		}
	}
	cut := pl.cut
	for b, m := range t.mins {
		if !(m <= cut) || t.blockApps[b*t.words+pl.word]&pl.bit == 0 || m > pl.blockCut(b) {
			continue
		}
		lo, hi := b*blockSize, min((b+1)*blockSize, n)
		if t.same[b] && !pl.mineIn(b) {
			pl.scanSame(lo, hi)
			cut = pl.cut
			continue
		}
		for j, u := range util[lo:hi] {
			if u <= cut {
				pl.consider(lo + j)
				cut = pl.cut
			}
		}
	}
	if pl.best < 0 {
		return Decision{}, t.noServer(req.App, app)
	}

	for _, w := range [...]why{unhealthy, draining, full} {
		k := t.count[w]
		pl.ex.n[w] = k
		for j, x := 0, 0; j < len(t.sets[w]) && x < min(k, namesKept); j++ {
			for word := t.sets[w][j]; word != 0 && x < namesKept; word &= word - 1 {
				pl.ex.names[w][x] = t.names[j*64+bits.TrailingZeros64(word)]
				x++
			}
		}
	}
	s := t.Server(pl.best)
	return Decision{Server: s.Name, Reason: placeReason(&s, req, p, &pl.placer, n)}, nil
}

// consider offers the server at position p, which is healthy, not
// draining and has room, to the placer if it offers the app and may still
// win.
func (pl *tablePlacer) consider(p int) {
	t := pl.t
	r := &t.rows[p]
	loc := pl.locality(r.region)
	u := t.util[p]
	if u > pl.cutFor(loc) || t.masks[int(r.apps)*t.words+pl.word]&pl.bit == 0 {
		return
	}
	i := int(t.at[p])
	sp := pl.score(loc, u, pl.affinity(p))
	var h uint64
	switch pl.rank(sp.total, r.sessions) {
	case -1:
		return
	case 0:
		if h = tieHash(t.hash[p], pl.key); !pl.beats(i, h) {
			return
		}
	default:
		h = tieHash(t.hash[p], pl.key)
	}
	pl.take(i, sp, r.sessions, h)
}

// scanSame is consider for each server at positions lo to hi: servers
// of one region and one app list, which offers the app, and on none of
// which the user has a session. So the region is scored once, the app
// not tested, and affinity is 0; and a run of servers in the same state
// as the best (as in an idle cluster) costs a hash each.
func (pl *tablePlacer) scanSame(lo, hi int) {
	t := pl.t
	loc := pl.locality(t.rows[lo].region)
	cut := min(pl.cut, pl.cutFor(loc))
	util, hash, at, rows, key := t.util[lo:hi], t.hash[lo:hi], t.at[lo:hi], t.rows[lo:hi], pl.key
	for j := 0; j < len(util); j++ {
		u := util[j]
		if !(u <= cut) {
			continue
		}
		sp := pl.scoreOf(loc, u)
		sessions := rows[j].sessions
		switch pl.rank(sp.total, sessions) {
		case -1:
			continue
		case 1:
			pl.take(int(at[j]), sp, sessions, tieHash(hash[j], key))
			cut = min(pl.cut, pl.cutFor(loc))
			continue
		}
		// A tie on score and sessions, and so is each server that
		// follows with the same utilisation and sessions, to the end of
		// the run: the tie hash alone decides among them.
		for ; j < len(util) && util[j] == u && rows[j].sessions == sessions; j++ {
			if h := tieHash(hash[j], key); pl.beats(int(at[j]), h) {
				pl.take(int(at[j]), sp, sessions, h)
			}
		}
		j-- // the first server after the run, if any, is read next
	}
}

// noServer is the error of a failed PlaceTable; app is the index of the
// app in t's dictionary, -1 if no server offers it.
func (t *Table) noServer(name string, app int) error {
	return noServer(name, len(t.rows), func(i int) (why, string) {
		r := &t.rows[t.pos[i]]
		offersApp := app >= 0 && t.masks[int(r.apps)*t.words+app/64]&(1<<(app%64)) != 0
		return failure(offersApp, r.healthy, r.draining), t.names[i]
	})
}
