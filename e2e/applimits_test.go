package e2e

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"switchyard/appd"
)

// ulimitArgv prints the session's soft and hard open-files limits, its
// core size and its process limit (dash's -p), one a line.
const ulimitArgv = `["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c; ulimit -p"]`

// TestAppLimitsStockSSH: an app's resource limits, from [limits] and its
// own [app.NAME.limits] over the defaults, hold in the app the stock
// client reaches (appd's own limits here are far higher).
func TestAppLimitsStockSSH(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, ExtraApps: []string{"ulimit", "ulimitdefault"},
		Extra: `
[limits]
open_files = 1000
[app.ulimit]
argv = ` + ulimitArgv + `
user = "nobody"
[app.ulimit.limits]
open_files = 256
open_files_hard = 512
core = "1M"
processes = 300
[app.ulimitdefault]
argv = ` + ulimitArgv + `
user = "nobody"
`})
	o := GatewayOpenSSH(t, c, "gw1")
	key := o.Key(t, "alice", c.Alice)
	// "unlimited" processes is as many as appd's own hard limit.
	var nproc syscall.Rlimit
	if err := syscall.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		t.Fatal(err)
	}
	procs := strconv.FormatUint(nproc.Max, 10)
	if nproc.Max == unix.RLIM_INFINITY {
		procs = "unlimited"
	}
	for _, tc := range []struct{ app, want string }{
		{"ulimit", "256\n512\n2048\n300\n"}, // dash counts core in 512-byte blocks
		{"ulimitdefault", "1000\n4096\n0\n" + procs + "\n"},
	} {
		out, errOut, code := o.Run(t, nil, key, "-T", o.At(tc.app))
		if code != 0 || string(out) != tc.want {
			t.Errorf("ssh -T %s: code %d, out %q, want %q (stderr %q)", tc.app, code, out, tc.want, errOut)
		}
	}
}

// TestAppMemoryLimitStockSSH: an app that outgrows its session's memory
// limit is killed by the kernel, and the stock client gets one line and
// status 137, with and without a PTY. It needs a writable cgroup
// hierarchy with the memory controller (v2, or v1 as on a host whose
// memory controller is still on v1).
func TestAppMemoryLimitStockSSH(t *testing.T) {
	cg, err := appd.DiscoverCgroups()
	if err != nil || !cg.Has("memory") {
		t.Skipf("no writable cgroup hierarchy with the memory controller here (%v; %v)", err, cg)
	}
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, ExtraApps: []string{"hog"},
		Extra: `
[app.hog]
argv = ["sh", "-c", "echo eating; exec tail /dev/zero"]
user = "nobody"
limits = { memory = "32M" }
`})
	o := GatewayOpenSSH(t, c, "gw1")
	key := o.Key(t, "alice", c.Alice)
	const line = "switchyard: the app ran out of its memory limit (32 MiB)"
	out, errOut, code := o.Run(t, nil, key, "-T", o.At("hog"))
	if code != 137 || string(out) != "eating\n" || string(errOut) != line+"\n" {
		t.Errorf("ssh -T hog: code %d, out %q, stderr %q; want 137, \"eating\\n\", %q", code, out, errOut, line)
	}
	out, errOut, code = o.Run(t, strings.NewReader(""), key, "-tt", o.At("hog"))
	if code != 137 || !strings.Contains(string(errOut), line+"\r\n") {
		t.Errorf("ssh -tt hog: code %d, out %q, stderr %q; want 137 and %q", code, out, errOut, line)
	}
	c.WaitLog("session ended", "app=hog", "status=\"exit 137\"")
}

// TestAppTasksLimitStockSSH: a session may not have more processes than
// its tasks limit; its shell cannot fork beyond it. It needs a writable
// cgroup hierarchy with the pids controller.
func TestAppTasksLimitStockSSH(t *testing.T) {
	cg, err := appd.DiscoverCgroups()
	if err != nil || !cg.Has("pids") {
		t.Skipf("no writable cgroup hierarchy with the pids controller here (%v; %v)", err, cg)
	}
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, ExtraApps: []string{"forker"},
		Extra: `
[app.forker]
argv = ["sh", "-c", "for i in 1 2 3 4 5 6; do sleep 2 & done; echo started; wait"]
user = "nobody"
limits = { tasks = 4 }
`})
	o := GatewayOpenSSH(t, c, "gw1")
	key := o.Key(t, "alice", c.Alice)
	out, errOut, _ := o.Run(t, nil, key, "-T", o.At("forker"))
	if !strings.Contains(string(errOut), "Cannot fork") {
		t.Errorf("ssh -T forker: out %q, stderr %q; want the shell's \"Cannot fork\"", out, errOut)
	}
}
