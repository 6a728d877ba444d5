package appd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"switchyard/control"
	"switchyard/safelog"
)

// Prelaunch starts an app before its user has connected (the patent's
// Fig. 9, S903a-b: the broker asks, appd answers with the pid). The app
// runs in a PTY sized and typed like the client's, as a detached session
// of req.Spawn.User: output is kept as for any detached session, and an
// attach@switchyard channel from any gateway claims it (same pid, kept
// output replayed), after which it is an ordinary session whose later
// detaches get the app's grace period. Unclaimed, it is hung up when
// req.Hold ends, by appd's own timer, whatever became of the broker.
//
// ctx bounds starting the app only: the session lives on until it ends,
// is released (Release) or appd shuts down. Errors are control
// RemoteErrors with the code a spawn channel would be rejected with.
func (m *Manager) Prelaunch(ctx context.Context, req control.PrelaunchRequest) (control.Started, error) {
	log := m.logger().With("gateway", req.Gateway)
	spawn := req.Spawn
	var err error
	switch {
	case spawn.Pty == nil:
		err = rejectf(control.CodeInternal, "pre-launch needs a terminal")
	case spawn.User == "":
		err = rejectf(control.CodeInternal, "pre-launch needs a user")
	case req.Hold <= 0:
		err = rejectf(control.CodeInternal, "pre-launch needs a positive hold")
	case ctx.Err() != nil:
		err = rejectWrap(ctx.Err(), control.CodeInternal, "pre-launch abandoned")
	}
	var app App
	if err == nil {
		app, err = m.resolveRequest(spawn)
	}
	if err == nil {
		err = m.reserve()
	}
	if err != nil {
		return control.Started{}, m.refusePrelaunch(req, err)
	}
	s, err := m.start(spawn, app, req.Gateway)
	if err != nil {
		m.release()
		return control.Started{}, m.refusePrelaunch(req, err)
	}
	s.hold(req.Hold)
	m.register(s)
	log.Info("session pre-launched", "id", s.info.ID, "user", s.info.User, "app", s.info.App,
		"pid", s.info.PID, "hold", req.Hold)
	m.auditSpawn(s, req.Gateway, true)
	go func() {
		defer m.unregister(s)
		if s.live(context.WithoutCancel(ctx), func() { m.auditExit(s) }) {
			logEnd(log, s)
		}
	}()
	return control.Started{ID: s.info.ID, PID: s.info.PID}, nil
}

// refusePrelaunch logs why a pre-launch was refused and returns the error
// as a control.RemoteError.
func (m *Manager) refusePrelaunch(req control.PrelaunchRequest, err error) error {
	var rej *rejectError
	if !errors.As(err, &rej) {
		rej = rejectWrap(err, control.CodeInternal, "appd could not handle the request")
	}
	m.failures.add(rej.Code)
	m.logger().Info("pre-launch refused", safelog.String("app", req.Spawn.App), safelog.String("user", req.Spawn.User),
		"code", rej.Code, safelog.String("reason", rej.Msg), "err", rej.Err)
	return control.NewError(rej.Code, oneLine(rej.Msg))
}

// hold starts a pre-launched session detached, held for d. Called before
// the session is registered.
func (s *session) hold(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = true
	s.detached = time.Now()
	s.gen++
	gen := s.gen
	s.timer = time.AfterFunc(d, func() { s.expire(gen, "reservation expired") })
}

// Release hangs up a pre-launched session that will not be claimed: the
// broker gave its user something else. A session attached since it was
// started is left alone (nil is returned: there is nothing to release).
// An unknown id, or one of another user, is control.CodeNoSession.
func (m *Manager) Release(req control.ReleaseRequest) error {
	m.mu.Lock()
	s := m.sessions[req.ID]
	m.mu.Unlock()
	if s == nil || req.User == "" || s.info.User != req.User {
		return control.NewError(control.CodeNoSession, "no such session")
	}
	if s.releaseHold() {
		m.logger().Info("pre-launched session released", "id", s.info.ID, "user", s.info.User,
			"app", s.info.App, "pid", s.info.PID)
	}
	return nil
}

// releaseHold requests the hang-up of a session still held, unclaimed,
// and reports whether it did.
func (s *session) releaseHold() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.held || s.att != nil || s.ended {
		return false
	}
	s.requestHangup("reservation released")
	return true
}

// Handler serves the calls the broker makes on appd's control link:
// control.MethodPrelaunch (reply control.Started),
// control.MethodPrelaunchRelease and control.MethodSessionKill.
func (m *Manager) Handler() control.Handler {
	return func(ctx context.Context, method string, body json.RawMessage) (any, error) {
		switch method {
		case control.MethodPrelaunch:
			var req control.PrelaunchRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, fmt.Errorf("decode %s: %w", method, err)
			}
			return m.Prelaunch(ctx, req)
		case control.MethodSessionKill:
			var req control.KillRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, fmt.Errorf("decode %s: %w", method, err)
			}
			return nil, m.Kill(req)
		case control.MethodPrelaunchRelease:
			var req control.ReleaseRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, fmt.Errorf("decode %s: %w", method, err)
			}
			return nil, m.Release(req)
		}
		return m.serveRecording(ctx, method, body)
	}
}
