package appd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/safelog"
)

// maxSpawnRequest bounds the extra data of a spawn channel.
const maxSpawnRequest = 64 << 10

// errNoArgv is logged when an app is configured without a program.
var errNoArgv = errors.New("appd: app has an empty argv")

// rejectError refuses a spawn channel. Its Error() is the one line the
// user reads: "code: message"; Err, if any, is the detail for the log.
type rejectError struct {
	Code string // a control.Code* value, for the gateway to map
	Msg  string // one line for the user
	Err  error  // underlying cause, logged only
}

func (e *rejectError) Error() string { return e.Code + ": " + e.Msg }
func (e *rejectError) Unwrap() error { return e.Err }

// rejectf returns a rejectError with a formatted message.
func rejectf(code, format string, args ...any) *rejectError {
	return &rejectError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// rejectWrap is rejectf keeping err as the logged cause.
func rejectWrap(err error, code, format string, args ...any) *rejectError {
	return &rejectError{Code: code, Msg: fmt.Sprintf(format, args...), Err: err}
}

// HandleSpawn serves one control.ChannelSpawn channel from gateway. For a
// batch session it returns when the session has ended and every goroutine
// it started is done; for a PTY session, when its first attachment is over:
// the session may live on, detached, and end later (Shutdown waits for it).
//
// It rejects the channel with one "code: message" line when the request is
// malformed, names no app of this server, carries arguments the app does
// not take, the server is full or shutting down, or the app cannot be
// started. Otherwise it accepts the channel, sends control.RequestStarted,
// relays the app until it exits, and sends its exit status or signal. When
// ctx ends, the app is hung up: SIGHUP to its process group, SIGKILL two
// seconds later. When the channel closes first, a batch app is hung up at
// once, and so is a PTY app whose App.Grace is zero; a PTY app with a grace
// period is detached instead: it keeps running, its output kept, until
// HandleAttach re-attaches it or the grace period ends and it is hung up.
func (m *Manager) HandleSpawn(ctx context.Context, nc ssh.NewChannel, gateway string) {
	log := m.logger().With("gateway", gateway)
	req, app, err := m.resolve(nc.ExtraData())
	client := clientGateway(req.Gateway, gateway)
	if err == nil && ctx.Err() != nil {
		err = rejectf(control.CodeNoServer, "server %s is shutting down", m.Server)
	}
	if err == nil {
		err = m.reserve()
	}
	if err != nil {
		m.reject(nc, log, req, err)
		return
	}
	s, err := m.start(req, app, client)
	if err != nil {
		m.release()
		m.reject(nc, log, req, err)
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		s.discard()
		m.release()
		log.Warn("spawn channel accept failed", safelog.String("app", req.App), safelog.String("user", req.User), "err", err)
		return
	}
	m.register(s)
	logStart(log, s)
	m.auditSpawn(s, client, false)
	if s.term == nil {
		defer m.unregister(s)
		m.auditAttach(s, "attach", client)
		s.serve(ctx, ch, reqs)
		m.logEnd(log, s)
		return
	}
	a := newAttachment(ch, reqs)
	s.attach(a, nil, client, false)
	m.auditAttach(s, "attach", client)
	go func() {
		defer m.unregister(s)
		if s.live(ctx, func() { m.auditExit(s) }) {
			logEnd(log, s)
		}
	}()
	a.relayInput(s)
	m.logDetach(log, s)
}

// resolve parses a spawn request and finds its app.
func (m *Manager) resolve(extra []byte) (control.SpawnRequest, App, error) {
	var req control.SpawnRequest
	if len(extra) > maxSpawnRequest {
		return req, App{}, rejectf(control.CodeInternal,
			"spawn request is %d bytes, more than the %d allowed", len(extra), maxSpawnRequest)
	}
	if err := json.Unmarshal(extra, &req); err != nil {
		return req, App{}, rejectWrap(err, control.CodeInternal, "malformed spawn request")
	}
	app, err := m.resolveRequest(req)
	return req, app, err
}

// resolveRequest finds a spawn request's app and checks its arguments.
func (m *Manager) resolveRequest(req control.SpawnRequest) (App, error) {
	app, ok := m.lookup(req.App)
	if !ok {
		return App{}, rejectf(control.CodeUnknownApp, "no app named %q on this server", safelog.Text(req.App, 0))
	}
	if len(app.Argv) == 0 {
		return App{}, rejectWrap(errNoArgv, control.CodeSpawnFailed,
			"app %q has no program configured on server %s", req.App, m.Server)
	}
	if len(req.Args) > 0 && !app.AllowArgs {
		return App{}, rejectf(control.CodeBadArgs, "app %q takes no arguments", safelog.Text(req.App, 0))
	}
	for i, a := range req.Args {
		if strings.ContainsRune(a, 0) {
			return App{}, rejectf(control.CodeBadArgs, "argument %d contains a NUL byte", i+1)
		}
	}
	return app, nil
}

// start resolves the run-as user, builds the command and starts the app in
// a PTY or with pipes, within its limits. The session is not registered
// yet.
func (m *Manager) start(req control.SpawnRequest, app App, gateway string) (*session, error) {
	acct, err := runAs(req.App, app)
	if err != nil {
		return nil, err
	}
	cmd, err := command(req, app, acct)
	if err != nil {
		return nil, err
	}
	argv := slices.Clone(cmd.Args) // before the shim wraps it: what the app runs
	link, err := m.wrapForLimits(cmd, app)
	if err != nil {
		return nil, spawnFailed(req.App, m.Server, err)
	}
	s := &session{cmd: cmd, keeper: m.Keeper, exited: make(chan struct{}), unixUser: acct.name, argv: argv, inExact: true}
	switch {
	case req.Pty != nil && m.Keeper.Spawns():
		s.grace, s.viaKeeper = app.Grace, true
		err = s.startPTY(req.Pty, acct.cred) // the keeper forks it, from its own spawn thread
	case req.Pty != nil:
		s.grace = app.Grace
		err = onSpawnThread(func() error { return s.startPTY(req.Pty, acct.cred) })
	default:
		err = onSpawnThread(func() error { return s.startBatch(acct.cred) })
	}
	link.started()
	if err != nil {
		link.close()
		return nil, spawnFailed(req.App, m.Server, err)
	}
	id := newID()
	if err := m.limit(s, id, req.App, app, link); err != nil {
		s.discard()
		return nil, spawnFailed(req.App, m.Server, err)
	}
	s.info = control.SessionInfo{
		ID: id, PID: s.pid, User: req.User, App: req.App,
		Server: m.Server, Gateway: gateway, Started: time.Now(),
	}
	if req.Pty != nil {
		s.rec = m.startRecording(s, app.Record, req.Pty)
	}
	s.syncMeta()
	return s, nil
}

// spawnFailed is the rejection for an app that could not be started. The
// user line names the errno, if any; the log gets the whole error.
func spawnFailed(app, server string, err error) *rejectError {
	msg := fmt.Sprintf("app %q could not be started on server %s", app, server)
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg += " (" + errno.Error() + ")"
	}
	return &rejectError{Code: control.CodeSpawnFailed, Msg: msg, Err: err}
}

