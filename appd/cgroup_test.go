package appd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeCgroupfs makes a temp dir stand in for cgroupfs: writes create the
// files they write, and removing a session's directory removes its files.
func fakeCgroupfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	oldRoot, oldRemove := cgroupTestRoot, removeDir
	cgroupTestRoot, removeDir = root, os.RemoveAll
	t.Cleanup(func() { cgroupTestRoot, removeDir = oldRoot, oldRemove })
	return root
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

var cgLimits = Limits{OpenFiles: 1, OpenFilesHard: 1, Processes: 1, Memory: 256 << 20, CPU: 150, Tasks: 64}

func TestCgroupV2WritesLimitsAndMovesPid(t *testing.T) {
	root := fakeCgroupfs(t)
	c := &Cgroups{v2: true, dirs: map[string]string{ctrlMemory: root, ctrlPids: root, ctrlCPU: root}}
	g, err := c.create("abc", cgLimits)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "session-abc")
	if _, err := os.Stat(filepath.Join(dir, "pids.max")); !os.IsNotExist(err) {
		t.Errorf("pids.max written before the app runs: %v", err)
	}
	if err := g.started(); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"memory.max": "268435456", "memory.swap.max": "0", "memory.oom.group": "1",
		"pids.max": "64", "cpu.max": "150000 100000",
	} {
		if got := readTrim(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if err := g.add(4242); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dir, "cgroup.procs")); got != "4242" {
		t.Errorf("cgroup.procs = %q, want the pid", got)
	}
	if n := g.oomKills(); n != 0 {
		t.Errorf("oomKills = %d before any", n)
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n"), 0o644)
	if n := g.oomKills(); n != 1 {
		t.Errorf("oomKills = %d, want 1", n)
	}
	os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644) // the session's processes are gone
	if err := g.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("session group still there: %v", err)
	}
}

