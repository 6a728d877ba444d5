package appd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// errNoCgroups is returned by DiscoverCgroups when no hierarchy serves.
var errNoCgroups = errors.New("no writable cgroup v2 hierarchy with the memory controller, nor a writable v1 memory, pids or cpu hierarchy")

// DiscoverCgroups finds where this process may make the sessions' control
// groups (see cgroup.go), prepares it, and returns it; an error if there
// is nowhere. Call it once per process, before any app starts: with cgroup
// v2 in a delegated group it moves the process, and every process in its
// group, into a leaf "supervisor".
func DiscoverCgroups() (*Cgroups, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	pc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return discoverCgroups(parseMountinfo(mi), parseProcCgroup(pc))
}

// discoverCgroups prefers v2, then v1.
func discoverCgroups(mounts []mount, pc procCgroups) (*Cgroups, error) {
	var v2err error
	for _, m := range mounts {
		if m.v2 && pc.v2 != "" {
			c, err := setupV2(m.dir(pc.v2), pc.v2 == "/" || m.dir(pc.v2) == m.point)
			if err == nil {
				return c, nil
			}
			v2err = err
			break
		}
	}
	c, err := setupV1(mounts, pc)
	if err != nil {
		return nil, errors.Join(v2err, err)
	}
	return c, nil
}

// setupV2 prepares own, this process's v2 group, or, when root is set
// (own is the hierarchy's root), a group "switchyard" under it.
func setupV2(own string, root bool) (*Cgroups, error) {
	avail := strings.Fields(readString(filepath.Join(own, "cgroup.controllers")))
	if !slices.Contains(avail, ctrlMemory) {
		return nil, fmt.Errorf("cgroup v2 at %s: no memory controller (has %q)", own, avail)
	}
	var enable []string
	for _, c := range []string{ctrlMemory, ctrlPids, ctrlCPU} {
		if slices.Contains(avail, c) {
			enable = append(enable, "+"+c)
		}
	}
	base := own
	if root {
		base = filepath.Join(own, "switchyard")
		if err := mkdirExist(base); err != nil {
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
		if err := writeFile(filepath.Join(own, "cgroup.subtree_control"), strings.Join(enable, " ")); err != nil {
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
	} else if err := moveToLeaf(own, "supervisor"); err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	if err := writeFile(filepath.Join(base, "cgroup.subtree_control"), strings.Join(enable, " ")); err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	c := &Cgroups{v2: true, dirs: map[string]string{}}
	for _, e := range enable {
		c.dirs[e[1:]] = base
	}
	removeStale(base)
	return c, nil
}

// moveToLeaf moves this process (all its threads, and the children it
// starts from then on) out of group dir into its child leaf, so that dir
// may enable controllers for its children. Any other process in dir (a
// keeper started earlier, or, outside a service, the shell appd was started
// from) means dir is not appd's to manage: moveToLeaf then moves nothing
// and fails.
func moveToLeaf(dir, leaf string) error {
	self := strconv.Itoa(os.Getpid())
	for _, pid := range strings.Fields(readString(filepath.Join(dir, "cgroup.procs"))) {
		if pid != self {
			return fmt.Errorf("%s holds other processes than appd (pid %s): not a group of appd's own", dir, pid)
		}
	}
	to := filepath.Join(dir, leaf)
	if err := mkdirExist(to); err != nil {
		return err
	}
	return writeFile(filepath.Join(to, "cgroup.procs"), strconv.Itoa(os.Getpid()))
}

// setupV1 makes a group "switchyard" under this process's group in each
// v1 hierarchy of memory, pids and cpu that is mounted and writable.
func setupV1(mounts []mount, pc procCgroups) (*Cgroups, error) {
	c := &Cgroups{dirs: map[string]string{}}
	var errs []error
	for _, m := range mounts {
		for _, ctrl := range m.ctrls {
			path, ok := pc.v1[ctrl]
			if !ok || c.Has(ctrl) {
				continue
			}
			base := filepath.Join(m.dir(path), "switchyard")
			if err := mkdirExist(base); err != nil {
				errs = append(errs, fmt.Errorf("cgroup v1 %s: %w", ctrl, err))
				continue
			}
			c.dirs[ctrl] = base
			removeStale(base)
		}
	}
	if len(c.dirs) == 0 {
		return nil, errors.Join(append(errs, errNoCgroups)...)
	}
	return c, nil
}

// staleAge is how old an empty session group must be for removeStale:
// another appd sharing the hierarchy may just have made it.
const staleAge = time.Minute

// removeStale removes the empty groups of sessions a previous appd left.
func removeStale(base string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.IsDir() || !strings.HasPrefix(e.Name(), "session-") || time.Since(info.ModTime()) < staleAge {
			continue
		}
		removeDir(filepath.Join(base, e.Name())) // busy: still in use, leave it
	}
}

func mkdirExist(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

func readString(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}
