package appd

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"golang.org/x/sys/unix"
)

// Limits bound one session of an app. The resource limits (OpenFiles,
// Processes, Core) are set on the app's first process before it runs (see
// shim.go); Memory, CPU and Tasks apply to the session's control group (see
// cgroup.go), when appd has one to give. Unlimited means no limit.
//
// The zero Limits sets nothing: the app inherits appd's resource limits.
type Limits struct {
	OpenFiles     uint64 // soft RLIMIT_NOFILE
	OpenFilesHard uint64 // hard RLIMIT_NOFILE
	Processes     uint64 // RLIMIT_NPROC: counted per Unix user, across sessions
	Core          uint64 // RLIMIT_CORE, bytes
	Memory        uint64 // bytes of memory (and no swap) for the whole session
	CPU           uint64 // CPU time of the whole session, in percent of one CPU
	Tasks         uint64 // processes and threads in the whole session
}

// Unlimited is a limit that does not limit (RLIM_INFINITY, "max").
const Unlimited = math.MaxUint64

// set reports whether l sets anything.
func (l Limits) set() bool { return l != Limits{} }

// cgroupWanted reports whether l has a limit only a control group enforces.
func (l Limits) cgroupWanted() bool {
	return l.set() && (l.Memory != Unlimited || l.CPU != Unlimited || l.Tasks != Unlimited)
}

// rlimit is one resource limit to set on a process.
type rlimit struct {
	name     string
	resource int
	lim      unix.Rlimit
}

// rlimits lists the resource limits l sets.
func (l Limits) rlimits() []rlimit {
	if !l.set() {
		return nil
	}
	return []rlimit{
		{"open files", unix.RLIMIT_NOFILE, unix.Rlimit{Cur: l.OpenFiles, Max: max(l.OpenFilesHard, l.OpenFiles)}},
		{"processes", unix.RLIMIT_NPROC, unix.Rlimit{Cur: l.Processes, Max: l.Processes}},
		{"core", unix.RLIMIT_CORE, unix.Rlimit{Cur: l.Core, Max: l.Core}},
	}
}

// errClamped is wrapped by grantable when a limit had to be lowered.
var errClamped = errors.New("lowered to appd's own hard limit")

// grantable returns l's resource limits lowered, where need be, to appd's
// own hard limits, which an app's process (not root, or without
// CAP_SYS_RESOURCE) may not exceed: "unlimited" is as much as appd has.
// The error, wrapping errClamped, names the finite limits lowered, for a
// warning.
func (l Limits) grantable() ([]rlimit, error) {
	var clamped []error
	rl := l.rlimits()
	for i, r := range rl {
		var own unix.Rlimit
		if err := unix.Getrlimit(r.resource, &own); err != nil || r.lim.Max <= own.Max {
			continue
		}
		rl[i].lim.Max = own.Max
		rl[i].lim.Cur = min(r.lim.Cur, own.Max)
		if r.lim.Max != Unlimited { // "unlimited" means as much as appd may give: no surprise
			clamped = append(clamped, fmt.Errorf("%s %d:%d: %w", r.name, rl[i].lim.Cur, rl[i].lim.Max, errClamped))
		}
	}
	return rl, errors.Join(clamped...)
}

// applyRlimits sets resource limits on process pid with prlimit(2): what
// appd does for an app started without the shim, already running. It
// needs CAP_SYS_RESOURCE, or the app to run as appd's own user.
func applyRlimits(pid int, rl []rlimit) error {
	for _, r := range rl {
		lim := r.lim
		if err := unix.Prlimit(pid, r.resource, &lim, nil); err != nil {
			return fmt.Errorf("prlimit %s of pid %d: %w", r.name, pid, err)
		}
	}
	return nil
}

// warnOnce logs a warning once per process and key.
var warnOnce sync.Map

func (m *Manager) warnOnce(key, msg string, args ...any) {
	if _, seen := warnOnce.LoadOrStore(key, true); !seen {
		m.logger().Warn(msg, args...)
	}
}
