package appd

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/safelog"
)

// errNoSession is the one answer to an attach that cannot be served: the
// same whether the session does not exist, has ended, is a batch session
// or belongs to someone else, so that ids cannot be probed.
var errNoSession = rejectf(control.CodeNoSession, "no such session")

// clientGateway is the gateway a session is reported as attached
// through: the one the request names when another gateway (node) relays
// the channel for it, else the node itself. Only authenticated gateways
// open channels, and a name is all a gateway can claim here.
func clientGateway(named, node string) string {
	if named != "" {
		return named
	}
	return node
}

// HandleAttach serves one control.ChannelAttach channel from gateway: it
// re-attaches a running PTY session to the channel and returns when that
// attachment is over (the app ended, the channel went away, or a newer
// attachment took over). ctx is not used: the session's life was bounded
// by the context of the HandleSpawn that started it.
//
// It rejects the channel with "no_session: no such session" unless the
// session exists, is a PTY session that is not being hung up, and belongs
// to the request's User. Otherwise it accepts, takes over the session's
// current attachment if any (which is told so in one line and closed),
// resizes the PTY to the request's window, nudging the size when it did
// not change so that the app redraws, sends control.RequestStarted with
// the session's id and pid, then the output kept while it was detached,
// then live output.
func (m *Manager) HandleAttach(_ context.Context, nc ssh.NewChannel, gateway string) {
	log := m.logger().With("gateway", gateway)
	req, s, err := m.attachable(nc.ExtraData())
	client := clientGateway(req.Gateway, gateway)
	if err == nil && req.Rejoin && !s.rejoinable(client) {
		err = errNoSession
	}
	if err != nil {
		m.rejectAttach(nc, log, req, err)
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		log.Warn("attach channel accept failed", safelog.String("id", req.ID), safelog.String("user", req.User), "err", err)
		return
	}
	a := newAttachment(ch, reqs)
	took := s.attach(a, req.Pty, client, true)
	log.Info("session attached", "id", s.info.ID, "user", s.info.User, "app", s.info.App,
		"pid", s.info.PID, "took_over", took)
	if took {
		m.auditAttach(s, "takeover", client)
	}
	m.auditAttach(s, "resume", client)
	a.relayInput(s)
	m.logDetach(log, s)
}

// attachable parses an attach request and finds its session.
func (m *Manager) attachable(extra []byte) (control.AttachRequest, *session, error) {
	var req control.AttachRequest
	if len(extra) > maxSpawnRequest {
		return req, nil, rejectf(control.CodeInternal,
			"attach request is %d bytes, more than the %d allowed", len(extra), maxSpawnRequest)
	}
	if err := json.Unmarshal(extra, &req); err != nil {
		return req, nil, rejectWrap(err, control.CodeInternal, "malformed attach request")
	}
	m.mu.Lock()
	s, closed := m.sessions[req.ID], m.closed
	m.mu.Unlock()
	if closed {
		return req, nil, rejectf(control.CodeNoServer, "server %s is shutting down", m.Server)
	}
	if s == nil || req.User == "" || s.info.User != req.User || s.term == nil || !s.attachOpen() {
		return req, nil, errNoSession
	}
	return req, s, nil
}

// attachOpen reports whether the session still takes attachments.
func (s *session) attachOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing && !s.ended
}

// rejoinable reports whether gateway may rejoin the session after
// losing its link (control.AttachRequest.Rejoin): unless another gateway
// attached it meanwhile.
func (s *session) rejoinable(gateway string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.att == nil || s.gateway == gateway
}

// rejectAttach refuses nc with err's one line and logs why.
func (m *Manager) rejectAttach(nc ssh.NewChannel, log *slog.Logger, req control.AttachRequest, err error) {
	var rej *rejectError
	if !errors.As(err, &rej) {
		rej = rejectWrap(err, control.CodeInternal, "appd could not handle the request")
	}
	log.Info("attach rejected", safelog.String("id", req.ID), safelog.String("user", req.User), "code", rej.Code,
		safelog.String("reason", rej.Msg), "err", rej.Err)
	if err := nc.Reject(ssh.Prohibited, oneLine(rej.Error())); err != nil {
		log.Debug("attach reject failed", "err", err)
	}
}

// attach makes a the session's attachment and reports whether it took
// over an older one. With redraw, the PTY is first sized to pty (or kept,
// when pty is nil) so that the app redraws. Then RequestStarted is sent,
// then the kept output; live output follows, as emit waits for outMu. If
// the app has ended meanwhile, a gets RequestStarted and the exit status.
func (s *session) attach(a *attachment, pty *control.PtySpec, gateway string, redraw bool) (tookOver bool) {
	s.attachMu.Lock()
	defer s.attachMu.Unlock()
	s.mu.Lock()
	ended, old := s.ended, s.att
	s.att = nil // output goes to kept until a is in place
	s.mu.Unlock()
	if ended {
		a.sendStarted(s.info, control.InputCount{})
		a.finish(s.exitResult())
		return false
	}
	if old != nil {
		old.takeOver() // closing it ends an emit blocked writing to it
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if redraw {
		s.redraw(pty)
		s.rec.marker("resume")
	}
	in, exact := s.moveInput(a)
	a.sendStarted(s.info, control.InputCount{In: in, Exact: exact})
	s.mu.Lock()
	s.stopGrace()
	s.att, s.gateway = a, gateway
	pending := s.takeKept()
	s.mu.Unlock()
	if len(pending) > 0 {
		n, err := a.ch.Write(pending)
		s.out.Add(int64(n))
		if err != nil {
			s.mu.Lock()
			s.keep(pending[n:])
			s.mu.Unlock()
			s.lost(a)
		}
	}
	return old != nil
}

// redraw sizes the PTY to pty, which makes the kernel send SIGWINCH to the
// app. When the size would not change, it nudges it (one row less, then
// back), so that a full-screen app redraws anyway.
func (s *session) redraw(pty *control.PtySpec) {
	cur, err := s.term.size()
	if err != nil {
		return // the terminal is gone: the app is ending
	}
	cols, rows := uint32(cur.Col), uint32(cur.Row)
	if pty != nil && pty.Cols > 0 && pty.Rows > 0 {
		cols, rows = pty.Cols, pty.Rows
	}
	if clamp16(cols) == cur.Col && clamp16(rows) == cur.Row {
		nudge := rows - 1
		if rows <= 1 {
			nudge = rows + 1
		}
		s.term.resize(cols, nudge, 0, 0)
	}
	s.resize(cols, rows, 0, 0)
}
