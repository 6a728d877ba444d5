package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"switchyard/brokerstate"
	"switchyard/control"
	"switchyard/safelog"
	"switchyard/selection"
)

// keptDecisions is how many recent decisions the status view shows.
const keptDecisions = 50

// maxReason caps a decision's reason in the log; maxAppInReason caps the
// excerpt of an unknown app's name in the refusal.
const (
	maxReason      = 1024
	maxAppInReason = 64
)

// Decision is one placement the broker made (or refused), for the log and
// the status view.
type Decision struct {
	Time    time.Time `json:"time"`
	User    string    `json:"user"`
	App     string    `json:"app"`
	Client  string    `json:"client"`
	Gateway string    `json:"gateway"`
	Server  string    `json:"server,omitempty"`
	Route   string    `json:"route,omitempty"`   // one of the Route constants; "" when refused
	Target  string    `json:"target,omitempty"`  // the other gateway of a redirect or relay
	Session string    `json:"session,omitempty"` // pre-launched or claimed session
	PID     int       `json:"pid,omitempty"`     // its pid
	Reason  string    `json:"reason"`
	Micros  int64     `json:"micros"` // time taken to decide (without pre-launching)
}

// outcome is a decision in the making: the answer, and what is left to do
// once b.mu is released.
type outcome struct {
	pl        control.Placement
	err       error
	route     route
	note      string         // said of a reservation taken, for the reason
	prelaunch bool           // pre-launch the app for pl.Redirect
	reserve   *reservation   // the redirect's reservation, to keep before answering
	stale     []*reservation // reservations whose pre-launched app must end
}

// Place chooses a server for a new session and the gateway that carries
// it. Errors are control.RemoteError with a code the gateway maps to a
// line for the user. When the client holds a reservation (it was
// redirected here), Place confirms it or re-decides, and never redirects
// it again; when it redirects a client with a terminal, it first
// pre-launches the app on the chosen server, outside b.mu.
func (b *Broker) Place(ctx context.Context, req control.PlaceRequest) (control.Placement, error) {
	start := time.Now()
	lead := b.leadership()
	leading := lead.Leading()
	leader, term := lead.Leader()
	b.mu.Lock()
	b.init()
	now := b.now()
	var o outcome
	switch {
	case leading && b.ready(lead, term):
		o = b.decide(req, now)
	case leading:
		// Elected, but the kept drains and reservations are still being
		// read: the node tries again shortly.
		o.err = control.NewError(control.CodeNotLeader, "")
	default:
		o.err = control.NewError(control.CodeNotLeader, leader) // the node asks the leader instead
	}
	hold := b.reservationTime()
	took := time.Since(start)
	b.mu.Unlock()
	for _, r := range o.stale {
		go b.release(context.WithoutCancel(ctx), r)
	}
	if o.prelaunch {
		b.prelaunch(ctx, req, &o, hold)
	}
	if o.reserve != nil {
		b.keepReservation(ctx, &o)
	}
	b.record(req, &o, now, took)
	return o.pl, o.err
}

