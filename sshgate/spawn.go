package sshgate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
)

// running is an app that appd has started, or a session it re-attached,
// for a session.
type running struct {
	App     string
	Place   control.Placement
	Ch      gossh.Channel
	Reqs    <-chan *gossh.Request
	Started control.Started
	Resumed *control.SessionInfo // the broker's record of a resumed session; nil for a new one
}

// run is the life of one session after its channel is accepted: wait for
// shell or exec, then run the gateway's own command (sessions, resume) or
// choose the app, place it, spawn it, bridge it to the client, report.
func (s *Server) run(ctx context.Context, ss *session) {
	defer ss.client.Close()
	var cmd string
	select {
	case cmd = <-ss.start:
	case <-ctx.Done():
		return
	}
	ss.cmd = cmd
	if !s.Acquire() {
		ss.fail(errFull)
		return
	}
	defer s.Release()
	if max := s.maxSessionsPerUser(); !s.users.Take(ss.id.User, max) {
		ss.fail(tooManySessions(ss.id.User, max))
		return
	}
	defer s.users.Give(ss.id.User)
	app, args, err := ParseCommand(ss.id.Login, ss.id.loginIsApp(), cmd)
	switch {
	case err == nil && app == CommandSessions:
		s.listSessions(ctx, ss, args)
		return
	case err == nil && app == CommandResume:
		s.resume(ctx, ss, args)
		return
	case errors.Is(err, ErrNoApp) && s.NoApp != nil && ss.hasPty():
		s.pick(ctx, ss)
		return
	case err != nil:
		s.failUnlessGone(ctx, ss, asFailure(app, err))
		return
	}
	s.launchAndServe(ctx, ss, app, args)
}

// launchAndServe places and spawns app, then serves it.
func (s *Server) launchAndServe(ctx context.Context, ss *session, app string, args []string) {
	r, f := s.launch(ctx, ss, app, args)
	if f != nil {
		s.failUnlessGone(ctx, ss, f)
		return
	}
	s.serve(ctx, ss, r)
}

// failUnlessGone shows f, unless the client has already left.
func (s *Server) failUnlessGone(ctx context.Context, ss *session, f *failure) {
	if ctx.Err() != nil {
		ss.log.Info("client left before the app started", "err", f.Error())
		return
	}
	ss.fail(f)
}

// launch asks the broker where app runs and has appd there start it, or
// attach the app the broker pre-launched for this client. When the broker
// hands the session to another gateway, the client is told where to go
// (a failure with exitRedirect) and nothing is started here.
//
// A server that cannot be reached (its appd stopped a moment before the
// broker heard of it) is left out and the session placed again, up to
// maxReplace times; the user sees a failure only when every try failed.
func (s *Server) launch(ctx context.Context, ss *session, app string, args []string) (*running, *failure) {
	if f := checkSpawnSize(ss.spawnRequest(app, args)); f != nil {
		return nil, f
	}
	var avoid []string
	for {
		pl, f := s.place(ctx, ss, app, args, avoid)
		switch {
		case f != nil:
			return nil, f
		case pl.Redirect != nil:
			return nil, redirectFailure(ss, pl.Redirect, app, args)
		case pl.Claim != nil:
			return s.claim(ctx, ss, pl, app)
		}
		r, f := s.spawn(ctx, ss, pl, app, args)
		var u unreachable
		if f == nil || !errors.As(f.Err, &u) || len(avoid) >= maxReplace || ctx.Err() != nil {
			return r, f
		}
		ss.log.Info("server unreachable; placing the session again without it", "server", pl.Server, "err", f.Err)
		avoid = append(avoid, pl.Server)
	}
}

// maxReplace bounds how many unreachable servers one launch leaves out.
const maxReplace = 2

