package appd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Each session with a memory, CPU or tasks limit gets a control group of
// its own, "session-ID", which its first process joins before it runs (see
// shim.go) and every process it starts inherits. appd writes cgroupfs
// itself; it does not ask systemd over D-Bus for a transient scope.
//
// With cgroup v2 and the memory controller, the groups go in appd's own
// group when that is not the root: under systemd, the unit's group, which
// Delegate=yes hands to appd. Since a v2 group with processes may not
// enable controllers for its children, appd first moves its own processes
// into a leaf, "supervisor", beside the sessions. When appd runs in the
// root group, they go in a group "switchyard" made under the root.
//
// Otherwise, with cgroup v1 (the memory, pids and cpu hierarchies, those
// of them that are mounted and writable), each hierarchy gets a group
// "switchyard" under appd's own group there, and the sessions' groups go
// in it.

// Controllers appd uses, with the Limits field each serves.
const (
	ctrlMemory = "memory"
	ctrlPids   = "pids"
	ctrlCPU    = "cpu"
)

// cpuPeriod is the CPU accounting period, in microseconds; a limit of
// P percent gives P/100 of it.
const cpuPeriod = 100000

// Cgroups makes the sessions' control groups. Its methods are safe for
// concurrent use.
type Cgroups struct {
	v2   bool
	dirs map[string]string // controller → directory the sessions' groups are made in
}

// String describes where the groups go, for the log.
func (c *Cgroups) String() string {
	if c == nil {
		return "none"
	}
	var parts []string
	for _, ctrl := range []string{ctrlMemory, ctrlPids, ctrlCPU} {
		if d, ok := c.dirs[ctrl]; ok {
			parts = append(parts, ctrl+"="+d)
		}
	}
	v := "v1"
	if c.v2 {
		v = "v2"
	}
	return "cgroup " + v + " " + strings.Join(parts, " ")
}

// Has reports whether the groups get controller ctrl ("memory", "pids",
// "cpu").
func (c *Cgroups) Has(ctrl string) bool {
	if c == nil {
		return false
	}
	_, ok := c.dirs[ctrl]
	return ok
}

// cgroup is one session's group: a directory per hierarchy.
type cgroup struct {
	v2     bool
	dirs   []string // the session's directory in each hierarchy
	memDir string   // the one with the memory controller; "" if none
	memory uint64   // the memory limit, for the user's line
	late   []string // files to write once the app runs (see started)
	once   sync.Once
}

// create makes the group of session id with l's limits. Limits whose
// controller appd has not got are left out: Missing reports them.
func (c *Cgroups) create(id string, l Limits) (*cgroup, error) {
	g := &cgroup{v2: c.v2, memory: l.Memory}
	files := c.limitFiles(l)
	for _, ctrl := range []string{ctrlMemory, ctrlPids, ctrlCPU} {
		parent, ok := c.dirs[ctrl]
		if !ok || len(files[ctrl]) == 0 {
			continue
		}
		dir := filepath.Join(parent, "session-"+id)
		if !slices.Contains(g.dirs, dir) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				g.remove()
				return nil, fmt.Errorf("cgroup: %w", err)
			}
			g.dirs = append(g.dirs, dir)
		}
		if ctrl == ctrlMemory {
			g.memDir = dir
		}
		for _, f := range files[ctrl] {
			if f.late {
				g.late = append(g.late, filepath.Join(dir, f.name), f.value)
				continue
			}
			err := writeFile(filepath.Join(dir, f.name), f.value)
			if err != nil && !f.optional {
				g.remove()
				return nil, fmt.Errorf("cgroup: %w", err)
			}
		}
	}
	return g, nil
}

// Missing lists the limits of l that the groups cannot enforce, for a
// warning: "memory", "tasks", "cpu".
func (c *Cgroups) Missing(l Limits) []string {
	var out []string
	for _, x := range []struct {
		ctrl, name string
		set        bool
	}{{ctrlMemory, "memory", l.Memory != Unlimited}, {ctrlPids, "tasks", l.Tasks != Unlimited}, {ctrlCPU, "cpu", l.CPU != Unlimited}} {
		if x.set && !c.Has(x.ctrl) {
			out = append(out, x.name)
		}
	}
	return out
}

// limitFile is one value to write in a session's group.
type limitFile struct {
	name, value string
	optional    bool // the file may not exist (no swap accounting, older kernels)
	late        bool // written once the app runs: the shim's Go runtime has threads of its own
}

