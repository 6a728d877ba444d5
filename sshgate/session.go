package sshgate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/safelog"
	"switchyard/sshmsg"
)

// errClientGone is the cancel cause of a session whose client closed the
// channel or dropped the connection.
var errClientGone = errors.New("client disconnected")

// Limits on what a client may send before the app starts.
const (
	maxEnv      = 64   // env variables kept
	maxEnvBytes = 1024 // bytes of one name plus value
	maxTerm     = 64   // bytes of TERM
)

// session is one client "session" channel.
type session struct {
	id     identity
	client gossh.Channel
	addr   string // client address
	conn   string // the connection's id in the audit trail
	here   string // the address the client reached, for the resume hint
	log    *slog.Logger
	start  chan string     // the exec command ("" for shell), sent once
	cmd    string          // that command, once received; set by run before anything reads it
	in     *input          // the one pump of the client's input, once started (see input); used by run's goroutine only
	reqs   *clientRequests // serves the client's requests, in a goroutine or in the bridge
	act    activity        // when a byte last moved either way
	unsent int             // bytes of client input no app received, once the bridge is over

	mu       sync.Mutex // guards the fields below
	started  bool       // shell or exec received
	pty      *control.PtySpec
	env      map[string]string
	app      gossh.Channel         // appd channel once the app runs
	winch    []byte                // latest window-change payload not yet forwarded
	onResize func(control.PtySpec) // NoApp's, while it runs (Terminal.OnResize)
}

// handleChannel is gliderlabs' ChannelHandler for "session". It replaces
// gliderlabs' Session, whose Write rewrites "\n" to "\r\n" under a PTY.
func (s *Server) handleChannel(_ *gliderssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, gctx gliderssh.Context) {
	s.handlers.Add(1)
	defer s.handlers.Add(-1)
	id, ok := identityOf(conn)
	if !ok {
		nc.Reject(gossh.Prohibited, "not authenticated")
		return
	}
	if n, _ := gctx.Value(channelsKey{}).(*atomic.Int64); n != nil {
		if max := s.maxChannelsPerConn(); n.Add(1) > int64(max) {
			n.Add(-1)
			s.logger().Info("session channel refused", "user", id.User, "client", conn.RemoteAddr().String(), "reason", "too many sessions on this connection")
			nc.Reject(gossh.ResourceShortage, fmt.Sprintf("switchyard: too many sessions on this connection (%d)", max))
			return
		}
		defer n.Add(-1)
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		s.logger().Debug("accept session channel", "err", err)
		return
	}
	s.keepalive(gctx, conn)
	ctx, cancel := context.WithCancelCause(gctx)
	defer cancel(nil)
	addr := conn.RemoteAddr().String()
	ss := &session{
		id:     id,
		client: ch,
		addr:   addr,
		conn:   connOf(gctx),
		here:   conn.LocalAddr().String(),
		log:    s.logger().With("user", id.User, "client", addr),
		start:  make(chan string, 1),
	}
	ss.reqs = &clientRequests{ss: ss, ch: reqs, gone: func() { cancel(errClientGone) }}
	ss.reqs.background()
	s.run(ctx, ss)
}

// serveRequest answers one of the client's channel requests. The
// requests must be served until the channel closes (see clientRequests):
// an unread request channel stalls the whole SSH connection.
func (ss *session) serveRequest(req *gossh.Request) {
	ok, then := ss.handleRequest(req)
	if req.WantReply {
		req.Reply(ok, nil)
	}
	if then != nil {
		then() // after the reply, so it precedes anything the session sends
	}
}

// handleRequest applies one client request. then, if not nil, runs after
// the reply has been sent.
func (ss *session) handleRequest(req *gossh.Request) (ok bool, then func()) {
	switch req.Type {
	case "pty-req":
		return ss.ptyReq(req.Payload), nil
	case "env":
		return ss.setEnv(req.Payload), nil
	case "window-change":
		return ss.windowChange(req.Payload), nil
	case "signal":
		return ss.forward(req), nil
	case "shell", "exec":
		return ss.startReq(req)
	default:
		// subsystem, x11-req, auth-agent-req@openssh.com,
		// keepalive@openssh.com and anything unknown.
		return false, nil
	}
}

