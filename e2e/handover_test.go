package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"switchyard/control"
)

// handoverSessions is how many attached and how many detached PTY
// sessions TestAppdRestartKeepsSessions runs on one appd.
const handoverSessions = 100

// TestAppdRestartKeepsSessions: 100 attached sessions, each streaming a
// counter, and 100 detached ones on one appd. appd is restarted from a
// new binary file (SIGTERM, as systemctl restart sends, then the new
// file), then killed with SIGKILL and started again. Every app lives on
// with its pid; each attached stream continues through both with no tick
// lost or repeated and the client never told anything; every detached
// session resumes, same process.
func TestAppdRestartKeepsSessions(t *testing.T) {
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"}, procOptions{MaxSessions: 3 * handoverSessions,
		GatewayConfig: map[string]string{"gw1": testLimits(rideDefault) + rideDefault},
		ServerConfig:  map[string]string{"s1": "handover = \"1m\"\n"},
		Extra:         perlCounter, ExtraApps: []string{"counter"}})
	client := c.Dial("gw1")
	attached := make([]*Run, handoverSessions)
	for i := range attached {
		attached[i] = Open(t, client, "counter", "xterm", 24, 80)
	}
	pids := map[int]bool{}
	for _, r := range attached {
		r.WaitFor("tick=2 ")
		pids[tickPID(t, r)] = true
	}
	detached := map[string]int{} // session id → pid
	for range handoverSessions {
		cl := c.Dial("gw1")
		r := Open(t, cl, "counter", "xterm", 24, 80)
		r.WaitFor("tick=1 ")
		pid := tickPID(t, r)
		pids[pid] = true
		cl.Close()
		detached[c.sessionOf(pid, control.StateDetached).ID] = pid
	}
	if len(pids) != 2*handoverSessions {
		t.Fatalf("%d distinct pids for %d sessions", len(pids), 2*handoverSessions)
	}

	newBin := copyAppd(t)
	for _, how := range []string{"restart from a new binary", "kill -9 and start"} {
		before := make([]int, len(attached))
		for i, r := range attached {
			out, _ := r.Output()
			before[i] = checkTicks(t, out)
		}
		rides := rodeThrough(c, "gw1")
		if how == "kill -9 and start" {
			c.Signal("s1", syscall.SIGKILL)
		} else {
			c.stop("s1", syscall.SIGTERM)
		}
		c.Start("s1", newBin)
		c.Eventually(how+": every attached session rides through", func() bool {
			return rodeThrough(c, "gw1") >= rides+handoverSessions
		})
		for i, r := range attached {
			r.WaitFor(fmt.Sprintf("tick=%d ", before[i]+5))
			out, errOut := r.Output()
			checkTicks(t, out)
			if errOut != "" {
				t.Fatalf("%s: the client was told %q", how, errOut)
			}
		}
		for pid := range pids {
			if syscall.Kill(pid, 0) != nil {
				t.Fatalf("%s: app %d is gone", how, pid)
			}
		}
	}
	gaps := rideGaps(t, c, "gw1")
	t.Logf("%d attached and %d detached sessions through a restart and a kill -9: %d ride-throughs, output stalled p50 %v, max %v",
		handoverSessions, len(detached), len(gaps), gaps[len(gaps)/2], gaps[len(gaps)-1])
	for id, pid := range detached {
		r := Open(t, c.Dial("gw1"), "resume "+id, "xterm", 24, 80)
		r.WaitFor(fmt.Sprintf("pid=%d", pid))
		r.Session.Close()
	}
}

// perlCounter ticks as the ticker app does, four times a second, without
// a process per tick: 200 of them leave the machine the CPU to restart
// appd.
const perlCounter = `[app.counter]
argv = ["perl", "-e", "$| = 1; for ($i = 1; ; $i++) { print \"tick=$i pid=$$\\n\"; select(undef, undef, undef, 0.25) }"]
user = "nobody"
cpu = 0.001
`

var tickPIDRE = regexp.MustCompile(`tick=\d+ pid=(\d+)`)

