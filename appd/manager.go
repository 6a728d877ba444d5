package appd

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"switchyard/audit"
	"switchyard/control"
	"switchyard/safelog"
)

// App is one program this server may run. cmd wiring copies it from the
// cluster config; appd never sees the config struct.
type App struct {
	Argv      []string          // program and fixed arguments, required; never run through a shell
	Env       map[string]string // added last to the session's environment
	Dir       string            // working directory; the run-as user's home if it exists, else "/"
	User      string            // Unix user to run as when appd runs as root; required then
	AllowRoot bool              // permit User to resolve to uid 0
	AllowArgs bool              // append the request's Args to Argv, as separate argv entries
	Grace     time.Duration     // how long a PTY session whose channel went away keeps running, detached; 0 hangs it up at once
	Record    string            // RecordOff, RecordOutput or RecordInput: what a PTY session's recording holds
	Limits    Limits            // resource limits of each session; the zero Limits sets none
}

// Manager runs the sessions of one app server. Its zero value is usable once
// SetApps has been called; set the exported fields before the first
// HandleSpawn and do not change them afterwards.
type Manager struct {
	Server      string       // this server's node name, copied into SessionInfo
	MaxSessions int          // most sessions running at once; 0 means unlimited
	Logger      *slog.Logger // slog.Default() if nil
	// Keeper, if set, kills every app's process group should appd die
	// (see StartKeeper). Without it only each app's leader is killed.
	Keeper *Keeper
	// Audit, if set, receives the audit events of this server: spawn,
	// attach, detach, resume, takeover, exit, kill.
	Audit *audit.Log
	// Shim, if set, starts apps with limits through appd's own binary, so
	// that their limits hold before they run (see shim.go). Without it
	// the limits are set just after the app started: a fast app may fork
	// or open files before they hold.
	Shim *Shim
	// Cgroups, if set, gives each session with a memory, CPU or tasks
	// limit a control group (see cgroup.go). Without it those limits are
	// not enforced (the first spawn logs a warning).
	Cgroups *Cgroups

	mu       sync.Mutex          // guards the fields below
	apps     map[string]App      // current app table, replaced whole by SetApps
	sessions map[string]*session // running sessions by id
	pending  int                 // capacity slots reserved by spawns not yet registered
	closed   bool                // Shutdown has begun: no new sessions
	gateways map[string]bool     // gateways that reach this server (SetGateways)
	rec      Recording           // recording settings (SetRecording)
	watchers map[string]*watcher // admins watching, by watcher id (watch.go)

	handlers    sync.WaitGroup  // one per HandleSpawn that got past reserve
	refused     safelog.Repeats // channels refused per gateway, see refusalLog
	refusedOnce sync.Once
	failures    codeCounts // refused spawns by code, for Stats
}

// SetApps replaces the app table. It is safe to call while sessions run (a
// config reload): running sessions keep the App they started with, new
// spawns see the new table. The map and its values are copied.
func (m *Manager) SetApps(apps map[string]App) {
	table := make(map[string]App, len(apps))
	for name, app := range apps {
		app.Argv = slices.Clone(app.Argv)
		app.Env = maps.Clone(app.Env)
		table[name] = app
	}
	m.mu.Lock()
	m.apps = table
	m.mu.Unlock()
}

// SetMaxSessions changes the capacity for new spawns (config reload);
// running sessions are never ended for it. Use it instead of writing
// MaxSessions once the Manager serves.
func (m *Manager) SetMaxSessions(n int) {
	m.mu.Lock()
	m.MaxSessions = n
	m.mu.Unlock()
}

// Sessions returns a snapshot of the running sessions, oldest first, each
// with its State (control.StateAttached or StateDetached) and, if detached,
// since when.
func (m *Manager) Sessions() []control.SessionInfo {
	running := m.snapshot()
	infos := make([]control.SessionInfo, 0, len(running))
	for _, s := range running {
		infos = append(infos, s.view())
	}
	slices.SortFunc(infos, func(a, b control.SessionInfo) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return infos
}

// Len returns the number of running sessions.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Shutdown refuses new spawns, hangs up every running app (SIGHUP to its
// process group) and waits for every session to end. When ctx ends first,
// it sends SIGKILL to the remaining process groups, closes their terminals
// and pipes, waits up to two more seconds for their handlers, and returns
// ctx.Err().
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	first := !m.closed
	m.closed = true
	running := slices.Collect(maps.Values(m.sessions))
	m.mu.Unlock()
	if first { // sessions registered from now on are signalled by register
		for _, s := range running {
			s.shutdown()
		}
	}
	done := make(chan struct{})
	go func() {
		m.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, s := range m.snapshot() {
		s.kill()
	}
	select {
	case <-done:
	case <-time.After(killGrace):
	}
	return ctx.Err()
}

// lookup returns the named app from the current table.
func (m *Manager) lookup(name string) (App, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	app, ok := m.apps[name]
	return app, ok
}

// reserve takes one capacity slot for a spawn in progress and counts its
// handler; release gives the slot back (register turns it into a session).
func (m *Manager) reserve() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return rejectf(control.CodeNoServer, "server %s is shutting down", m.Server)
	}
	if m.MaxSessions > 0 && len(m.sessions)+m.pending >= m.MaxSessions {
		return rejectf(control.CodeNoServer, "server %s is full (%d sessions)", m.Server, m.MaxSessions)
	}
	m.pending++
	m.handlers.Add(1)
	return nil
}

// release undoes reserve for a spawn that did not become a session.
func (m *Manager) release() {
	m.mu.Lock()
	m.pending--
	m.mu.Unlock()
	m.handlers.Done()
}

// register turns a reserved slot into a running session. A session
// registered once Shutdown has begun is hung up as Shutdown would have.
func (m *Manager) register(s *session) {
	m.mu.Lock()
	m.pending--
	if m.sessions == nil {
		m.sessions = make(map[string]*session)
	}
	m.sessions[s.info.ID] = s
	closed := m.closed
	m.mu.Unlock()
	if closed {
		s.shutdown()
	}
}

// unregister removes an ended session and ends its handler's count.
func (m *Manager) unregister(s *session) {
	m.mu.Lock()
	delete(m.sessions, s.info.ID)
	m.mu.Unlock()
	if !s.isHanded() { // else the next appd ends it
		s.removeCgroup(m.logger())
		if s.viaKeeper {
			s.keeper.Forget(s.pid)
		}
		if s.mirror != nil {
			s.mirror.f.Close()
		}
	}
	m.handlers.Done()
}

// snapshot returns the running sessions.
func (m *Manager) snapshot() []*session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.sessions))
}

// logger returns the injected logger or the default one.
func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}
