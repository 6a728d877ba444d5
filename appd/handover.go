package appd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	"switchyard/control"
)

// A restart of appd keeps its PTY sessions (see Keeper): at a graceful
// one, Handover stops each session's output pump, so that every byte read
// from the terminal has been delivered or kept, hands the keeper the
// session's state and kept output, and closes its attachment, which the
// gateway rides through (it re-attaches within its ride_through window).
// The next appd takes the sessions back with Adopt. After kill -9 or a
// crash, the keeper still holds each terminal and the state sent when the
// session started or last attached or detached; what the dead appd had
// kept for a detached session and what was in flight to the gateway are
// lost, what the app wrote meanwhile waits in the terminal.

// adoptHold is the least time an adopted session waits for its gateway
// to rejoin, even if its app's grace period is shorter (or zero): the
// gateway's ride-through window is 10 s by default.
const adoptHold = 30 * time.Second

// sessionMeta is appd's state of a session as its keeper holds it.
type sessionMeta struct {
	ID       string        `json:"id"`
	User     string        `json:"user"`
	App      string        `json:"app"`
	Gateway  string        `json:"gateway"`
	Started  time.Time     `json:"started"`
	Grace    time.Duration `json:"grace"`
	UnixUser string        `json:"unix_user,omitempty"`
	Argv     []string      `json:"argv,omitempty"`
	Detached time.Time     `json:"detached,omitzero"` // zero while attached
	Cgroup   *cgroupMeta   `json:"cgroup,omitempty"`
	In       int64         `json:"in,omitempty"`
	InExact  bool          `json:"in_exact,omitempty"` // In is final and exact: the session was handed over
	Out      int64         `json:"out,omitempty"`
	// Recording is the session's recording, continued by the next appd.
	Recording *recordingMeta `json:"recording,omitempty"`
}

// cgroupMeta is a session's control group.
type cgroupMeta struct {
	V2     bool     `json:"v2"`
	Dirs   []string `json:"dirs"`
	MemDir string   `json:"mem_dir,omitempty"`
	Memory uint64   `json:"memory,omitempty"`
}

// meta is the session's state for its keeper. Callers hold s.mu.
func (s *session) metaLocked() json.RawMessage {
	m := sessionMeta{ID: s.info.ID, User: s.info.User, App: s.info.App, Gateway: s.info.Gateway,
		Started: s.info.Started, Grace: s.grace, UnixUser: s.unixUser, Argv: s.argv,
		In: s.in.Load(), InExact: s.inFinal, Out: s.out.Load(), Recording: s.rec.meta()}
	if s.gateway != "" {
		m.Gateway = s.gateway
	}
	if s.att == nil {
		m.Detached = s.detached
		if m.Detached.IsZero() {
			m.Detached = time.Now()
		}
	}
	if g := s.cg; g != nil {
		m.Cgroup = &cgroupMeta{V2: g.v2, Dirs: g.dirs, MemDir: g.memDir, Memory: g.memory}
	}
	b, _ := json.Marshal(m) // plain fields: cannot fail
	return b
}

// syncMeta sends the session's state to its keeper, when it has one.
func (s *session) syncMeta() {
	if !s.viaKeeper {
		return
	}
	s.mu.Lock()
	meta := s.metaLocked()
	s.mu.Unlock()
	s.keeper.Meta(s.pid, meta)
}

// Handover readies every PTY session held by the keeper for the next
// appd (see above) and refuses new sessions; it returns how many it
// handed over. Sessions it could not hand over (batch sessions, or with
// no keeper) end as at Shutdown, which the caller runs next.
func (m *Manager) Handover() int {
	m.mu.Lock()
	m.closed = true
	running := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		running = append(running, s)
	}
	m.mu.Unlock()
	n := 0
	for _, s := range running {
		if s.handOver() {
			n++
		}
	}
	return n
}