// tickPID is the pid the ticker app printed.
func tickPID(t *testing.T, r *Run) int {
	t.Helper()
	out, _ := r.Output()
	m := tickPIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no pid in %q", out)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// sessionOf waits for the broker to list pid's session in state.
func (c *ProcCluster) sessionOf(pid int, state string) control.SessionInfo {
	c.t.Helper()
	var found control.SessionInfo
	c.Eventually(fmt.Sprintf("session of pid %d %s", pid, state), func() bool {
		st, err := c.status()
		if err != nil {
			return false
		}
		for _, s := range st.Sessions {
			if s.PID == pid && s.State == state {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// stop sends sig to a node's process and waits for it to exit.
func (c *ProcCluster) stop(name string, sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if err := p.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %s: %v", name, err)
	}
	p.Wait()
}

// copyAppd copies the appd binary to a new file, as an upgrade installs
// one, and returns its directory.
func copyAppd(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, filepath.Join(buildBinaries(t), "appd"), filepath.Join(dir, "appd"))
	if err := os.Chmod(dir, 0o755); err != nil { // the exec shim runs by path as the app's user
		t.Fatal(err)
	}
	return dir
}

// rideGaps are the re-attach gaps a gateway logged, sorted.
func rideGaps(t *testing.T, c *ProcCluster, gateway string) []time.Duration {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(c.Dir, gateway+".log"))
	var gaps []time.Duration
	for _, m := range regexp.MustCompile(`msg="session rode through a lost appd link".* gap=(\S+)`).FindAllStringSubmatch(string(b), -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("gap %q: %v", m[1], err)
		}
		gaps = append(gaps, d)
	}
	if len(gaps) == 0 {
		t.Fatal("no ride-through logged")
	}
	slices.Sort(gaps)
	return gaps
}

// handoverRestarts is how many times TestAppdRestartPause restarts appd.
const handoverRestarts = 10

// TestAppdRestartPause measures how long attached users' output stalls
// while appd restarts: five attached counters through ten restarts, odd
// ones SIGTERM, even ones kill -9, each followed at once by a new appd;
// one of them is the stock OpenSSH client's, which is told nothing.
// The README's Upgrades section quotes the figures it logs.
func TestAppdRestartPause(t *testing.T) {
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"}, procOptions{
		GatewayConfig: map[string]string{"gw1": testLimits(rideDefault) + rideDefault},
		ServerConfig:  map[string]string{"s1": "handover = \"1m\"\n"},
		Extra:         perlCounter, ExtraApps: []string{"counter"}})
	client := c.Dial("gw1")
	runs := make([]*Run, 4)
	for i := range runs {
		runs[i] = Open(t, client, "counter", "xterm", 24, 80)
		runs[i].WaitFor("tick=1 ")
	}
	// and the stock OpenSSH client, as a user runs it
	o := c.openSSH("gw1")
	stock := startSSH(t, o, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", o.At("counter"))
	stock.WaitFor("tick=1 ")
	for i := range handoverRestarts {
		rides := rodeThrough(c, "gw1")
		if i%2 == 0 {
			c.stop("s1", syscall.SIGTERM)
		} else {
			c.Signal("s1", syscall.SIGKILL)
		}
		c.Start("s1")
		c.Eventually("every session rides through", func() bool { return rodeThrough(c, "gw1") >= rides+len(runs)+1 })
	}
	stock.WaitFor(fmt.Sprintf("tick=%d ", checkTicks(t, stock.Stdout())+2))
	checkTicks(t, stock.Stdout())
	select {
	case <-stock.done:
		t.Fatalf("the stock ssh client exited %d", stock.code)
	default:
	}
	stock.mu.Lock()
	e := stock.errOut.String()
	stock.mu.Unlock()
	if e != "" {
		t.Fatalf("the stock ssh client was told %q", e)
	}
	for _, r := range runs {
		out, _ := r.Output()
		r.WaitFor(fmt.Sprintf("tick=%d ", checkTicks(t, out)+2))
		out, _ = r.Output()
		checkTicks(t, out)
	}
	gaps := rideGaps(t, c, "gw1")
	t.Logf("%d restarts (SIGTERM and kill -9 in turn) under %d attached sessions (one stock ssh): output stalled p50 %v, max %v",
		handoverRestarts, len(runs)+1, gaps[len(gaps)/2], gaps[len(gaps)-1])
}
