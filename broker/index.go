package broker

import (
	"maps"
	"slices"
	"time"

	"switchyard/control"
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
}

// A placement counts against its server until a session.started confirms
// it or it is pendingTTL older than b.countedAt, the latest time the
// broker counted load at (a placement, a status, an apps list). Expired
// placements are dropped lazily, server by server, when counted or
// confirmed; judged against that one time they go exactly when a sweep of
// every server at each count would have dropped them.

// countAt records now as a time load is counted at. Callers hold b.mu.
func (b *Broker) countAt(now time.Time) {
	if now.After(b.countedAt) {
		b.countedAt = now
	}
}

// load is how many sessions count against a server with index entry o:
// those known plus the placements still pending. Callers hold b.mu and
// have called countAt.
func (b *Broker) load(o *serverSessions) int {
	o.prune(b.countedAt)
	return len(o.sessions) + len(o.pending)
}

// prune drops the placements pendingTTL older than at.
func (o *serverSessions) prune(at time.Time) {
	live := o.pending[:0]
	for _, t := range o.pending {
		if at.Sub(t) < pendingTTL {
			live = append(live, t)
		}
	}
	clear(o.pending[len(live):])
	o.pending = live
}

// onServer returns the index entry of a server, making it. Callers hold
// b.mu.
func (b *Broker) onServer(name string) *serverSessions {
	o := b.byServer[name]
	if o == nil {
		o = &serverSessions{sessions: map[string]*sessionState{}}
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
	if old != nil && old.info.Server == info.Server && old.info.User == info.User {
		old.info, old.seen = info, seen
		return
	}
	if old != nil {
		b.unindex(old)
	}
	s := &sessionState{info: info, seen: seen}
	b.sessions[id] = s
	b.onServer(s.info.Server).sessions[id] = s
	u := b.byUser[s.info.User]
	if u == nil {
		u = map[string]*sessionState{}
		b.byUser[s.info.User] = u
	}
	u[id] = s
}

// dropSession forgets session id, if known. Callers hold b.mu.
func (b *Broker) dropSession(id string) {
	if s := b.sessions[id]; s != nil {
		delete(b.sessions, id)
		b.unindex(s)
	}
}

// unindex removes s from the per-server and per-user indexes. An index
// entry left empty goes, except a configured server's (b.table points at
// it). Callers hold b.mu.
func (b *Broker) unindex(s *sessionState) {
	id, server, user := s.info.ID, s.info.Server, s.info.User
	if o := b.byServer[server]; o != nil {
		delete(o.sessions, id)
		b.forgetIfUnused(server, o)
	}
	if u := b.byUser[user]; u != nil {
		delete(u, id)
		if len(u) == 0 {
			delete(b.byUser, user)
		}
	}
}

// forgetIfUnused drops the index entry o of server when the server is not
// configured and nothing counts against it. Callers hold b.mu.
func (b *Broker) forgetIfUnused(server string, o *serverSessions) {
	if _, configured := b.cluster.Servers[server]; configured || len(o.sessions) > 0 {
		return
	}
	if o.prune(b.countedAt); len(o.pending) == 0 {
		delete(b.byServer, server)
	}
}

// addPending counts a placement on server from now until a
// session.started confirms it or pendingTTL passes. Callers hold b.mu.
func (b *Broker) addPending(server string, now time.Time) {
	o := b.onServer(server)
	o.pending = append(o.pending, now)
}

// confirmPending drops the oldest placement on server not yet confirmed,
// if any: a session.started for it came. Callers hold b.mu.
func (b *Broker) confirmPending(server string) {
	o := b.byServer[server]
	if o == nil {
		return
	}
	if o.prune(b.countedAt); len(o.pending) > 0 {
		o.pending[0] = time.Time{}
		o.pending = o.pending[1:]
	}
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
// b.table is b.serverNames[i] and the i-th server candidates fills in,
// until the next SetCluster. Index entries of servers no longer configured
// go once empty. Callers hold b.mu.
func (b *Broker) rebuildTable() {
	names := slices.Sorted(maps.Keys(b.cluster.Servers))
	table := make([]serverSlot, len(names))
	for i, name := range names {
		table[i] = serverSlot{name: name, spec: b.cluster.Servers[name], st: b.server(name), on: b.onServer(name)}
	}
	for name, o := range b.byServer {
		b.forgetIfUnused(name, o)
	}
	b.table, b.serverNames = table, names // a new slice: Status hands serverNames out
	b.cands = slices.Grow(b.cands[:0], len(table))
}