func TestCgroupV1WritesEachHierarchy(t *testing.T) {
	root := fakeCgroupfs(t)
	mem, pids, cpu := filepath.Join(root, "memory"), filepath.Join(root, "pids"), filepath.Join(root, "cpu")
	for _, d := range []string{mem, pids, cpu} {
		os.Mkdir(d, 0o755)
	}
	c := &Cgroups{dirs: map[string]string{ctrlMemory: mem, ctrlPids: pids, ctrlCPU: cpu}}
	l := cgLimits
	l.CPU = Unlimited // no cpu group then
	g, err := c.create("x1", l)
	if err != nil {
		t.Fatal(err)
	}
	g.started()
	for path, want := range map[string]string{
		"memory/session-x1/memory.limit_in_bytes": "268435456", "memory/session-x1/memory.memsw.limit_in_bytes": "268435456",
		"pids/session-x1/pids.max": "64",
	} {
		if got := readTrim(t, filepath.Join(root, path)); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(cpu, "session-x1")); !os.IsNotExist(err) {
		t.Errorf("a cpu group without a cpu limit: %v", err)
	}
	g.add(77)
	for _, d := range []string{mem, pids} {
		if got := readTrim(t, filepath.Join(d, "session-x1", "cgroup.procs")); got != "77" {
			t.Errorf("%s: cgroup.procs = %q", d, got)
		}
	}
	os.WriteFile(filepath.Join(mem, "session-x1", "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 0o644)
	if n := g.oomKills(); n != 3 {
		t.Errorf("oomKills = %d, want 3", n)
	}
	if missing := (&Cgroups{dirs: map[string]string{ctrlPids: pids}}).Missing(cgLimits); strings.Join(missing, ",") != "memory,cpu" {
		t.Errorf("Missing = %v, want memory and cpu", missing)
	}
}

// Lines from a host with v1 controllers and an empty v2 hierarchy (this
// project's test machine), and from a systemd host on v2.
const (
	mountinfoV1 = `25 30 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
29 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
33 25 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
34 25 0:31 / /sys/fs/cgroup/my\040dir rw,relatime - cgroup cgroup rw,cpuacct
`
	procCgroupV1 = `8:pids:/
4:memory:/process_api/e664
1:cpu:/
0::/
`
	mountinfoV2   = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	procCgroupV2  = "0::/system.slice/switchyard-appd@s1.service\n"
	v2Controllers = "cpuset cpu io memory hugetlb pids rdma misc\n"
)

func TestParseMountinfoAndProcCgroup(t *testing.T) {
	m := parseMountinfo([]byte(mountinfoV1))
	if len(m) != 4 || !m[3].v2 || m[3].point != "/sys/fs/cgroup/unified" || m[1].ctrls[0] != "memory" {
		t.Fatalf("mounts = %+v", m)
	}
	pc := parseProcCgroup([]byte(procCgroupV1))
	if pc.v2 != "/" || pc.v1["memory"] != "/process_api/e664" || m[1].dir(pc.v1["memory"]) != "/sys/fs/cgroup/memory/process_api/e664" {
		t.Errorf("proc cgroup = %+v", pc)
	}
	if got := unescapeMount(`/a\040b\134c`); got != `/a b\c` {
		t.Errorf("unescape = %q", got)
	}
	sub := mount{root: "/process_api", point: "/sys/fs/cgroup/memory"}
	if got := sub.dir("/process_api/e664"); got != "/sys/fs/cgroup/memory/e664" {
		t.Errorf("dir under a mount of a subtree = %q", got)
	}
}

// TestDiscoverV2Delegated: under systemd with Delegate=yes, the sessions'
// groups go beside a "supervisor" leaf in appd's own group, whose
// controllers appd enables for its children.
func TestDiscoverV2Delegated(t *testing.T) {
	root := fakeCgroupfs(t)
	own := filepath.Join(root, "system.slice", "switchyard-appd@s1.service")
	os.MkdirAll(own, 0o755)
	os.WriteFile(filepath.Join(own, "cgroup.controllers"), []byte(v2Controllers), 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.procs"), nil, 0o644) // moved already
	mounts := parseMountinfo([]byte(strings.Replace(mountinfoV2, "/sys/fs/cgroup", root, 1)))
	c, err := discoverCgroups(mounts, parseProcCgroup([]byte(procCgroupV2)))
	if err != nil {
		t.Fatal(err)
	}
	if !c.v2 || c.dirs[ctrlMemory] != own || c.dirs[ctrlPids] != own || c.dirs[ctrlCPU] != own {
		t.Errorf("cgroups = %v", c)
	}
	if got := readTrim(t, filepath.Join(own, "cgroup.subtree_control")); got != "+memory +pids +cpu" {
		t.Errorf("subtree_control = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(own, "supervisor")); err != nil || !fi.IsDir() {
		t.Errorf("no supervisor leaf: %v", err)
	}
}

// TestDiscoverFallsBackToV1: a v2 hierarchy without the memory controller
// (this project's test machine) is passed over for the v1 hierarchies.
func TestDiscoverFallsBackToV1(t *testing.T) {
	root := fakeCgroupfs(t)
	mi := strings.ReplaceAll(mountinfoV1, "/sys/fs/cgroup", root)
	for _, d := range []string{"cpu", "memory/process_api/e664", "pids", "unified"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "unified", "cgroup.controllers"), []byte("hugetlb\n"), 0o644)
	c, err := discoverCgroups(parseMountinfo([]byte(mi)), parseProcCgroup([]byte(procCgroupV1)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ctrlMemory: root + "/memory/process_api/e664/switchyard", ctrlPids: root + "/pids/switchyard", ctrlCPU: root + "/cpu/switchyard"}
	if c.v2 || len(c.dirs) != 3 {
		t.Fatalf("cgroups = %v", c)
	}
	for ctrl, dir := range want {
		if c.dirs[ctrl] != dir {
			t.Errorf("%s: %q, want %q", ctrl, c.dirs[ctrl], dir)
		}
	}
}

// TestDiscoverV2NotOurs: a v2 group holding another process (appd started
// from a shell, not as a service) is not appd's to manage: nothing is
// moved, and with no v1 hierarchy there is nowhere for sessions' groups.
func TestDiscoverV2NotOurs(t *testing.T) {
	root := fakeCgroupfs(t)
	own := filepath.Join(root, "user.slice", "session-3.scope")
	os.MkdirAll(own, 0o755)
	os.WriteFile(filepath.Join(own, "cgroup.controllers"), []byte(v2Controllers), 0o644)
	os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte("1234\n"), 0o644)
	mounts := parseMountinfo([]byte(strings.Replace(mountinfoV2, "/sys/fs/cgroup", root, 1)))
	_, err := discoverCgroups(mounts, parseProcCgroup([]byte("0::/user.slice/session-3.scope\n")))
	if err == nil || !strings.Contains(err.Error(), "holds other processes") {
		t.Errorf("err = %v, want the group refused", err)
	}
	if _, err := os.Stat(filepath.Join(own, "supervisor")); !os.IsNotExist(err) {
		t.Errorf("a supervisor leaf made in a group not appd's: %v", err)
	}
}

// TestNoCgroupsEnforceNothing: where appd found no control groups (a nil
// *Cgroups, as in a network namespace with /sys remounted), every
// group-enforced limit is reported missing, and nothing panics.
func TestNoCgroupsEnforceNothing(t *testing.T) {
	var c *Cgroups
	got := c.Missing(Limits{Memory: 1 << 20, Tasks: 4, CPU: 50})
	if want := []string{"memory", "tasks", "cpu"}; !slices.Equal(got, want) {
		t.Fatalf("Missing = %v, want %v", got, want)
	}
	if c.Has(ctrlMemory) || c.String() != "none" {
		t.Fatalf("a nil Cgroups has %v, reads %q", c.Has(ctrlMemory), c.String())
	}
}