// record logs a decision, counts it and keeps it for the status view.
func (b *Broker) record(req control.PlaceRequest, o *outcome, now time.Time, took time.Duration) {
	d := Decision{Time: now, User: safelog.Text(req.User, 0), App: safelog.Text(req.App, 0),
		Client: safelog.Text(req.ClientAddr, 0), Gateway: safelog.Text(req.Gateway, 0),
		Server: o.pl.Server, Route: o.route.kind, Target: o.route.gateway, Reason: o.pl.Reason, Micros: took.Microseconds()}
	switch {
	case o.pl.Redirect != nil:
		d.Session, d.PID = o.pl.Redirect.SessionID, o.pl.Redirect.PID
	case o.pl.Claim != nil:
		d.Session, d.PID = o.pl.Claim.SessionID, o.pl.Claim.PID
	}
	code := "ok"
	if o.err != nil {
		d.Server, d.Route, d.Target, d.Reason, code = "", "", "", o.err.Error(), control.ErrorCode(o.err)
	}
	if o.note != "" {
		d.Reason = o.note + "; " + d.Reason
	}
	b.mu.Lock()
	b.metrics.placed(code, took)
	if d.Route != "" {
		b.metrics.routes.WithLabelValues(d.Route).Inc()
	}
	b.remember(d)
	b.mu.Unlock()
	b.Audit.Emit("place", d.Session, req.User, "conn", req.Conn, "app", req.App, "client", req.ClientAddr, "gateway", req.Gateway,
		"server", d.Server, "route", d.Route, "target", d.Target, "pid", d.PID, "outcome", code, "reason", d.Reason)
	b.logger().Info("placement", "user", d.User, "app", d.App, "client", d.Client,
		"gateway", d.Gateway, "server", d.Server, "route", d.Route, "target", d.Target,
		safelog.String("session", d.Session), "pid", d.PID, slog.String("reason", safelog.Text(d.Reason, maxReason)),
		"us", d.Micros)
}

// decide checks the request, then claims the client's reservation or
// places anew. Callers hold b.mu.
func (b *Broker) decide(req control.PlaceRequest, now time.Time) outcome {
	c := b.cluster
	if err := b.lockedErr(req.User, now); err != nil {
		return outcome{err: err}
	}
	if !c.Apps[req.App] {
		// Only a capped, escaped excerpt of a name that is not an app
		// goes on: into the answer, the log and the status view.
		return outcome{err: control.NewError(control.CodeUnknownApp, fmt.Sprintf("no app named \"%s\"", safelog.Text(req.App, maxAppInReason)))}
	}
	if c.Allowed == nil || !c.Allowed(req.User, req.App) {
		return outcome{err: control.NewError(control.CodeForbidden, fmt.Sprintf("user %s may not run %s", req.User, req.App))}
	}
	b.seq++
	region := b.clientRegion(req)
	b.pruneReservations(now)
	if r := b.takeReservation(req.User, req.App); r != nil {
		return b.claim(req, r, region, now)
	}
	return b.placeOn(req, region, now, false)
}

// placeOn chooses the server, among those some gateway can carry the
// session to, and the route to it. A bound client (already redirected)
// is served by the requesting gateway. Callers hold b.mu.
func (b *Broker) placeOn(req control.PlaceRequest, region string, now time.Time, bound bool) outcome {
	c := b.cluster
	gws := b.gatewayView(now, req.Gateway)
	sreq := selection.Request{User: req.User, App: req.App, ClientRegion: region, Near: c.Near[region],
		Marks: b.userMarks[req.User], Seed: b.seq}
	avoid := avoidOf(req)
	d, dropped, err := b.chooseServer(sreq, gws, req.Gateway, bound, avoid != nil, avoid, now)
	if err != nil {
		return outcome{err: err}
	}
	rt, err := b.routeTo(gws, req.Gateway, d.Server, region, bound)
	if err != nil {
		return outcome{err: control.NewError(control.CodeNoServer, err.Error())}
	}
	reason := d.Reason
	if region != "" {
		reason = "client in " + region + "; " + reason
	}
	if len(dropped) > 0 {
		reason += "; not carried by any gateway: " + namesOf(dropped)
	}
	if rt.reason != "" {
		reason += "; gateway " + rt.reason
	}
	o := outcome{route: rt, pl: control.Placement{Server: d.Server, Addr: c.Servers[d.Server].Addr, Reason: reason, Route: rt.kind}}
	switch rt.kind {
	case RouteRedirect:
		o.pl.Redirect = &control.Redirect{Gateway: rt.gateway, Address: b.gatewayAddress(rt.gateway), Expires: now.Add(b.reservationTime())}
		o.prelaunch = req.Pty != nil
		if !o.prelaunch { // nothing to launch for a batch session; remember the redirect all the same
			o.reserve = b.reservationFor(req, &o)
		}
		return o
	case RouteRelay:
		o.pl.Via = &control.Via{Gateway: rt.gateway, Addr: b.gatewayInternal(rt.gateway)}
	}
	b.addPending(d.Server, now)
	b.expectCPU(d.Server, req.App)
	return o
}