// reject refuses nc with err's one line and logs why.
func (m *Manager) reject(nc ssh.NewChannel, log *slog.Logger, req control.SpawnRequest, err error) {
	var rej *rejectError
	if !errors.As(err, &rej) {
		rej = rejectWrap(err, control.CodeInternal, "appd could not handle the request")
	}
	line := oneLine(rej.Error())
	m.failures.add(rej.Code)
	log.Info("spawn rejected", safelog.String("app", req.App), safelog.String("user", req.User), "code", rej.Code,
		safelog.String("reason", rej.Msg), "err", rej.Err)
	if err := nc.Reject(ssh.Prohibited, line); err != nil {
		log.Debug("spawn reject failed", "err", err)
	}
}

// oneLine replaces line breaks so a message stays one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// newID returns a session id: 16 random bytes in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails; it crashes the program instead
	return hex.EncodeToString(b[:])
}

func logStart(log *slog.Logger, s *session) {
	log.Info("session started", "id", s.info.ID, "user", s.info.User, "app", s.info.App,
		"pid", s.info.PID, "mode", s.mode())
}

// logDetach logs and audits a session left detached by the attachment
// that just ended, if it was.
func (m *Manager) logDetach(log *slog.Logger, s *session) {
	if v := s.view(); v.State == control.StateDetached {
		log.Info("session detached", "id", v.ID, "user", v.User, "app", v.App, "pid", v.PID, "grace", s.grace)
		m.auditDetach(s)
	}
}

// logEnd logs and audits the end of a session.
func (m *Manager) logEnd(log *slog.Logger, s *session) {
	m.auditExit(s)
	logEnd(log, s)
}

func logEnd(log *slog.Logger, s *session) {
	attrs := []any{"id", s.info.ID, "user", s.info.User, "app", s.info.App, "pid", s.info.PID,
		"status", s.result.String(), "duration", time.Since(s.info.Started).Round(time.Millisecond),
		"bytes_in", s.in.Load(), "bytes_out", s.out.Load()}
	if r := s.hangupReason(); r != "" {
		attrs = append(attrs, "hangup", r)
	}
	log.Info("session ended", attrs...)
}
