package broker

import (
	"maps"
	"slices"
	"time"

	"switchyard/control"
	"switchyard/selection"
)

// The broker's sessions are kept in b.sessions (by id) and indexed by
// server (b.byServer) and by user (b.byUser), so that a placement reads
// only the user's sessions and each server's count, and a server report
// touches only that server's sessions. Every write of b.sessions goes
// through putSession or dropSession, which keep the indexes with it.

// serverSessions is what counts against one server: the sessions known to
// run there and the placements made for it that no session.started has
// confirmed yet.
type serverSessions struct {
	sessions map[string]*sessionState // by id
	pending  []time.Time              // when each placement was made, oldest first
	row      int                      // index in b.table and b.tab; -1 when not configured
}

// A placement counts against its server until a session.started confirms
// it or it is pendingTTL older than b.countedAt, the latest time the
// broker counted load at (a placement, a status, an apps list). countAt
// drops the placements that expire, found through b.placements, so that
// every server's count, and b.tab, is always as of b.countedAt.

// countAt records now as a time load is counted at, and drops the
// placements pendingTTL older. Callers hold b.mu.
func (b *Broker) countAt(now time.Time) {
	if !now.After(b.countedAt) {
		return
	}
	b.countedAt = now
	for p, ok := b.placements.front(); ok && now.Sub(p.at) >= pendingTTL; p, ok = b.placements.front() {
		b.placements.pop()
		if o := b.byServer[p.server]; o != nil {
			b.prune(p.server, o)
		}
	}
}

// load is how many sessions count against a server with index entry o:
// those known plus the placements still pending. Callers hold b.mu and
// have called countAt.
func (b *Broker) load(o *serverSessions) int {
	return len(o.sessions) + len(o.pending)
}

// prune drops the placements on server (index entry o) pendingTTL older
// than b.countedAt. They are the oldest. Callers hold b.mu.
func (b *Broker) prune(server string, o *serverSessions) {
	k := 0
	for k < len(o.pending) && b.countedAt.Sub(o.pending[k]) >= pendingTTL {
		k++
	}
	if k == 0 {
		return
	}
	clear(o.pending[:k])
	o.pending = o.pending[k:]
	b.recount(o)
	b.forgetIfUnused(server, o)
}

// onServer returns the index entry of a server, making it. Callers hold
// b.mu.
func (b *Broker) onServer(name string) *serverSessions {
	o := b.byServer[name]
	if o == nil {
		o = &serverSessions{sessions: map[string]*sessionState{}, row: -1}
		b.byServer[name] = o
	}
	return o
}

// putSession records a session seen at seen, replacing any of the same
// id. One that stays on its server with its user is updated in place: a
// server report of unchanged sessions allocates nothing and leaves the
// indexes alone. Callers hold b.mu.
func (b *Broker) putSession(info control.SessionInfo, seen time.Time) {
	id := info.ID
	old := b.sessions[id]
	if b.Store != nil && (old == nil || !sameSession(old.info, info)) {
		b.queueSession(id, info)
	}
	if old != nil && old.info.Server == info.Server && old.info.User == info.User {
		if old.info.App != info.App {
			b.countPlaced(old.info, -1)
			b.countPlaced(info, +1)
		}
		old.info, old.seen, old.restored = info, seen, false
		return
	}
	if old != nil {
		b.unindex(old)
	} else {
		b.placedSession(info)
	}
	s := &sessionState{info: info, seen: seen, since: seen}
	b.sessions[id] = s
	o := b.onServer(s.info.Server)
	o.sessions[id] = s
	b.recount(o)
	u := b.byUser[s.info.User]
	if u == nil {
		u = map[string]*sessionState{}
		b.byUser[s.info.User] = u
	}
	u[id] = s
	b.countPlaced(s.info, +1)
}

// countPlaced adds d to the count of the user's sessions of info's app on
// its server in b.userMarks, if the server is configured, forgetting
// users left with none. Callers hold b.mu.
func (b *Broker) countPlaced(info control.SessionInfo, d int) {
	o := b.byServer[info.Server]
	if o == nil || o.row < 0 {
		return
	}
	m := b.userMarks[info.User]
	if m == nil {
		m = &selection.Marks{}
		b.userMarks[info.User] = m
	}
	if m.Add(o.row, info.App, d); m.Len() == 0 {
		delete(b.userMarks, info.User)
	}
}

