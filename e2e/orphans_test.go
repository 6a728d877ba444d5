package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/internal/testutil"
)

// orphanApps are apps that outlive appd unless it makes them end: one
// that ignores SIGHUP (the hang-up a closing PTY sends) and forks a child
// into its process group, one that does the same with job control on, so
// that its child has a process group of its own (as in an interactive
// bash), and a batch app that never writes (so no SIGPIPE either) and
// also has a child in its group.
const orphanApps = `
[app.hupproof]
argv = ["sh", "-c", "trap '' HUP; sleep 1000 & echo pid=$$; wait"]
user = "nobody"
[app.jobs]
argv = ["sh", "-c", "set -m; trap '' HUP; sleep 1000 & echo pid=$$; wait"]
user = "nobody"
[app.quiet]
argv = ["sh", "-c", "sleep 1000 & exec sleep 1001"]
user = "nobody"
`

// TestFaultKill9AppdLeavesNoApp kills appd with SIGKILL while it serves an
// attached and a detached PTY session of an app that ignores SIGHUP, the
// same with job control, a batch session that never writes, and an
// ordinary PTY app, each with a child in its session where it has one. Every one of those
// processes must be gone soon after, none left to PID 1, and a restarted
// appd must find none of them.
func TestFaultKill9AppdLeavesNoApp(t *testing.T) {
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"},
		procOptions{Extra: orphanApps, ExtraApps: []string{"hupproof", "jobs", "quiet"}})
	client := c.Dial("gw1")

	attached := Open(t, client, "hupproof", "xterm", 24, 80)
	attached.WaitFor("pid=")
	detached := Open(t, client, "hupproof", "xterm", 24, 80)
	detached.WaitFor("pid=")
	jobs := Open(t, client, "jobs", "xterm", 24, 80)
	jobs.WaitFor("pid=")
	ticker := Open(t, client, "ticker", "xterm", 24, 80)
	ticker.WaitFor("tick=1")
	Open(t, client, "quiet", "", 0, 0) // batch: no output, its pid comes from the broker
	leaders := map[int]string{
		lastPID(t, attached): "hupproof (attached)", lastPID(t, detached): "hupproof (detached)",
		lastPID(t, jobs): "jobs", lastPID(t, ticker): "ticker",
	}
	addQuietLeader(c, leaders, 5)
	detached.Session.Close()
	c.Eventually("the second hupproof session to detach", func() bool {
		st, err := c.status()
		return err == nil && slices.ContainsFunc(st.Sessions, func(s control.SessionInfo) bool { return s.State == "detached" })
	})
	t.Cleanup(func() { // whatever survives a failed run
		for pid := range groupMembers(leaders) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	var procs map[int]string
	c.Eventually("each app's child to start", func() bool {
		procs = groupMembers(leaders)
		return len(procs) >= len(leaders)+4 // a sleep child in both hupproofs, jobs and quiet
	})
	t.Logf("before kill -9 of appd: %d processes in %d sessions", len(procs), len(leaders))
	keeper := c.keeperPID("s1")
	pss, private := smapsRollup(t, keeper)
	t.Logf("appd's keeper %d: Pss %d KiB, private %d KiB", keeper, pss, private)
	if private > 16<<10 {
		t.Errorf("keeper has %d KiB of private memory, want at most 16 MiB", private)
	}

	start := time.Now()
	c.Signal("s1", syscall.SIGKILL)
	procs[keeper] = "appd's keeper"
	survivors := waitAllGone(procs, 10*time.Second)
	if len(survivors) > 0 {
		t.Fatalf("%d of %d app processes outlived kill -9 of appd by 10s:\n%s",
			len(survivors), len(procs), strings.Join(survivors, "\n"))
	}
	t.Logf("every app process gone %v after kill -9 of appd", time.Since(start).Round(time.Millisecond))

	c.Start("s1")
	c.WaitUp()
	if left := groupMembers(leaders); len(left) > 0 {
		t.Fatalf("after appd restarted, old app processes remain: %v", left)
	}
	c.Eventually("the broker to list none of the old sessions", func() bool {
		st, err := c.status()
		return err == nil && !slices.ContainsFunc(st.Sessions, func(s control.SessionInfo) bool { return leaders[s.PID] != "" })
	})
}

// groupMembers lists the live processes (zombies excluded) whose session
// or process group is one of leaders' (an app's pid is both), each named
// by its app.
func groupMembers(leaders map[int]string) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, _, pgid, sid, ok := procStat(pid)
		if ok && state != "Z" && leaders[sid] != "" {
			out[pid] = leaders[sid]
		} else if ok && state != "Z" && leaders[pgid] != "" {
			out[pid] = leaders[pgid]
		}
	}
	return out
}