// limitFiles lists, per controller, the files l's limits are written to.
func (c *Cgroups) limitFiles(l Limits) map[string][]limitFile {
	files := map[string][]limitFile{}
	if l.Memory != Unlimited {
		n := strconv.FormatUint(l.Memory, 10)
		if c.v2 {
			files[ctrlMemory] = []limitFile{{"memory.max", n, false, false}, {"memory.swap.max", "0", true, false},
				{"memory.oom.group", "1", true, false}}
		} else {
			files[ctrlMemory] = []limitFile{{"memory.limit_in_bytes", n, false, false}, {"memory.memsw.limit_in_bytes", n, true, false}}
		}
	}
	if l.Tasks != Unlimited {
		files[ctrlPids] = []limitFile{{"pids.max", strconv.FormatUint(l.Tasks, 10), false, true}}
	}
	if l.CPU != Unlimited {
		quota := strconv.FormatUint(l.CPU*cpuPeriod/100, 10)
		if c.v2 {
			files[ctrlCPU] = []limitFile{{"cpu.max", quota + " " + strconv.Itoa(cpuPeriod), false, false}}
		} else {
			files[ctrlCPU] = []limitFile{{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod), false, false}, {"cpu.cfs_quota_us", quota, false, false}}
		}
	}
	return files
}

// add moves process pid (all its threads) into the group.
func (g *cgroup) add(pid int) error {
	for _, dir := range g.dirs {
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
	}
	return nil
}

// started writes the limits that wait for the app to run: the tasks
// limit, which the shim, a Go program with a few threads, could exceed
// before it execs the app. A process the app forks before this write
// counts against the limit but is not refused.
func (g *cgroup) started() error {
	if g == nil {
		return nil
	}
	for i := 0; i+1 < len(g.late); i += 2 {
		if err := writeFile(g.late[i], g.late[i+1]); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
	}
	return nil
}

// oomKills returns how many processes of the group the kernel killed for
// want of memory within its limit: "oom_kill N" in memory.events (v2) or
// memory.oom_control (v1). 0 if unknown.
func (g *cgroup) oomKills() int {
	if g == nil || g.memDir == "" {
		return 0
	}
	name := "memory.oom_control"
	if g.v2 {
		name = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(g.memDir, name))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// removeTimeout bounds how long remove waits for the group's processes
// to be gone.
const removeTimeout = 2 * time.Second

// removeDir removes a session's directory; a variable so that tests on a
// plain directory standing in for cgroupfs can remove its files too.
var removeDir = func(dir string) error { return unix.Rmdir(dir) }

// remove kills what is left in the group (the session is over) and
// removes its directories, once. A directory whose processes do not go
// within removeTimeout is left, and the error says so.
func (g *cgroup) remove() error {
	if g == nil {
		return nil
	}
	var err error
	g.once.Do(func() {
		var errs []error
		for _, dir := range g.dirs {
			errs = append(errs, removeGroup(dir, g.v2))
		}
		err = errors.Join(errs...)
	})
	return err
}

// removeGroup empties and removes one directory.
func removeGroup(dir string, v2 bool) error {
	deadline := time.Now().Add(removeTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		killGroup(dir, v2)
		err := removeDir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("cgroup: remove %s: %w", dir, err)
		}
		time.Sleep(delay) // the kernel frees a killed group's processes asynchronously
	}
}

// killGroup sends SIGKILL to every process in dir: with cgroup.kill where
// the kernel has it (v2, Linux 5.14), else one by one.
func killGroup(dir string, v2 bool) {
	if v2 && writeFile(filepath.Join(dir, "cgroup.kill"), "1") == nil {
		return
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// writeFile writes value to a cgroupfs file, which must exist.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, fs.ErrNotExist) && cgroupTestDir(path) {
		f, err = os.Create(path)
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

// cgroupTestRoot, when set (tests), is a plain directory standing in for
// cgroupfs, where writes create the files they write.
var cgroupTestRoot string

func cgroupTestDir(path string) bool {
	return cgroupTestRoot != "" && strings.HasPrefix(path, cgroupTestRoot)
}

// mount is a cgroup filesystem mounted in this process's namespace.
type mount struct {
	root, point string // the mount's root within the hierarchy, and where it is mounted
	v2          bool
	ctrls       []string // v1: the controllers of this hierarchy
}

// parseMountinfo lists the cgroup mounts of /proc/self/mountinfo.
func parseMountinfo(data []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out = append(out, mount{root: unescapeMount(f[3]), point: unescapeMount(f[4]), v2: true})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(g[2], ",") {
				if o == ctrlMemory || o == ctrlPids || o == ctrlCPU {
					ctrls = append(ctrls, o)
				}
			}
			if len(ctrls) > 0 {
				out = append(out, mount{root: unescapeMount(f[3]), point: unescapeMount(f[4]), ctrls: ctrls})
			}
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// procCgroups are this process's groups from /proc/self/cgroup: the v2
// path ("" if none) and, per v1 controller, its path.
type procCgroups struct {
	v2 string
	v1 map[string]string
}

func parseProcCgroup(data []byte) procCgroups {
	pc := procCgroups{v1: map[string]string{}}
	for line := range strings.Lines(string(data)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			pc.v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			pc.v1[c] = parts[2]
		}
	}
	return pc
}

// dir turns a group path from /proc/self/cgroup into a directory
// under mount m.
func (m mount) dir(path string) string {
	rel := path
	if m.root != "/" {
		rel = strings.TrimPrefix(path, m.root)
	}
	return filepath.Join(m.point, rel)
}
