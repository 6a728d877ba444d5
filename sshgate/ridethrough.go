package sshgate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"switchyard/control"
)

// Backoff between attempts to re-attach during a ride-through.
const (
	rideFirstRetry = 100 * time.Millisecond
	rideMaxRetry   = time.Second
)

// rideThrough is how long a session waits for its appd to come back: 0
// (never) when RideThrough is negative, 10s when it is zero.
func (s *Server) rideThrough() time.Duration {
	switch {
	case s.RideThrough < 0:
		return 0
	case s.RideThrough == 0:
		return 10 * time.Second
	}
	return s.RideThrough
}

// reattachLost re-attaches a PTY session whose link to appd dropped
// without an exit (appd restarted, or the connection broke): it retries an
// attach to the same session on the same server until one succeeds, the
// server answers that the session is gone, or the ride-through window
// ends. It returns the new attachment, or nil.
func (s *Server) reattachLost(ctx context.Context, ss *session, r *running) *running {
	window := s.rideThrough()
	if window <= 0 || !ss.hasPty() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	extra, err := json.Marshal(control.AttachRequest{ID: r.Started.ID, User: ss.id.User, Pty: ss.ptySpec(), Gateway: s.relayedFor(r.Place), Rejoin: true})
	if err != nil {
		ss.log.Error("ride-through", "id", r.Started.ID, "err", fmt.Errorf("encode attach request: %w", err))
		return nil
	}
	ss.log.Info("lost the appd link; riding through", "id", r.Started.ID, "server", r.Place.Server, "window", window)
	began, wait := time.Now(), rideFirstRetry
	for attempt := 1; ; attempt++ {
		nr, f := s.open(ctx, r.Place, control.ChannelAttach, extra, r.App)
		if f == nil {
			nr.Resumed = r.Resumed
			ss.log.Info("session rode through a lost appd link", "id", r.Started.ID, "server", r.Place.Server,
				"pid", nr.Started.PID, "was_pid", r.Started.PID, "attempts", attempt, "gap", time.Since(began).Round(time.Millisecond))
			return nr
		}
		if f.Status != exitUnavailable {
			ss.log.Info("ride-through ended: the session cannot be re-attached", "id", r.Started.ID, "server", r.Place.Server, "err", f.Error())
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			ss.log.Info("ride-through ended: appd did not come back in time", "id", r.Started.ID, "server", r.Place.Server,
				"attempts", attempt, "window", window, "err", f.Error())
			return nil
		case <-t.C:
		}
		wait = min(2*wait, rideMaxRetry)
	}
}

// tellInputGap tells the user, in one line, about input a ride-through
// could not make good (see input.attach), and logs it.
func (ss *session) tellInputGap(gap inputGap, server string, err error) {
	var line string
	switch {
	case gap.lost > 0:
		line = fmt.Sprintf("switchyard: %d bytes you typed were lost when the link to server %s dropped", gap.lost, server)
	case gap.doubt:
		line = fmt.Sprintf("switchyard: server %s restarted; what you typed just before may not have arrived", server)
	}
	if err != nil {
		ss.log.Info("ride-through: input not resent", "server", server, "err", err)
	}
	if line == "" {
		return
	}
	ss.log.Info("ride-through lost input", "server", server, "bytes", gap.lost, "unknown", gap.doubt)
	ss.client.Stderr().Write([]byte(line + ss.eol()))
}
