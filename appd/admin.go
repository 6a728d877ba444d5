package appd

import (
	"time"

	"switchyard/control"
	"switchyard/safelog"
)

// killLine is what the user of a session an administrator ended reads.
const killLine = "switchyard: session ended by an administrator"

// maxKillReason caps the reason shown to the user.
const maxKillReason = 512

// Kill ends session req.ID for an administrator (broker kill): the
// attached user, if any, reads one line with the reason, the app's
// process group is hung up (SIGHUP, SIGKILL after killGrace) and the
// session ends with control.ExitKilled whatever the app's own status.
// An unknown id is control.CodeNoSession.
func (m *Manager) Kill(req control.KillRequest) error {
	m.mu.Lock()
	s := m.sessions[req.ID]
	m.mu.Unlock()
	if s == nil {
		return control.NewError(control.CodeNoSession, "no such session")
	}
	s.mu.Lock()
	if s.killedBy == "" {
		s.killedBy, s.killNote = nonEmpty(req.By, "unknown"), req.Reason
	}
	s.requestHangup("killed by an administrator")
	s.mu.Unlock()
	m.logger().Info("session killed by an administrator", "id", s.info.ID, safelog.String("user", s.info.User),
		"app", s.info.App, "pid", s.info.PID, safelog.String("by", req.By), "reason", safelog.Text(req.Reason, maxKillReason))
	m.Audit.Emit("kill", s.info.ID, s.info.User, "app", s.info.App, "pid", s.info.PID, "by", req.By, "reason", req.Reason)
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// exitResult is how the session ends for its attachment: the app's own
// result, or, for a session an administrator killed, control.ExitKilled
// with the line the user reads.
func (s *session) exitResult() exitResult {
	s.mu.Lock()
	by, note := s.killedBy, s.killNote
	s.mu.Unlock()
	if by == "" {
		return s.result
	}
	line := killLine
	if note != "" {
		line += ": " + safelog.Text(oneLine(note), maxKillReason)
	}
	return exitResult{status: control.ExitKilled, note: line + "\r\n"}
}

// auditSpawn records a session started by a spawn or a pre-launch.
func (m *Manager) auditSpawn(s *session, gateway string, prelaunch bool) {
	m.Audit.Emit("spawn", s.info.ID, s.info.User, "app", s.info.App, "argv", s.argv, "pid", s.info.PID,
		"unix_user", s.unixUser, "mode", s.mode(), "gateway", gateway, "prelaunch", prelaunch)
}

// auditAttach records an attachment: the first of a spawned session
// ("attach"), or a later one ("resume", and "takeover" when it replaced
// an attached one).
func (m *Manager) auditAttach(s *session, event, gateway string) {
	m.Audit.Emit(event, s.info.ID, s.info.User, "app", s.info.App, "pid", s.info.PID, "gateway", gateway)
}

// auditDetach records a session left detached.
func (m *Manager) auditDetach(s *session) {
	m.Audit.Emit("detach", s.info.ID, s.info.User, "app", s.info.App, "pid", s.info.PID, "grace", s.grace)
}

// auditExit records the end of a session: its status or signal, how
// long it ran, the bytes each way, why appd hung it up, and who killed it.
func (m *Manager) auditExit(s *session) {
	kv := []any{"app", s.info.App, "pid", s.info.PID, "duration", time.Since(s.info.Started),
		"bytes_in", s.in.Load(), "bytes_out", s.out.Load()}
	switch r := s.result; {
	case r.lost:
		kv = append(kv, "lost", true)
	case r.signaled:
		kv = append(kv, "signal", signalName(r.signal), "core", r.core)
	default:
		kv = append(kv, "status", r.status)
	}
	if reason := s.hangupReason(); reason != "" {
		kv = append(kv, "hangup", reason)
	}
	s.mu.Lock()
	by := s.killedBy
	s.mu.Unlock()
	if by != "" {
		kv = append(kv, "killed_by", by, "sent_status", control.ExitKilled)
	}
	m.Audit.Emit("exit", s.info.ID, s.info.User, kv...)
}
