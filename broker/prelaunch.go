package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"switchyard/control"
	"switchyard/safelog"
)

// appdCallTimeout bounds a call to appd: a pre-launch or a release.
const appdCallTimeout = 3 * time.Second

// errNoLink is returned by appd when the server has no control link.
var errNoLink = errors.New("no control link")

// prelaunch starts the redirected app on its server before the client
// reconnects (Fig. 9: S903a broker → appd, S903b appd → broker pid,
// S903c the pid in the answer) and records the reservation. A pre-launch
// that fails leaves a redirect without a session: the client is still
// sent on, and the app is started when it arrives. hold is the
// reservation time. The reservation is left in o.reserve for Place to
// keep.
func (b *Broker) prelaunch(ctx context.Context, req control.PlaceRequest, o *outcome, hold time.Duration) {
	rd := o.pl.Redirect
	preq := control.PrelaunchRequest{
		Spawn:   control.SpawnRequest{App: req.App, User: req.User, Args: req.Args, Pty: req.Pty, Env: req.Env},
		Hold:    hold + claimMargin,
		Gateway: rd.Gateway,
	}
	ctx, cancel := context.WithTimeout(ctx, appdCallTimeout)
	defer cancel()
	var st control.Started
	err := b.appd(ctx, o.pl.Server, control.MethodPrelaunch, preq, &st)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.logger().Warn("pre-launch failed; redirecting without it", safelog.String("user", req.User),
			safelog.String("app", req.App), "server", o.pl.Server, slog.String("err", safelog.Text(err.Error(), maxReason)))
		o.pl.Reason += "; pre-launch failed: " + err.Error()
		o.reserve = b.reservationFor(req, o)
		return
	}
	rd.SessionID, rd.PID = st.ID, st.PID
	o.pl.Reason += fmt.Sprintf("; pre-launched pid %d, held until %s", st.PID, rd.Expires.Format(time.RFC3339))
	now := b.now()
	b.putSession(control.SessionInfo{
		ID: st.ID, PID: st.PID, User: req.User, App: req.App, Server: o.pl.Server, Gateway: rd.Gateway,
		Started: now, State: control.StateDetached, Detached: now,
	}, now)
	o.reserve = b.reservationFor(req, o)
}

// release ends the pre-launched app of a reservation the broker decided
// not to use. appd ends it anyway when its hold runs out; this only
// frees the server sooner. Failures are logged.
func (b *Broker) release(ctx context.Context, r *reservation) {
	ctx, cancel := context.WithTimeout(ctx, appdCallTimeout)
	defer cancel()
	err := b.appd(ctx, r.Server, control.MethodPrelaunchRelease, control.ReleaseRequest{ID: r.SessionID, User: r.User}, nil)
	if err != nil {
		b.logger().Warn("release of pre-launched session failed; its hold will end it", "server", r.Server,
			safelog.String("session", r.SessionID), "pid", r.PID, slog.String("err", safelog.Text(err.Error(), maxReason)))
		return
	}
	b.logger().Info("pre-launched session released", "server", r.Server, safelog.String("session", r.SessionID),
		"pid", r.PID, safelog.String("user", r.User), safelog.String("app", r.App))
}

// appd calls method on server's appd over its control link.
func (b *Broker) appd(ctx context.Context, server, method string, req, resp any) error {
	if b.callAppd != nil {
		return b.callAppd(ctx, server, method, req, resp)
	}
	b.mu.Lock()
	var p *control.Peer
	if st := b.servers[server]; st != nil {
		p = st.peer
	}
	b.mu.Unlock()
	if p == nil {
		return fmt.Errorf("call %s on %s: %w", method, server, errNoLink)
	}
	if err := p.Call(ctx, method, req, resp); err != nil {
		return fmt.Errorf("call %s on %s: %w", method, server, err)
	}
	return nil
}
