package appd

import (
	"fmt"
	"log/slog"
	"os/exec"
	"syscall"
)

// exitOutOfMemory is the exit status a session reports when the kernel
// killed its app for going over the session's memory limit: 128 + SIGKILL,
// as a shell reports a killed command. (exit-signal would make OpenSSH
// exit 255, its own status for a failed connection.)
const exitOutOfMemory = 128 + int(syscall.SIGKILL)

// wrapForLimits makes cmd start through the shim when app has limits and
// the Manager a shim. It returns nil when the app starts directly.
func (m *Manager) wrapForLimits(cmd *exec.Cmd, app App) (*shimLink, error) {
	if !app.Limits.set() || m.Shim == nil {
		return nil, nil
	}
	return m.Shim.wrap(cmd)
}

// limit applies app's limits to the session's just started process: its
// control group, then, through the shim, its resource limits, after which
// the shim execs the app. Without a shim the app already runs, and appd
// sets its resource limits with prlimit(2). On error the caller discards
// the session.
func (m *Manager) limit(s *session, id, name string, app App, link *shimLink) error {
	defer link.close()
	l := app.Limits
	if !l.set() {
		return nil
	}
	rl, err := l.grantable()
	if err != nil {
		m.warnOnce("clamp/"+name, "app limits above appd's own hard limits", "app", name, "err", err)
	}
	if err := m.joinCgroup(s, id, name, l); err != nil {
		return err
	}
	if link != nil {
		if err := link.release(rl); err != nil {
			return err
		}
		return s.cg.started()
	}
	if err := s.cg.started(); err != nil {
		return err
	}
	m.warnOnce("noshim", "limits are set just after each app starts, not before: this program does not run appd's exec shim")
	if err := applyRlimits(s.pid, rl); err != nil {
		m.warnOnce("prlimit/"+name, "app resource limits not set", "app", name, "err", err)
	}
	return nil
}

// joinCgroup gives the session a control group with l's limits and moves
// its process into it, when l has limits a group enforces.
func (m *Manager) joinCgroup(s *session, id, name string, l Limits) error {
	if !l.cgroupWanted() {
		return nil
	}
	if missing := m.Cgroups.Missing(l); len(missing) > 0 {
		m.warnOnce("cgroup/"+name, "app limits not enforced: no control group controller for them",
			"app", name, "limits", missing, "cgroups", m.Cgroups.String())
	}
	if m.Cgroups == nil {
		return nil
	}
	cg, err := m.Cgroups.create(id, l)
	if err != nil {
		return err
	}
	s.mu.Lock() // the reaper reads it (exit) if the app ends meanwhile
	s.cg = cg
	s.mu.Unlock()
	return cg.add(s.pid)
}

// removeCgroup removes the session's control group, killing what is left
// in it: the session is over.
func (s *session) removeCgroup(log *slog.Logger) {
	if err := s.group().remove(); err != nil && log != nil {
		log.Warn("session cgroup left behind", "id", s.info.ID, "err", err)
	}
}

// outOfMemory is r for a session whose group had a process killed for
// want of memory: the user is told, and an app killed by it exits
// exitOutOfMemory.
func (r exitResult) outOfMemory(limit uint64, pty bool) exitResult {
	if r.signaled && r.signal == syscall.SIGKILL {
		r = exitResult{status: exitOutOfMemory}
	}
	r.note = fmt.Sprintf("switchyard: the app ran out of its memory limit (%s)\n", formatSize(limit))
	if pty {
		r.note = "\r\n" + r.note[:len(r.note)-1] + "\r\n"
	}
	return r
}

// formatSize writes n bytes in the largest binary unit dividing it.
func formatSize(n uint64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