// handOver stops the session's pump, gives the keeper its state and kept
// output, ends its watchers, closes its recording (the next appd goes on
// with it, see continueRecording) and its attachment. It
// reports false when the session is not the keeper's or is ending.
func (s *session) handOver() bool {
	if !s.viaKeeper || s.term == nil || !s.term.pollable || s.pumped == nil {
		return false
	}
	s.mu.Lock()
	if s.ended || s.closing || s.reaped {
		s.mu.Unlock()
		return false
	}
	s.handed = true
	s.mu.Unlock()
	s.term.master.SetReadDeadline(time.Now()) // the pump returns
	<-s.pumped
	_, exact := s.moveInput(nil) // no more input reaches the terminal: its count is final
	s.outMu.Lock()               // no write to the attachment is under way
	s.mu.Lock()
	s.inFinal = exact
	meta := s.metaLocked()
	if s.mirror == nil && len(s.kept.buf) > 0 {
		if m, err := newKeptFile(); err == nil {
			s.mirror = m
			m.write(s.kept.buf)
		}
	}
	files := []*os.File{s.term.master}
	if s.mirror != nil {
		files = append(files, s.mirror.f)
	}
	a := s.att
	s.att = nil
	s.stopGrace()
	s.endWatchers(true)
	s.mu.Unlock()
	s.outMu.Unlock()
	err := s.keeper.Hold(s.pid, meta, files)
	s.rec.close("handed over to the next appd")
	if a != nil {
		a.ch.Close() // after what was written: the gateway rides through
	}
	return err == nil
}

// isHanded reports whether the session was handed to the next appd.
func (s *session) isHanded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handed
}

// Adopt takes back the sessions a keeper held from an earlier appd: each
// is detached, waiting for its gateway to rejoin or its user to resume,
// until its grace period (at least adoptHold) runs out. A session whose
// state cannot be read is ended. It returns how many it adopted.
func (m *Manager) Adopt(held []HeldApp) int {
	n := 0
	for _, h := range held {
		s, err := m.adopted(h)
		if err != nil {
			m.logger().Error("held app ended: cannot take it back", "pid", h.PID, "err", err)
			closeAll(h.Files)
			m.Keeper.Signal(h.PID, syscall.SIGKILL)
			m.Keeper.Forget(h.PID)
			continue
		}
		m.adopt(s, h.Status)
		n++
	}
	return n
}

// adopted rebuilds a held session.
func (m *Manager) adopted(h HeldApp) (*session, error) {
	var meta sessionMeta
	if err := json.Unmarshal(h.Meta, &meta); err != nil || meta.ID == "" {
		return nil, fmt.Errorf("no session state (%v)", err)
	}
	if len(h.Files) == 0 {
		return nil, fmt.Errorf("session %s: no terminal held", meta.ID)
	}
	s := &session{keeper: m.Keeper, viaKeeper: true, pid: h.PID, exited: make(chan struct{}), pumped: make(chan struct{}),
		grace: meta.Grace, unixUser: meta.UnixUser, argv: meta.Argv, gateway: meta.Gateway,
		info: control.SessionInfo{ID: meta.ID, PID: h.PID, User: meta.User, App: meta.App,
			Server: m.Server, Gateway: meta.Gateway, Started: meta.Started}}
	s.in.Store(meta.In)
	s.inExact = meta.InExact // else the dead appd's last count was lost with it
	s.out.Store(meta.Out)
	s.term = newTerminal(h.Files[0])
	for i, f := range h.Files[1:] {
		b, err := readKeptFile(f)
		if i > 0 || err != nil {
			f.Close()
			continue
		}
		s.mirror = &keptFile{f: f}
		s.keep(b)
	}
	if c := meta.Cgroup; c != nil {
		s.cg = &cgroup{v2: c.V2, dirs: c.Dirs, memDir: c.MemDir, memory: c.Memory}
	}
	if rm := meta.Recording; rm != nil {
		var err error
		if s.rec, err = continueRecording(*rm, m.recording(), meta.ID, meta.App, m.logger()); err != nil {
			m.logger().Error("session no longer recorded", "id", meta.ID, "app", meta.App, "err", err)
		}
	}
	s.detached = meta.Detached
	if s.detached.IsZero() {
		s.detached = time.Now()
	}
	return s, nil
}

// adopt registers an adopted session, runs it, and starts its grace.
func (m *Manager) adopt(s *session, status *int) {
	m.mu.Lock()
	if m.sessions == nil {
		m.sessions = make(map[string]*session)
	}
	m.sessions[s.info.ID] = s
	m.handlers.Add(1)
	m.mu.Unlock()
	hold := max(s.grace-time.Since(s.detached), adoptHold)
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.timer = time.AfterFunc(hold, func() { s.expire(gen, "grace period expired") })
	s.mu.Unlock()
	s.syncMeta()
	log := m.logger().With("gateway", s.info.Gateway)
	log.Info("session taken over", "id", s.info.ID, "user", s.info.User, "app", s.info.App, "pid", s.pid, "hold", hold.Round(time.Second))
	if status != nil { // it exited while no appd was there
		s.collectStatus(*status)
	} else {
		s.startReaping()
	}
	go func() {
		defer m.unregister(s)
		if s.live(context.Background(), func() { m.auditExit(s) }) {
			logEnd(log, s)
		}
	}()
}