// avoidOf is the request's Avoid, at most control.MaxAvoid of it; nil if
// there is none.
func avoidOf(req control.PlaceRequest) []string {
	if len(req.Avoid) == 0 {
		return nil
	}
	return req.Avoid[:min(len(req.Avoid), control.MaxAvoid)]
}

// chooseServer decides the server for sreq among those some gateway in
// gws can carry the session to for the requesting gateway, and names the
// servers dropped for want of one. When that drops none, as when a
// gateway reaches every server, it decides over b.tab without reading
// each server; otherwise, or with scan set, over a list of every server
// (candidates, then carriable), in which the servers named in avoid
// count as unhealthy (avoid needs scan). The decision is the same either
// way. Errors are control errors. Callers hold b.mu.
func (b *Broker) chooseServer(sreq selection.Request, gws []selection.Gateway, requesting string, bound, scan bool, avoid []string, now time.Time) (selection.Decision, []string, error) {
	p := b.cluster.Policy
	var (
		d       selection.Decision
		err     error
		dropped []string
		none    bool // no server is left to decide among
	)
	key, all, ok := b.carriers(gws, requesting, bound)
	if !scan && (all || ok && b.carried[key]) {
		b.countAt(now)
		b.expireReports(now)
		d, err = p.PlaceTable(sreq, b.tab)
	} else {
		var cands []selection.Server
		cands, dropped = b.carriable(b.candidates(now), gws, requesting, bound)
		if ok && !all {
			b.carries(key, len(dropped) == 0)
		}
		none = len(cands) == 0
		for i := range cands {
			if slices.Contains(avoid, cands[i].Name) {
				cands[i].Healthy = false
			}
		}
		sreq.Existing = b.placed(sreq.Marks)
		d, err = p.Place(sreq, cands)
	}
	if errors.Is(err, selection.ErrNoServer) {
		switch {
		case none && len(dropped) > 0:
			err = errNotCarried(sreq.App, requesting, dropped, bound)
		case bound:
			err = fmt.Errorf("%w from gateway %s%s", selection.ErrNoServer, requesting,
				strings.TrimPrefix(err.Error(), selection.ErrNoServer.Error()))
		case len(dropped) > 0:
			err = fmt.Errorf("%w; no gateway can carry a session to %s", err, namesOf(dropped))
		}
		return d, dropped, control.NewError(control.CodeNoServer, err.Error())
	}
	return d, dropped, err
}

// claim answers a client holding reservation r (claim 8): attach to its
// pre-launched session if that is still sound, else place anew for the
// gateway it reached, ending the unused process. Callers hold b.mu.
func (b *Broker) claim(req control.PlaceRequest, r *reservation, region string, now time.Time) outcome {
	why := b.unclaimable(req, r, now)
	if why == "" {
		rt, err := b.routeTo(b.gatewayView(now, req.Gateway), req.Gateway, r.Server, region, true)
		if err == nil {
			reason := fmt.Sprintf("claim: %s pre-launched pid %d on %s for this client (redirected from %s)",
				r.App, r.PID, r.Server, r.From)
			if rt.reason != "" {
				reason += "; gateway " + rt.reason
			}
			if rt.kind == RouteDirect {
				rt.kind = RouteClaim
			}
			o := outcome{route: rt, pl: control.Placement{Server: r.Server, Addr: b.cluster.Servers[r.Server].Addr,
				Reason: reason, Claim: &control.Claim{SessionID: r.SessionID, PID: r.PID}, Route: rt.kind}}
			if rt.kind == RouteRelay {
				o.pl.Via = &control.Via{Gateway: rt.gateway, Addr: b.gatewayInternal(rt.gateway)}
			}
			return o
		}
		why = err.Error()
	}
	o := b.placeOn(req, region, now, true)
	if o.pl.Route == RouteDirect {
		o.pl.Route = control.RouteRedirected
	}
	o.note = "client redirected from " + r.From
	if r.SessionID != "" {
		o.note = fmt.Sprintf("reservation of pid %d on %s not used: %s", r.PID, r.Server, why)
		o.stale = append(o.stale, r)
	}
	return o
}