// recountPlaced counts every session anew in b.userMarks, by the rows
// of a new b.table. Callers hold b.mu.
func (b *Broker) recountPlaced() {
	clear(b.userMarks)
	for _, s := range b.sessions {
		b.countPlaced(s.info, +1)
	}
}

// dropSession forgets session id, if known. Callers hold b.mu.
func (b *Broker) dropSession(id string) {
	if s := b.sessions[id]; s != nil {
		delete(b.sessions, id)
		b.unindex(s)
		b.queueDrop(id)
	}
}

// unindex removes s from the per-server and per-user indexes. An index
// entry left empty goes, except a configured server's (b.table points at
// it). Callers hold b.mu.
func (b *Broker) unindex(s *sessionState) {
	id, server, user := s.info.ID, s.info.Server, s.info.User
	if o := b.byServer[server]; o != nil {
		delete(o.sessions, id)
		b.recount(o)
		b.forgetIfUnused(server, o)
	}
	if u := b.byUser[user]; u != nil {
		if u[id] == s {
			b.countPlaced(s.info, -1)
		}
		delete(u, id)
		if len(u) == 0 {
			delete(b.byUser, user)
		}
	}
}

// forgetIfUnused drops the index entry o of server when the server is not
// configured and nothing counts against it. Callers hold b.mu.
func (b *Broker) forgetIfUnused(server string, o *serverSessions) {
	if _, configured := b.cluster.Servers[server]; configured || len(o.sessions) > 0 || len(o.pending) > 0 {
		return
	}
	delete(b.byServer, server)
}

// addPending counts a placement on server from now until a
// session.started confirms it or pendingTTL passes. Callers hold b.mu.
func (b *Broker) addPending(server string, now time.Time) {
	if now.Before(b.countedAt) {
		now = b.countedAt // should the clock go back: keep b.placements in order
	}
	o := b.onServer(server)
	o.pending = append(o.pending, now)
	b.placements.push(placementAt{server: server, at: now})
	b.recount(o)
}

// placedBy reports whether a placement on server still pending was made
// before t. Callers hold b.mu.
func (b *Broker) placedBy(server string, t time.Time) bool {
	o := b.byServer[server]
	return o != nil && len(o.pending) > 0 && o.pending[0].Before(t)
}

// confirmPending drops the oldest placement on server not yet confirmed,
// if any: a session.started for it came. Its entry in b.placements stays
// and finds nothing to drop when it expires. Callers hold b.mu.
func (b *Broker) confirmPending(server string) {
	o := b.byServer[server]
	if o == nil || len(o.pending) == 0 {
		return
	}
	o.pending[0] = time.Time{}
	o.pending = o.pending[1:]
	b.recount(o)
}

// serverSlot is one configured server in b.table: its spec and pointers to
// its state, so that a placement reads each server without a map lookup.
type serverSlot struct {
	name string
	spec ServerSpec
	st   *serverState
	on   *serverSessions
}

// rebuildTable lays out the configured servers sorted by name: server i of
// b.table is b.serverNames[i], the i-th server candidates fills in and
// server i of b.tab, until the next SetCluster. Index entries of servers
// no longer configured go once empty. Callers hold b.mu.
func (b *Broker) rebuildTable() {
	for _, st := range b.servers {
		st.row = -1
	}
	for _, o := range b.byServer {
		o.row = -1
	}
	names := slices.Sorted(maps.Keys(b.cluster.Servers))
	table := make([]serverSlot, len(names))
	for i, name := range names {
		table[i] = serverSlot{name: name, spec: b.cluster.Servers[name], st: b.server(name), on: b.onServer(name)}
		table[i].st.row, table[i].on.row = i, i
	}
	for name, o := range b.byServer {
		b.forgetIfUnused(name, o)
	}
	b.table, b.serverNames = table, names // a new slice: Status hands serverNames out
	b.recountPlaced()
	b.newTab()
}