// place calls the broker, bounded by PlaceTimeout, leaving out the
// servers in avoid.
func (s *Server) place(ctx context.Context, ss *session, app string, args []string, avoid []string) (control.Placement, *failure) {
	ctx, cancel := context.WithTimeout(ctx, s.placeTimeout())
	defer cancel()
	spawn := ss.spawnRequest(app, args)
	req := control.PlaceRequest{User: ss.id.User, App: app, ClientAddr: ss.addr, Gateway: s.Name,
		RegionHint: ss.envValue(RegionEnv), Args: args, Pty: spawn.Pty, Env: spawn.Env, Conn: ss.conn, Avoid: avoid}
	pl, err := s.Placer.Place(ctx, req)
	if err != nil {
		return pl, placeFailure(app, err)
	}
	if pl.Server == "" || pl.Addr == "" {
		return pl, internal(fmt.Errorf("place: incomplete placement %+v", pl))
	}
	return pl, nil
}

// spawn opens the spawn channel on the chosen server and waits for appd's
// started request, all within StartTimeout.
func (s *Server) spawn(ctx context.Context, ss *session, pl control.Placement, app string, args []string) (*running, *failure) {
	req := ss.spawnRequest(app, args)
	req.Gateway = s.relayedFor(pl)
	extra, err := json.Marshal(req)
	if err != nil {
		return nil, internal(fmt.Errorf("encode spawn request: %w", err))
	}
	return s.open(ctx, pl, control.ChannelSpawn, extra, app)
}

// open opens a spawn or attach channel on pl's server, through pl.Via
// when set, and waits for appd's started request, all within
// StartTimeout.
func (s *Server) open(ctx context.Context, pl control.Placement, chanType string, extra []byte, app string) (*running, *failure) {
	ctx, cancel := context.WithTimeout(ctx, s.startTimeout())
	defer cancel()
	ch, reqs, err := s.openOn(ctx, pl, chanType, extra)
	if err != nil {
		return nil, openFailure(pl, app, err)
	}
	st, f := awaitStarted(ctx, pl.Server, reqs)
	if f != nil {
		ch.Close()
		go gossh.DiscardRequests(reqs) // keep the internal connection flowing
		return nil, f
	}
	return &running{App: app, Place: pl, Ch: ch, Reqs: reqs, Started: st}, nil
}

// openOn opens the channel on pl's server, or, when pl.Via is set, a relay
// channel on that gateway's internal listener, which opens it for us and
// splices the two.
func (s *Server) openOn(ctx context.Context, pl control.Placement, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error) {
	if pl.Via == nil {
		return s.Opener.OpenChannel(ctx, pl.Server, pl.Addr, chanType, extra)
	}
	rr := relayRequest{Server: pl.Server, Type: chanType, Extra: extra}
	return s.Opener.OpenChannel(ctx, pl.Via.Gateway, pl.Via.Addr, control.ChannelRelay, rr.marshal())
}

// claim attaches the client to the app the broker pre-launched for it
// (claim 8: the broker confirmed the reservation). The attach replays
// what the app wrote while it waited.
func (s *Server) claim(ctx context.Context, ss *session, pl control.Placement, app string) (*running, *failure) {
	extra, err := json.Marshal(control.AttachRequest{ID: pl.Claim.SessionID, User: ss.id.User, Pty: ss.ptySpec(), Gateway: s.relayedFor(pl)})
	if err != nil {
		return nil, internal(fmt.Errorf("encode attach request: %w", err))
	}
	r, f := s.open(ctx, pl, control.ChannelAttach, extra, app)
	if f != nil && f.Status == exitNoSession {
		f = &failure{Status: exitUnavailable, Err: f.Err,
			Line: fmt.Sprintf("the %s started for you ended before you arrived, try again", app)}
	}
	if f != nil {
		return nil, f
	}
	if r.Started.PID != pl.Claim.PID {
		ss.log.Warn("claimed session has another pid than the broker announced", "id", r.Started.ID,
			"pid", r.Started.PID, "announced", pl.Claim.PID)
	}
	return r, nil
}

