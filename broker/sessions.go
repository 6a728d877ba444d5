package broker

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"

	"switchyard/control"
	"switchyard/selection"
)

// Load levels of the availability hint: the mean over the servers that
// could take an app of max(reported load, sessions/capacity).
const (
	lowLoad  = 0.5 // below: "low load"
	busyLoad = 0.8 // from here: "busy"; between: "moderate load"
)

// UserSessions returns user's sessions on every server, attached and
// detached, most recently started first, each with its server's internal
// address in Addr so that gateway, the one asking, can attach to it; for
// a session on a server that gateway does not reach, Via names a healthy
// gateway with room that reaches it and relays (resumeVia), if there is
// one. Only sessions whose User is user are returned; an empty user has
// none. The caller must have authenticated user: gateways fill it from
// the SSH identity. A session whose server is not healthy is listed with
// State control.StateUnreachable: it cannot be resumed now, and whether
// it still runs is unknown.
func (b *Broker) UserSessions(user, gateway string) control.SessionList {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	list := control.SessionList{Sessions: []control.SessionInfo{}}
	if user == "" {
		return list
	}
	var (
		gws  []selection.Gateway     // gatewayView, made on first need
		vias map[string]*control.Via // resumeVia by server
	)
	own := b.cluster.Gateways[gateway]
	now := b.now()
	for _, s := range b.byUser[user] {
		info := s.info
		info.Addr = b.cluster.Servers[info.Server].Addr
		if !b.healthy(b.servers[info.Server], now) {
			info.State = control.StateUnreachable
		}
		if !own.reaches(info.Server) {
			via, ok := vias[info.Server]
			if !ok {
				if vias == nil {
					gws, vias = b.gatewayView(now, gateway), map[string]*control.Via{}
				}
				via = b.resumeVia(gws, gateway, info.Server)
				vias[info.Server] = via
			}
			info.Via = via
		}
		list.Sessions = append(list.Sessions, info)
	}
	slices.SortFunc(list.Sessions, func(x, y control.SessionInfo) int {
		if c := y.Started.Compare(x.Started); c != 0 {
			return c
		}
		return cmp.Compare(x.ID, y.ID)
	})
	return list
}

// UserApps returns the apps user may run, sorted by name, each with its
// configured description and a hint of availability from the broker's
// picture: how many healthy, non-draining servers offering it have room,
// and how loaded they are ("3 servers, low load", "1 server, busy",
// "unavailable").
func (b *Broker) UserApps(user string) control.AppList {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	now := b.now()
	b.countAt(now)
	list := control.AppList{Apps: []control.AppInfo{}}
	c := b.cluster
	for app := range c.Apps {
		if user == "" || c.Allowed == nil || !c.Allowed(user, app) {
			continue
		}
		n, level := b.availability(app, now)
		info := control.AppInfo{Name: app, Description: c.Descriptions[app], Available: n > 0, Hint: hint(n, level)}
		list.Apps = append(list.Apps, info)
	}
	sort.Slice(list.Apps, func(i, j int) bool { return list.Apps[i].Name < list.Apps[j].Name })
	return list
}

// availability counts the servers that could take app now and returns
// their mean load level. Callers hold b.mu and have called countAt.
func (b *Broker) availability(app string, now time.Time) (n int, level float64) {
	var sum float64
	for i := range b.table {
		t := &b.table[i]
		spec, st := t.spec, t.st
		if !slices.Contains(spec.Apps, app) || !b.healthy(st, now) || drainingOf(spec, st) {
			continue
		}
		lvl := loadOf(st)
		if spec.MaxSessions > 0 {
			load := b.load(t.on)
			if load >= spec.MaxSessions {
				continue // full
			}
			lvl = max(lvl, float64(load)/float64(spec.MaxSessions))
		}
		n++
		sum += lvl
	}
	if n == 0 {
		return 0, 0
	}
	return n, sum / float64(n)
}

// hint words the availability of an app on n servers at a load level.
func hint(n int, level float64) string {
	if n == 0 {
		return "unavailable"
	}
	servers := "servers"
	if n == 1 {
		servers = "server"
	}
	word := "moderate load"
	switch {
	case level < lowLoad:
		word = "low load"
	case level >= busyLoad:
		word = "busy"
	}
	return fmt.Sprintf("%d %s, %s", n, servers, word)
}