func (ss *session) ptyReq(payload []byte) bool {
	var m sshmsg.PtyReq
	if gossh.Unmarshal(payload, &m) != nil || len(m.Term) > maxTerm {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.started {
		return false
	}
	ss.pty = &control.PtySpec{Term: m.Term, Cols: m.Cols, Rows: m.Rows, Modes: parseModes(m.Modes)}
	return true
}

// setEnv keeps LANG, LC_*, COLORTERM and RegionEnv; it reports whether it kept the
// variable.
func (ss *session) setEnv(payload []byte) bool {
	var m sshmsg.Env
	if gossh.Unmarshal(payload, &m) != nil || !envAllowed(m.Name) || len(m.Name)+len(m.Value) > maxEnvBytes {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.started || len(ss.env) >= maxEnv {
		return false
	}
	if ss.env == nil {
		ss.env = make(map[string]string)
	}
	ss.env[m.Name] = m.Value
	return true
}

func envAllowed(name string) bool {
	return name == "LANG" || name == "COLORTERM" || name == RegionEnv || strings.HasPrefix(name, "LC_")
}

// windowChange records the new size and forwards the request once the app
// runs; before that it keeps the latest for after the start.
func (ss *session) windowChange(payload []byte) bool {
	var m sshmsg.WindowChange
	if gossh.Unmarshal(payload, &m) != nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.pty != nil {
		ss.pty.Cols, ss.pty.Rows = m.Cols, m.Rows
		if ss.onResize != nil {
			ss.onResize(*ss.pty)
		}
	}
	if ss.app == nil {
		ss.winch = payload
		return true
	}
	_, err := ss.app.SendRequest("window-change", false, payload)
	return err == nil
}

// forward passes a request to the app, once it runs.
func (ss *session) forward(req *gossh.Request) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.app == nil {
		return false
	}
	_, err := ss.app.SendRequest(req.Type, false, req.Payload)
	return err == nil
}

// startReq accepts the first shell or exec request; the session starts
// after the reply.
func (ss *session) startReq(req *gossh.Request) (bool, func()) {
	var cmd string
	if req.Type == "exec" {
		var m sshmsg.Exec
		if gossh.Unmarshal(req.Payload, &m) != nil {
			return false, nil
		}
		cmd = m.Command
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.started {
		return false, nil
	}
	ss.started = true
	return true, func() { ss.start <- cmd }
}

// attach makes the running app the target of window changes and signals,
// and forwards the latest window change that arrived before it started.
func (ss *session) attach(app gossh.Channel) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.app = app
	if ss.winch != nil {
		app.SendRequest("window-change", false, ss.winch)
		ss.winch = nil
	}
}

// detach stops forwarding to the app.
func (ss *session) detach() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.app = nil
}

// spawnRequest describes the session to appd.
func (ss *session) spawnRequest(app string, args []string) control.SpawnRequest {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	req := control.SpawnRequest{App: app, User: ss.id.User, Args: args, Env: maps.Clone(ss.env)}
	if ss.pty != nil {
		p := *ss.pty
		req.Pty = &p
	}
	return req
}

// envValue returns the client's environment variable name, "" if unset.
func (ss *session) envValue(name string) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.env[name]
}

// ptySpec returns a copy of the client's terminal, nil without a PTY.
func (ss *session) ptySpec() *control.PtySpec {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.pty == nil {
		return nil
	}
	p := *ss.pty
	return &p
}

// input returns the session's input pump, starting it on first use: the
// picker's input, then the app's, are its targets in turn.
func (ss *session) input() *input {
	if ss.in == nil {
		ss.in = startInput(touchReader{ss.client, &ss.act})
	}
	return ss.in
}

// terminal lends the client side to NoApp, with in as its input.
func (ss *session) terminal(in io.Reader) Terminal {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	t := Terminal{User: ss.id.User, In: in, Out: ss.client, ss: ss}
	if ss.pty != nil {
		p := *ss.pty
		t.Pty = &p
	}
	return t
}

// setOnResize makes f hear each window change; nil stops it. f hears at
// once of a change since seen, the size its caller knows (nil: none).
func (ss *session) setOnResize(f func(control.PtySpec), seen *control.PtySpec) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.onResize = f
	if f != nil && ss.pty != nil && seen != nil && (ss.pty.Cols != seen.Cols || ss.pty.Rows != seen.Rows) {
		f(*ss.pty)
	}
}

// hasPty reports whether the client asked for a PTY.
func (ss *session) hasPty() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.pty != nil
}

// eol is the line ending the client's terminal wants: "\r\n" under a PTY,
// whose client side is in raw mode, else "\n".
func (ss *session) eol() string {
	if ss.hasPty() {
		return "\r\n"
	}
	return "\n"
}

// fail shows f to the user as one line on stderr and ends the session with
// its exit status; the log gets the full error.
func (ss *session) fail(f *failure) {
	level, msg := slog.LevelInfo, "session failed"
	switch f.Status {
	case exitUnavailable:
		level = slog.LevelWarn
	case exitSoftware:
		level = slog.LevelError
	case exitRedirect:
		msg = "session redirected"
	}
	ss.log.Log(context.Background(), level, msg, "status", f.Status, "err", f.Error())
	text := "switchyard: " + safelog.Text(f.Line, maxLine) + ss.eol()
	if f.Also != "" {
		text += safelog.Text(f.Also, maxLine) + ss.eol()
	}
	ss.client.Stderr().Write([]byte(text))
	ss.exit(f.Status)
}

// maxLine caps the one line a user is told: it may quote what they typed
// (an app name), or a reason from another node.
const maxLine = 2048

// exit sends an exit status and closes the channel.
func (ss *session) exit(status int) {
	ss.client.SendRequest("exit-status", false, gossh.Marshal(sshmsg.ExitStatus{Status: uint32(status)}))
	ss.client.CloseWrite()
	ss.client.Close()
}