// awaitStarted reads the first request of a spawn channel, which must be
// RequestStarted carrying a JSON control.Started.
func awaitStarted(ctx context.Context, server string, reqs <-chan *gossh.Request) (control.Started, *failure) {
	var st control.Started
	select {
	case <-ctx.Done():
		return st, &failure{
			Status: exitUnavailable,
			Line:   fmt.Sprintf("server %s did not start the app in time, try again later", server),
			Err:    fmt.Errorf("wait for %s from %s: %w", control.RequestStarted, server, context.Cause(ctx)),
		}
	case req, ok := <-reqs:
		if !ok {
			return st, &failure{Status: exitUnavailable, Line: fmt.Sprintf("server %s went away before the app started; try again", server)}
		}
		if req.Type != control.RequestStarted {
			req.Reply(false, nil)
			return st, internal(fmt.Errorf("spawn on %s: first request %q, want %q", server, req.Type, control.RequestStarted))
		}
		if err := json.Unmarshal(req.Payload, &st); err != nil {
			req.Reply(false, nil)
			return st, internal(fmt.Errorf("spawn on %s: decode %s: %w", server, control.RequestStarted, err))
		}
		req.Reply(true, nil)
		return st, nil
	}
}

// serve bridges a running session to its client, then reports its end to the broker
// unless the session lives on: a PTY session whose client left is
// detached, one taken over is attached elsewhere.
func (s *Server) serve(ctx context.Context, ss *session, r *running) {
	info := control.SessionInfo{
		ID: r.Started.ID, PID: r.Started.PID, User: ss.id.User, App: r.App,
		Server: r.Place.Server, Started: time.Now(),
	}
	if r.Resumed != nil {
		info = *r.Resumed
		info.PID, info.Addr, info.Via, info.Detached = r.Started.PID, "", nil, time.Time{}
	}
	info.Gateway, info.State, info.ClientAddr = s.Name, control.StateAttached, ss.addr
	info.Route = cmp.Or(r.Place.Route, control.RouteDirect)
	if r.Resumed != nil {
		info.Route = control.RouteResume
	}
	ss.log.Info("session started", "app", r.App, "server", r.Place.Server, "pid", r.Started.PID,
		"id", r.Started.ID, "reason", r.Place.Reason, "resumed", r.Resumed != nil, "claimed", r.Place.Claim != nil,
		"via", viaName(r.Place))
	s.auditOpen(ss, r)
	ss.attach(r.Ch)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	act := &ss.act
	act.touch()
	var idle *failure // what the client is told if the session idles out
	if limit, detach := s.idleLimit(r.App); limit > 0 {
		idle = idleFailure(limit, detach && ss.hasPty(), resumeCommand(ss.id.User, ss.here, r.Started.ID))
		defer watchIdle(limit, act, func() { cancel(errIdle) })()
	}
	defer context.AfterFunc(s.evicting(), func() { cancel(errUpgrade) })()
	in := ss.input()
	in.attach(r.Ch, r.Started.InputCount)
	br, ex, drained := s.bridgeOnce(ctx, ss, r, info, act)
	for ex == nil && ctx.Err() == nil && !br.takenOver {
		// The link to appd dropped without an exit: ride through it.
		ss.detach()
		in.set(nil)
		nr := s.reattachLost(ctx, ss, r)
		if nr == nil {
			break
		}
		r = nr
		ss.attach(r.Ch)
		gap, err := in.attach(r.Ch, r.Started.InputCount)
		ss.tellInputGap(gap, r.Place.Server, err)
		br, ex, drained = s.bridgeOnce(ctx, ss, r, info, act)
	}
	ss.detach()
	ss.unsent = in.stop()
	ended, report := s.end(ctx, ss, r, ex, drained, br.takenOver, idle)
	msg := "session ended"
	if !report {
		msg = "session left running"
	}
	ss.log.Info(msg, "app", r.App, "server", r.Place.Server, "id", r.Started.ID,
		"status", ended.Status, "reason", ended.Reason, "duration", time.Since(info.Started).Round(time.Millisecond))
	s.Audit.Emit("session.close", r.Started.ID, ss.id.User, "conn", ss.conn, "app", r.App, "server", r.Place.Server,
		"status", ended.Status, "reason", ended.Reason, "ended", report)
	switch {
	case report:
		s.notify(ctx, "session ended", func(ctx context.Context) error { return s.Placer.SessionEnded(ctx, ended) })
	case !br.takenOver:
		// Detached: say so now, so that a resume right away, here or
		// through another gateway, finds the session detached.
		info.State, info.Detached = control.StateDetached, time.Now()
		s.notify(ctx, "session detached", func(ctx context.Context) error { return s.Placer.SessionDetached(ctx, info) })
	}
}