// procStat returns a process's state, parent, process group and session
// from /proc/PID/stat.
func procStat(pid int) (state string, ppid, pgid, sid int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, 0, 0, false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 4 {
		return "", 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	pgid, _ = strconv.Atoi(f[2])
	sid, _ = strconv.Atoi(f[3])
	return f[0], ppid, pgid, sid, true
}

// waitAllGone polls until every process of procs has exited (zombies count
// as exited) or d has passed, and describes those still alive.
func waitAllGone(procs map[int]string, d time.Duration) []string {
	var alive []string
	testutil.Poll(d, func() bool {
		alive = alive[:0]
		for pid, app := range procs {
			if !gone(pid) {
				_, ppid, _, _, _ := procStat(pid)
				alive = append(alive, fmt.Sprintf("  pid %d of %s, parent now %d", pid, app, ppid))
			}
		}
		return len(alive) == 0
	})
	slices.Sort(alive)
	return alive
}

// TestAppdStopForGoodEndsAppsAndKeeper: appd stopped for good (SIGINT;
// SIGTERM hands the sessions over instead, see handover_test.go) ends its
// sessions, SIGHUP to each app's process group, SIGKILL two seconds later
// to one that ignores SIGHUP, and its keeper exits with it.
func TestAppdStopForGoodEndsAppsAndKeeper(t *testing.T) {
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"},
		procOptions{Extra: orphanApps, ExtraApps: []string{"hupproof", "jobs", "quiet"}})
	client := c.Dial("gw1")
	r := Open(t, client, "hupproof", "xterm", 24, 80)
	r.WaitFor("pid=")
	leaders := map[int]string{lastPID(t, r): "hupproof"}
	Open(t, client, "quiet", "", 0, 0)
	addQuietLeader(c, leaders, 2)
	t.Cleanup(func() {
		for pid := range groupMembers(leaders) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	var procs map[int]string
	c.Eventually("each app's child to start", func() bool {
		procs = groupMembers(leaders)
		return len(procs) == 4
	})
	procs[c.keeperPID("s1")] = "appd's keeper"
	c.mu.Lock()
	appd := c.procs["s1"]
	c.mu.Unlock()
	c.Signal("s1", syscall.SIGINT)
	c.Eventually("appd to exit", func() bool { return gone(appd.Process.Pid) })
	if survivors := waitAllGone(procs, 10*time.Second); len(survivors) > 0 {
		t.Fatalf("%d of %d processes outlived appd's SIGINT:\n%s", len(survivors), len(procs), strings.Join(survivors, "\n"))
	}
	log, _ := os.ReadFile(filepath.Join(c.Dir, "s1.log"))
	for _, want := range []string{`app=hupproof pid=\d+ status="signal KILL" .*hangup=`, `app=quiet pid=\d+ status="signal HUP" .*hangup=`} {
		if !regexp.MustCompile(`msg="session ended" .*` + want).Match(log) {
			t.Errorf("appd's log does not say it hung the apps up (%s):\n%s", want, log)
		}
	}
}

// keeperPID returns the pid of the keeper the named appd logged it started.
func (c *ProcCluster) keeperPID(node string) int {
	c.t.Helper()
	var pid int
	c.Eventually(node+" to log its keeper", func() bool {
		log, _ := os.ReadFile(filepath.Join(c.Dir, node+".log"))
		m := keeperRE.FindAllSubmatch(log, -1)
		if m == nil {
			return false
		}
		pid, _ = strconv.Atoi(string(m[len(m)-1][1]))
		return true
	})
	return pid
}

var keeperRE = regexp.MustCompile(`msg="keeper connected".* keeper_pid=(\d+)`)

// smapsRollup returns Pss and the private memory (clean and dirty) of pid,
// in KiB, from /proc/PID/smaps_rollup.
func smapsRollup(t *testing.T, pid int) (pss, private int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Pss:":
			pss = v
		case "Private_Clean:", "Private_Dirty:":
			private += v
		}
	}
	return pss, private
}

// addQuietLeader waits until the broker lists n sessions, the batch app
// "quiet" among them, and adds quiet's PID (it writes nothing, so only the
// broker can tell it) to leaders.
func addQuietLeader(c *ProcCluster, leaders map[int]string, n int) {
	c.t.Helper()
	c.Eventually(fmt.Sprintf("the broker to list all %d sessions", n), func() bool {
		st, err := c.status()
		if err != nil {
			return false
		}
		for _, s := range st.Sessions {
			if s.App == "quiet" {
				leaders[s.PID] = "quiet (batch)"
			}
		}
		return len(leaders) == n && len(st.Sessions) == n
	})
}