// unclaimable says why r's pre-launched session cannot serve req, or "".
// Whether the requesting gateway can carry it is routeTo's to say.
// Callers hold b.mu.
func (b *Broker) unclaimable(req control.PlaceRequest, r *reservation, now time.Time) string {
	switch {
	case r.SessionID == "":
		return "nothing was pre-launched"
	case b.sessions[r.SessionID] == nil:
		return "the pre-launched session is gone"
	case !b.healthy(b.servers[r.Server], now):
		return "server " + r.Server + " is down"
	case b.draining(r.Server):
		return "server " + r.Server + " is draining"
	case r.Pty != (req.Pty != nil):
		return "the client's terminal request differs"
	case !slices.Equal(r.Args, req.Args):
		return "the client's arguments differ"
	}
	return ""
}

// reservationFor is the reservation a redirect in o makes for req.
func (b *Broker) reservationFor(req control.PlaceRequest, o *outcome) *reservation {
	rd := o.pl.Redirect
	id := rd.SessionID
	if id == "" {
		id = newReservationID()
	}
	return &reservation{ID: id, User: req.User, App: req.App, Args: slices.Clone(req.Args), Pty: req.Pty != nil,
		Server: o.pl.Server, Gateway: rd.Gateway, From: req.Gateway, SessionID: rd.SessionID, PID: rd.PID, Expires: rd.Expires}
}

// clientRegion is the region the client named, if configured, else the
// region of its address. Callers hold b.mu.
func (b *Broker) clientRegion(req control.PlaceRequest) string {
	if _, ok := b.cluster.Near[req.RegionHint]; ok && req.RegionHint != "" {
		return req.RegionHint
	}
	if b.cluster.RegionOf == nil {
		return ""
	}
	ap, err := netip.ParseAddrPort(req.ClientAddr)
	if err != nil {
		return ""
	}
	return b.cluster.RegionOf(ap.Addr())
}

// placed lists the configured servers and apps of the user's running
// sessions that m counts, each pair once, for affinity in a decision over
// a list: as many as the user has servers, not sessions. The slice is
// reused by the next call. Callers hold b.mu.
func (b *Broker) placed(m *selection.Marks) []selection.Placed {
	out := b.existing[:0]
	for row, app := range m.All() {
		out = append(out, selection.Placed{Server: b.serverNames[row], App: app})
	}
	b.existing = out
	return out
}

// candidates is the selection input: every configured server, sorted by
// name so decisions do not depend on map order; server i is b.table[i].
// The slice is reused by the next call (carriable filters it in place):
// callers hold b.mu and keep nothing of it past their decision.
func (b *Broker) candidates(now time.Time) []selection.Server {
	b.countAt(now)
	b.cands = b.appendServers(b.cands[:0], b.freshSince(now))
	return b.cands
}

// appendServers appends to out every configured server as the policy
// sees it, in b.table's order: healthy if its link is up and it reported
// at since or later, its sessions counted as of b.countedAt. Callers hold
// b.mu.
func (b *Broker) appendServers(out []selection.Server, since time.Time) []selection.Server {
	for i := range b.table {
		t := &b.table[i]
		out = append(out, selection.Server{
			Name:     t.name,
			Region:   t.spec.Region,
			Healthy:  reportedSince(t.st, since),
			Draining: drainingOf(t.spec, t.st),
			Apps:     t.spec.Apps,
			Sessions: b.load(t.on),
			Max:      t.spec.MaxSessions,
			Load:     loadOf(t.st),
		})
	}
	return out
}

