package broker

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"switchyard/control"
	"switchyard/safelog"
	"switchyard/selection"
)

// Routes a placement can take, as Decision.Route names them.
const (
	RouteDirect   = control.RouteDirect   // the requesting gateway carries the session to the server
	RouteRelay    = control.RouteRelay    // the requesting gateway carries it through another gateway
	RouteRedirect = control.RouteRedirect // the client is told to use another gateway
	RouteClaim    = control.RouteClaim    // the client attaches to the app pre-launched for it
)

// route is how a session placed on a server reaches its client.
type route struct {
	kind    string // one of the Route constants
	gateway string // the other gateway (redirect target or relay); "" when direct
	reason  string // why, for the log; "" when there is nothing to say
}

// gatewayView is the gateway selection input: every configured gateway,
// sorted by name. The requesting gateway is healthy: it is calling. It
// returns nil when the requesting gateway is not configured (no gateway
// choice: the caller serves directly, as with one gateway). Callers hold
// b.mu.
func (b *Broker) gatewayView(now time.Time, requesting string) []selection.Gateway {
	if _, ok := b.cluster.Gateways[requesting]; !ok {
		return nil
	}
	out := make([]selection.Gateway, 0, len(b.cluster.Gateways))
	for name, spec := range b.cluster.Gateways {
		g := selection.Gateway{Name: name, Region: spec.Region, Reach: spec.Reach, Capacity: spec.Capacity,
			Healthy: name == requesting || b.gatewayHealthy(b.gateways[name], now)}
		if g.Reach == nil {
			g.Reach = b.allServers()
		}
		if st := b.gateways[name]; st != nil {
			g.Sessions = st.report.Sessions
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// gatewayHealthy reports whether a gateway may carry sessions: its link
// is up and its last report at most three intervals old.
func (b *Broker) gatewayHealthy(st *gatewayState, now time.Time) bool {
	return st != nil && st.links > 0 && !st.lastReport.IsZero() && now.Sub(st.lastReport) <= 3*b.interval()
}

// allServers lists every configured server, sorted. Callers hold b.mu.
func (b *Broker) allServers() []string {
	return b.serverNames
}

// eligible reports whether g can take a session to server now.
func eligible(g *selection.Gateway, server string) bool {
	return hasRoom(g) && reachesList(g.Reach, server)
}

// hasRoom reports whether g can take a session now, wherever to.
func hasRoom(g *selection.Gateway) bool {
	return g.Healthy && (g.Capacity <= 0 || g.Sessions < g.Capacity)
}

func reachesList(reach []string, server string) bool {
	for _, s := range reach {
		if s == server {
			return true
		}
	}
	return false
}

// helpers returns the gateways other than the requesting one that may
// carry its sessions: any of them for a hinting gateway, only those with
// an internal listener for a relaying one, and none when the client was
// already redirected (bound) and the gateway hints. Callers hold b.mu.
func (b *Broker) helpers(gws []selection.Gateway, requesting string, bound bool) []selection.Gateway {
	var out []selection.Gateway
	for _, g := range gws {
		if b.helps(g.Name, requesting, bound) {
			out = append(out, g)
		}
	}
	return out
}

// helps reports whether gateway name is one of the helpers of the
// requesting gateway. Callers hold b.mu.
func (b *Broker) helps(name, requesting string, bound bool) bool {
	own := b.cluster.Gateways[requesting]
	switch {
	case name == requesting:
		return false
	case own.relays():
		return b.relaysFor(name, requesting)
	}
	return !bound
}

// relaysFor reports whether gateway name can relay sessions for the
// requesting one: another gateway, with an internal listener. Callers
// hold b.mu.
func (b *Broker) relaysFor(name, requesting string) bool {
	return name != requesting && b.cluster.Gateways[name].Internal != ""
}

// carriers returns what decides which servers carriable keeps for a
// request: the gateways whose reach counts, the requesting one and those
// of its helpers able to take a session now, as key (bit j for gws[j]).
// all is set when they surely carry every server: one of them reaches
// every server, or there is no gateway choice. ok is false when gws is
// too long for a key. Whether a key carries every server depends on the
// config alone: b.carried keeps the answers carriable gave, until
// SetCluster. Callers hold b.mu.
func (b *Broker) carriers(gws []selection.Gateway, requesting string, bound bool) (key uint64, all, ok bool) {
	if gws == nil {
		return 0, true, true
	}
	for j := range gws {
		g := &gws[j]
		if g.Name != requesting && !(b.helps(g.Name, requesting, bound) && hasRoom(g)) {
			continue
		}
		if b.cluster.Gateways[g.Name].Reach == nil {
			return 0, true, true
		}
		if j < 64 {
			key |= 1 << j
		}
	}
	return key, false, len(gws) <= 64
}

// maxCarried bounds b.carried; past it, it starts again.
const maxCarried = 1024

// carries records whether the gateways of key carry every server.
// Callers hold b.mu.
func (b *Broker) carries(key uint64, all bool) {
	if len(b.carried) >= maxCarried {
		clear(b.carried)
	}
	b.carried[key] = all
}

// carriable drops the servers no gateway can carry a session to for this
// request and returns the rest with the names dropped. A server is
// carriable when the requesting gateway reaches it or one of its helpers
// is eligible for it. Callers hold b.mu.
func (b *Broker) carriable(servers []selection.Server, gws []selection.Gateway, requesting string, bound bool) ([]selection.Server, []string) {
	if gws == nil {
		return servers, nil
	}
	own := b.cluster.Gateways[requesting]
	helpers := b.helpers(gws, requesting, bound)
	out := servers[:0]
	var dropped []string
	for i := range servers {
		s := &servers[i]
		ok := own.reaches(s.Name)
		for j := 0; !ok && j < len(helpers); j++ {
			ok = eligible(&helpers[j], s.Name)
		}
		switch {
		case !ok:
			dropped = append(dropped, s.Name)
		case len(out) < i: // filtering in place: move s down
			out = append(out, *s)
		default: // nothing dropped yet: s is where it is
			out = out[:i+1]
		}
	}
	return out, dropped
}

// routeTo decides how a session placed on server reaches the client of
// the requesting gateway (gateway selection, claim 5). The policy picks
// the gateway; a relaying gateway then relays through it, or serves
// itself when it reaches the server; a hinting one redirects the client.
// A bound client (one already redirected) is never redirected again: its
// gateway serves, directly or through a relay. Callers hold b.mu, and
// server passed carriable.
func (b *Broker) routeTo(gws []selection.Gateway, requesting, server, region string, bound bool) (route, error) {
	if gws == nil {
		return route{kind: RouteDirect}, nil
	}
	own := b.cluster.Gateways[requesting]
	pool := b.helpers(gws, requesting, bound)
	for _, g := range gws {
		if g.Name == requesting {
			pool = append(pool, g)
		}
	}
	switch {
	case bound && own.reaches(server):
		return route{kind: RouteDirect, reason: requesting + " serves its redirected client"}, nil
	case bound: // own cannot reach it: choose the relay among helpers
		return b.relayRoute(pool, server, region)
	}
	b.narrowReach(pool, server)
	greq := selection.GatewayRequest{Requesting: requesting, Server: server, ClientRegion: region,
		Near: b.cluster.Near[region], Seed: b.seq}
	d, err := b.cluster.Policy.PickGateway(greq, pool)
	switch {
	case err != nil && own.reaches(server):
		return route{kind: RouteDirect, reason: fmt.Sprintf("%s carries it though %v", requesting, err)}, nil
	case err != nil:
		return route{}, err
	case d.Server == requesting:
		return route{kind: RouteDirect}, nil
	case own.relays() && own.reaches(server):
		return route{kind: RouteDirect, reason: requesting + " (redirect = relay) carries it itself; gateway choice was " + d.Reason}, nil
	case own.relays():
		return route{kind: RouteRelay, gateway: d.Server, reason: d.Reason}, nil
	}
	return route{kind: RouteRedirect, gateway: d.Server, reason: d.Reason}, nil
}

// relayRoute chooses, among pool, the gateway through which a gateway
// that does not reach server relays a session it must carry itself (a
// redirected client's, a resumed one): the policy's choice among those
// eligible (healthy, reaching server, with room), with no requesting
// gateway to favour. The error wraps selection.ErrNoGateway. Callers hold
// b.mu.
func (b *Broker) relayRoute(pool []selection.Gateway, server, region string) (route, error) {
	b.narrowReach(pool, server)
	greq := selection.GatewayRequest{Server: server, ClientRegion: region, Near: b.cluster.Near[region], Seed: b.seq}
	d, err := b.cluster.Policy.PickGateway(greq, pool)
	if err != nil {
		return route{}, err
	}
	return route{kind: RouteRelay, gateway: d.Server, reason: d.Reason}, nil
}

// resumeVia is the gateway through which the requesting gateway attaches
// to a session running on server, or nil: when it reaches server itself,
// is not configured, or no gateway can relay there. A running session is
// never redirected, so whatever its redirect mode the requesting gateway
// carries it as it carries a redirected client (routeTo, bound), relaying
// through any gateway that relaysFor it; gws is gatewayView's for it. The
// client's region is not known here: the requesting gateway's stands in.
// Callers hold b.mu.
func (b *Broker) resumeVia(gws []selection.Gateway, requesting, server string) *control.Via {
	own := b.cluster.Gateways[requesting]
	if gws == nil || own.reaches(server) {
		return nil
	}
	pool := slices.DeleteFunc(slices.Clone(gws), func(g selection.Gateway) bool { return !b.relaysFor(g.Name, requesting) })
	rt, err := b.relayRoute(pool, server, own.Region)
	if err != nil {
		b.logger().Debug("no relay for a resume", "gateway", requesting, safelog.String("server", server), "err", err)
		return nil
	}
	return &control.Via{Gateway: rt.gateway, Addr: b.gatewayInternal(rt.gateway)}
}

// narrowReach gives every gateway in gws that reaches every server (all
// of b.serverNames) the one server asked about for reach, so that
// PickGateway, which asks only about that server, does not search them
// all: its decision and reason are the same. Callers hold b.mu.
func (b *Broker) narrowReach(gws []selection.Gateway, server string) {
	var one []string // not configured: reached by none of them
	if st := b.servers[server]; st != nil && st.row >= 0 {
		one = b.serverNames[st.row : st.row+1 : st.row+1]
	}
	for i := range gws {
		if b.cluster.Gateways[gws[i].Name].Reach == nil {
			gws[i].Reach = one
		}
	}
}

// errNotCarried explains a placement that failed because the servers
// that could run the app cannot be reached.
func errNotCarried(app, requesting string, dropped []string, bound bool) error {
	var tail string
	if len(dropped) > 0 {
		tail = fmt.Sprintf(" (no gateway can carry a session to %s)", namesOf(dropped))
	}
	if bound {
		return fmt.Errorf("%w: no server reachable from gateway %s can run %s now%s",
			selection.ErrNoServer, requesting, app, tail)
	}
	return fmt.Errorf("%w: no gateway can carry %s to a server that could run it%s", selection.ErrNoServer, app, tail)
}

// namesOf lists up to three names, then how many more.
func namesOf(names []string) string {
	if len(names) <= 3 {
		return fmt.Sprint(names)
	}
	return fmt.Sprintf("%v and %d more", names[:3], len(names)-3)
}

// gatewayAddress is where users reach gateway name: the address its
// running process reported, else the config's. A gateway whose config
// changed its address keeps serving the old one until it restarts, and
// users must be sent where it serves. Callers hold b.mu.
func (b *Broker) gatewayAddress(name string) string {
	if g := b.gateways[name]; g != nil && g.report.Address != "" {
		return g.report.Address
	}
	return b.cluster.Gateways[name].Address
}

// gatewayInternal is gateway name's internal listener, as it reported it,
// else the config's (see gatewayAddress). Callers hold b.mu.
func (b *Broker) gatewayInternal(name string) string {
	if g := b.gateways[name]; g != nil && g.report.Internal != "" {
		return g.report.Internal
	}
	return b.cluster.Gateways[name].Internal
}
