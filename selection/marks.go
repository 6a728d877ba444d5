package selection

import "iter"

// Marks is where one user's running sessions are, for affinity: how many
// run on each server, and how many of each app, by the server's index in
// a Table (its place in the list given to NewTable). A caller that places
// often (the broker) keeps one per user up to date as sessions start and
// end (Add) and passes it in Request.Marks, so that PlaceTable reads the
// user's servers, each once and without looking up a name, in time
// proportional to how many servers they use, whatever their session
// count. The zero Marks is empty and ready to use.
//
// Marks are bound to the Table whose indexes they hold: when the caller
// builds a new Table whose indexes differ, it builds the Marks anew too.
// A server that appears twice in a Table (two servers of one name) is
// marked at each index Place would give affinity to, that is every
// index of that name.
type Marks struct {
	any  counts             // sessions by server, whatever their app
	apps map[string]*counts // sessions by app, then server
}

// counts is how many sessions run on each server: the servers with at
// least one, in no particular order, and where each is in that list.
type counts struct {
	servers []int32         // each server with sessions, once
	n       []int32         // sessions on servers[k]
	at      map[int32]int32 // k of each server in servers
}

// Add counts delta more sessions of app on the server of index server
// (delta is negative when sessions end). A server whose count reaches 0
// or less is no longer marked.
func (m *Marks) Add(server int, app string, delta int) {
	if delta == 0 || server < 0 {
		return
	}
	m.any.add(int32(server), delta)
	c := m.apps[app]
	if c == nil {
		if delta < 0 {
			return
		}
		if m.apps == nil {
			m.apps = map[string]*counts{}
		}
		c = &counts{}
		m.apps[app] = c
	}
	if c.add(int32(server), delta); len(c.servers) == 0 {
		delete(m.apps, app)
	}
}

// Len is how many servers run at least one of the user's sessions.
func (m *Marks) Len() int {
	if m == nil {
		return 0
	}
	return len(m.any.servers)
}

// All yields each server and app the user runs a session of, each pair
// once, in no particular order.
func (m *Marks) All() iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		if m == nil {
			return
		}
		for app, c := range m.apps {
			for _, s := range c.servers {
				if !yield(int(s), app) {
					return
				}
			}
		}
	}
}

// serversFor lists the servers on which a session that attracts one of app
// under affinity a runs, each once; nil if none.
func (m *Marks) serversFor(a Affinity, app string) []int32 {
	switch {
	case m == nil || a == AffinityNone:
		return nil
	case a == AffinityUserApp:
		if c := m.apps[app]; c != nil {
			return c.servers
		}
		return nil
	}
	return m.any.servers
}

// add adds delta to the count of server s, dropping s from the list
// once its count is 0 or less.
func (c *counts) add(s int32, delta int) {
	k, ok := c.at[s]
	if !ok {
		if delta < 0 {
			return
		}
		if c.at == nil {
			c.at = map[int32]int32{}
		}
		k = int32(len(c.servers))
		c.at[s] = k
		c.servers = append(c.servers, s)
		c.n = append(c.n, 0)
	}
	if c.n[k] += int32(delta); c.n[k] > 0 {
		return
	}
	// Move the last server into s's place.
	last := int32(len(c.servers) - 1)
	c.servers[k], c.n[k] = c.servers[last], c.n[last]
	c.at[c.servers[k]] = k
	c.servers, c.n = c.servers[:last], c.n[:last]
	delete(c.at, s)
}