func (b *Broker) remember(d Decision) {
	if len(b.recent) == keptDecisions {
		copy(b.recent, b.recent[1:])
		b.recent = b.recent[:keptDecisions-1]
	}
	b.recent = append(b.recent, d)
}

// placedSession fills in the session and PID of the latest decision that
// placed info's session, once its server reports it: a direct or relayed
// placement knows neither when it is made. The decision is the newest
// one without a session for the same user, app and server (and client
// address, when both know it) made no later than the session started.
// Callers hold b.mu.
func (b *Broker) placedSession(info control.SessionInfo) {
	for i := len(b.recent) - 1; i >= 0; i-- {
		d := &b.recent[i]
		if d.Session != "" || d.Server != info.Server || d.User != info.User || d.App != info.App ||
			(d.Client != "" && info.ClientAddr != "" && d.Client != info.ClientAddr) {
			continue
		}
		if !info.Started.IsZero() && d.Time.After(info.Started) {
			continue
		}
		d.Session, d.PID = info.ID, info.PID
		return
	}
}

// draining reports whether a server is drained by config or by command.
// Callers hold b.mu.
func (b *Broker) draining(name string) bool {
	return drainingOf(b.cluster.Servers[name], b.servers[name])
}

// drainingOf reports whether a server of spec and state st is drained.
func drainingOf(spec ServerSpec, st *serverState) bool {
	return spec.Draining || st != nil && st.drained
}

// ErrUnknownServer is returned by Drain for a name the config lacks.
var ErrUnknownServer = errors.New("no such server")

// ErrDrainedInConfig is DrainBy's refusal to undrain a server the config
// drains (draining = true): nothing changes; the file must say otherwise
// first.
var ErrDrainedInConfig = errors.New("still draining: the config file sets draining = true for it; remove that line and reload")

// Drain stops (on) or resumes (off) new placements on a server, for an
// unnamed admin; see DrainBy.
func (b *Broker) Drain(server string, on bool) error {
	return b.DrainBy(context.Background(), server, on, "")
}

// DrainBy stops (on) or resumes (off) new placements on a server, on
// behalf of by (a Unix user, "token"). Running sessions continue. The
// drain is in b.Store, when set, before DrainBy returns, and lasts until
// undone; draining = true in the config lasts until the config changes.
// Errors: ErrUnknownServer, ErrNotLeader, or the store's.
func (b *Broker) DrainBy(ctx context.Context, server string, on bool, by string) error {
	b.drainMu.Lock()
	defer b.drainMu.Unlock()
	b.mu.Lock()
	b.init()
	spec, ok := b.cluster.Servers[server]
	at := b.now()
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("drain %q: %w", server, ErrUnknownServer)
	}
	if !on && spec.Draining {
		return fmt.Errorf("undrain %q: %w", server, ErrDrainedInConfig)
	}
	if !b.leadership().Leading() {
		return fmt.Errorf("drain %q: %w", server, ErrNotLeader)
	}
	if err := b.storeDrain(ctx, server, on, by, at); err != nil {
		return fmt.Errorf("drain %q: %w", server, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.server(server)
	st.drained, st.drainedBy, st.drainedAt = on, by, at
	if !on {
		st.drainedBy, st.drainedAt = "", time.Time{}
	}
	if st.row >= 0 {
		b.tab.SetDraining(st.row, drainingOf(b.cluster.Servers[server], st))
	}
	b.logger().Info("drain", "server", server, "on", on, "by", by, "config_draining", b.cluster.Servers[server].Draining)
	return nil
}

// storeDrain writes a drain, or its end, to b.Store if set.
func (b *Broker) storeDrain(ctx context.Context, server string, on bool, by string, at time.Time) error {
	switch {
	case b.Store == nil:
		return nil
	case on:
		return b.Store.PutDrain(ctx, brokerstate.Drain{Server: server, By: by, At: at})
	default:
		return b.Store.DeleteDrain(ctx, server)
	}
}
