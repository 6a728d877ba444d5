package selection

import (
	"math/bits"
	"slices"
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

	// Whether scanSame may read the blocks of Table.same, but for the
	// blocks listed in mine, which hold a server of the user's.
	fast  bool
	mine  [16]int
	nMine int
}

// locality is the locality of region k of the Table.
func (pl *tablePlacer) locality(k uint32) float64 {
	if int(k) < len(pl.locs) {
		return pl.locs[k]
	}
	return pl.loc.score(pl.t.regions[k])
}

// markMine lists in pl.mine the blocks holding a server on which the user
// has a session, or clears pl.fast if it cannot: when names repeat, or
// there are too many such blocks.
func (pl *tablePlacer) markMine() {
	t := pl.t
	if pl.affBound == 0 {
		return
	}
	if !t.unique {
		pl.fast = false
		return
	}
	for _, e := range pl.req.Existing {
		i, ok := t.byName[e.Server]
		if !ok {
			continue
		}
		b := int(t.pos[i]) / blockSize
		if slices.Contains(pl.mine[:pl.nMine], b) {
			continue
		}
		if pl.nMine == len(pl.mine) {
			pl.fast = false
			return
		}
		pl.mine[pl.nMine] = b
		pl.nMine++
	}
}

// blockCut is the cut for block b: that of the best locality among its
// regions, or the cut for any locality when the Table does not know them.
// A higher locality has a higher cut, since weights are not negative.
func (pl *tablePlacer) blockCut(b int) float64 {
	if pl.t.blockRegions == nil || pl.cutStep < 0 {
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
	pl := tablePlacer{t: t, word: app / 64, bit: 1 << (app % 64), fast: true}
	pl.init(p, req)
	pl.markMine()
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
		if pl.fast && t.same[b] && !slices.Contains(pl.mine[:pl.nMine], b) {
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
	return Decision{Server: s.Name, Reason: placeReason(&s, req, p, pl.w, pl.bestParts, n, &pl.ex)}, nil
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
	var name string
	if pl.affBound > 0 {
		name = t.names[i]
	}
	sp := pl.score(loc, u, name)
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