// bridgeOnce bridges one attachment r of the session until it ends, and
// tells the broker the session is attached through this gateway.
func (s *Server) bridgeOnce(ctx context.Context, ss *session, r *running, info control.SessionInfo, act *activity) (*bridge, *exitReq, bool) {
	br := startBridge(ss.client, nil, r.Ch, r.Reqs, act, ss.hasPty())
	// The broker hears of the start while the bridge answers appd: an
	// unanswered request queue would stall appd's whole connection.
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		s.notify(ctx, "session started", func(ctx context.Context) error { return s.Placer.SessionStarted(ctx, info) })
	}()
	ex, drained := br.wait(ctx, s.startTimeout(), ss.reqs)
	ss.reqs.background()
	<-notified // the end must not overtake the start
	return br, ex, drained
}

// end passes the app's exit to the client (or explains its absence: idle
// is the line for an idle timeout) and returns the report for the broker,
// and whether to send it: not for a session that lives on (taken over, or
// a PTY session detached because its client left or it idled out).
func (s *Server) end(ctx context.Context, ss *session, r *running, ex *exitReq, drained, takenOver bool, idle *failure) (control.SessionEnded, bool) {
	ended := control.SessionEnded{ID: r.Started.ID, Server: r.Place.Server, Status: -1}
	switch {
	case ex != nil:
		ss.client.SendRequest(ex.Type, false, ex.Payload)
		ss.client.CloseWrite()
		ss.client.Close()
		if takenOver {
			ended.Reason = "taken over"
			return ended, false
		}
		ended.Status, ended.Reason = ex.status()
	case ctx.Err() != nil:
		ended.Reason = "connection closed"
		cause := context.Cause(ctx)
		if errors.Is(cause, errClientGone) || errors.Is(cause, errIdle) || errors.Is(cause, errUpgrade) {
			ended.Reason = cause.Error()
		}
		if errors.Is(cause, errIdle) && idle != nil {
			ss.fail(idle)
		}
		if errors.Is(cause, errUpgrade) {
			ss.fail(upgradeFailure(ss.hasPty(), resumeCommand(ss.id.User, ss.here, r.Started.ID)))
		}
		if !drained {
			ended.Reason += "; app channel did not close"
		}
		if ss.hasPty() {
			ended.Reason = "detached: " + ended.Reason
			return ended, false
		}
	default:
		ss.fail(wentAway(r.Place.Server, ss.hasPty(), resumeCommand(ss.id.User, ss.here, r.Started.ID), ss.unsent))
		ended.Reason = "server went away"
	}
	return ended, true
}

// viaName is the gateway a session is relayed through, "" if none.
// relayedFor is what a spawn or attach request opened for pl names as the
// client's gateway: this one when another relays the channel (appd sees
// the relay as the channel's node), else "".
func (s *Server) relayedFor(pl control.Placement) string {
	if pl.Via == nil {
		return ""
	}
	return s.Name
}

func viaName(pl control.Placement) string {
	if pl.Via == nil {
		return ""
	}
	return pl.Via.Gateway
}

// notify sends a notification to the broker, even after the client left,
// bounded by PlaceTimeout; failures are logged only.
func (s *Server) notify(ctx context.Context, what string, call func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.placeTimeout())
	defer cancel()
	if err := call(ctx); err != nil {
		s.logger().Warn("notify broker", "what", what, "err", err)
	}
}
