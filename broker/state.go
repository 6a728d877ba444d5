package broker

import (
	"cmp"
	"log/slog"
	"time"

	"switchyard/control"
	"switchyard/safelog"
)

// pendingTTL is how long a placement counts against its server while the
// session it was made for has not been reported started.
const pendingTTL = 10 * time.Second

// serverReport replaces what the broker knows of a server's load and
// sessions with its report. Sessions a gateway announced very recently are
// kept even if this report predates them.
func (b *Broker) serverReport(name string, r control.ServerReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	now := b.now()
	st := b.server(name)
	st.lastReport, st.report = now, r
	b.reported(st)
	b.metrics.reports.WithLabelValues("server").Inc()
	for _, s := range r.Sessions {
		s.Server = name
		old, ok := b.sessions[s.ID]
		if ok {
			// What only the gateway knows stays as it announced it.
			s.Gateway = cmp.Or(s.Gateway, old.info.Gateway)
			s.ClientAddr = cmp.Or(s.ClientAddr, old.info.ClientAddr)
			s.Route = cmp.Or(s.Route, old.info.Route)
		}
		if ok && b.staleAttached(old, s, now) {
			s.State, s.Detached = old.info.State, old.info.Detached
		}
		b.putSession(s, now)
	}
	// Every session just reported was seen now: only the others can be
	// older than an interval, or restored and not in this report.
	if on := b.byServer[name]; on != nil {
		for id, s := range on.sessions {
			if s.restored || now.Sub(s.seen) > b.interval() {
				b.dropSession(id)
			}
		}
	}
	b.sessionsSeen(name, r.Sessions, now)
}

func (b *Broker) gatewayReport(name string, r control.GatewayReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	st := b.gateway(name)
	st.lastReport, st.report = b.now(), r
	b.metrics.reports.WithLabelValues("gateway").Inc()
}

func (b *Broker) sessionStarted(s control.SessionInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	// A resumed session is no pending placement: the broker knew it
	// before any placement still pending on its server was made.
	old := b.sessions[s.ID]
	resumed := old != nil && !b.placedBy(s.Server, old.since)
	b.putSession(s, b.now())
	b.sessions[s.ID].gatewayDetached = time.Time{} // attached again
	b.dropReservationOf(s.ID, "attached through "+s.Gateway)
	if !resumed {
		b.confirmPending(s.Server)
	}
	b.logger().Info("session started", safelog.String("id", s.ID), safelog.String("user", s.User),
		safelog.String("app", s.App), safelog.String("server", s.Server), "pid", s.PID, safelog.String("gateway", s.Gateway))
}

// sessionDetached marks a session detached when its carrying gateway says
// its client left: at once, not at the server's next report. A gateway
// speaks only for the sessions it carries.
func (b *Broker) sessionDetached(gateway string, s control.SessionInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	old := b.sessions[s.ID]
	if old == nil || old.info.Gateway != gateway || old.info.Server != s.Server || old.info.User != s.User {
		return
	}
	now := b.now()
	info := old.info
	info.State, info.Detached = control.StateDetached, now
	b.putSession(info, now)
	old.gatewayDetached = now
	b.logger().Info("session detached", safelog.String("id", s.ID), safelog.String("user", info.User),
		safelog.String("server", info.Server), safelog.String("gateway", gateway))
}

// staleAttached reports whether report r of a session its gateway said
// detached (old) saying it is attached may predate the detach: it came
// within one interval of it. A resume, which attaches it again, reaches
// the broker as a session.started.
func (b *Broker) staleAttached(old *sessionState, r control.SessionInfo, now time.Time) bool {
	return !old.gatewayDetached.IsZero() && r.State != control.StateDetached &&
		now.Sub(old.gatewayDetached) < b.interval()
}

func (b *Broker) sessionEnded(s control.SessionEnded) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	b.dropSession(s.ID)
	b.dropReservationOf(s.ID, "ended")
	b.logger().Info("session ended", safelog.String("id", s.ID), safelog.String("server", s.Server), "status", s.Status,
		slog.String("reason", safelog.Text(s.Reason, maxReason)))
}

// healthy reports whether a server may get placements: its link is up and
// its last report is at most three intervals old.
func (b *Broker) healthy(st *serverState, now time.Time) bool {
	return reportedSince(st, b.freshSince(now))
}

// freshSince is the oldest time a report may have been received at for its
// server to be healthy at now.
func (b *Broker) freshSince(now time.Time) time.Time {
	return now.Add(-3 * b.interval())
}

// reportedSince reports whether a server with state st has a link up and
// last reported at since or later.
func reportedSince(st *serverState, since time.Time) bool {
	return st != nil && st.links > 0 && !st.lastReport.IsZero() && !st.lastReport.Before(since)
}
