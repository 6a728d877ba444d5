package e2e

// Faults with real processes: kill -9 of an appd, a gateway and the
// broker mid-session, and a server that hangs (SIGSTOP).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFaultKill9AppdMidSession(t *testing.T) {
	c := NewProcCluster(t, []string{"gw1"}, []string{"s1", "s2"})
	client := c.Dial("gw1")
	r := Open(t, client, "pid", "xterm", 24, 80)
	r.WaitFor("24 80")
	pid := lastPID(t, r)
	dead := c.serverOf(pid)
	c.Signal(dead, syscall.SIGKILL)

	status, _ := r.Wait()
	_, errOut := r.Output()
	if status != 69 || !strings.HasPrefix(errOut, "switchyard: lost the link to server "+dead+"; if the app still runs it is detached, resume with: ssh -t ") {
		t.Fatalf("after kill -9 of %s: status %d, stderr %q", dead, status, errOut)
	}
	c.Eventually(dead+" marked down", func() bool { return !c.serverUp(dead) })
	c.Eventually(fmt.Sprintf("the orphaned app %d to end (its PTY hung up)", pid), func() bool { return gone(pid) })
	for range 4 {
		r := Open(t, client, "pid", "xterm", 24, 80)
		r.WaitFor("24 80")
		if got := c.serverOf(lastPID(t, r)); got == dead {
			t.Fatalf("new session placed on dead %s", dead)
		}
		r.Session.Close()
	}
}

func TestFaultKillGatewayThenResumeElsewhere(t *testing.T) {
	c := NewProcCluster(t, []string{"gw1", "gw2"}, []string{"s1"})
	r := Open(t, c.Dial("gw1"), "ticker", "xterm", 24, 80)
	r.WaitFor("tick=2")
	pid := lastPID(t, r)
	c.Signal("gw1", syscall.SIGKILL)
	c.Eventually("the session to detach", func() bool {
		st, err := c.status()
		if err != nil {
			return false
		}
		for _, s := range st.Sessions {
			if s.PID == pid && s.State == "detached" {
				return true
			}
		}
		return false
	})
	back := Open(t, c.Dial("gw2"), "resume", "xterm", 24, 80)
	back.WaitFor(fmt.Sprintf("pid=%d", pid))
}

func TestFaultBrokerKill9AndRestart(t *testing.T) {
	c := NewProcCluster(t, []string{"gw1"}, []string{"s1", "s2"})
	client := c.Dial("gw1")
	r := Open(t, client, "pid", "xterm", 24, 80)
	r.WaitFor("24 80")
	pid := lastPID(t, r)
	live := c.serverOf(pid)
	dead := map[string]string{"s1": "s2", "s2": "s1"}[live]

	c.Signal("broker", syscall.SIGKILL)
	r.Stdin.Write([]byte("while-broker-dead\r"))
	r.WaitFor("got:while-broker-dead")
	refused := Open(t, client, "pid", "", 0, 0)
	if status, _ := refused.Wait(); status != 69 {
		t.Fatalf("with the broker dead a new session got status %d, want 69", status)
	}
	if _, errOut := refused.Output(); errOut != "switchyard: broker unavailable\n" {
		t.Fatalf("with the broker dead: stderr %q", errOut)
	}
	// The other server dies while the broker is down: the restarted broker
	// must never place on it.
	c.Signal(dead, syscall.SIGKILL)
	c.Start("broker")
	start := time.Now()
	c.serverOf(pid) // the restarted broker knows the running session again
	t.Logf("restarted broker listed the running session (pid %d) %v after its start (report interval 200ms)",
		pid, time.Since(start).Round(time.Millisecond))
	// New sessions need the gateway's link back too; it reconnects with
	// backoff and may come up after the server's.
	c.Eventually("gw1 to reconnect to the restarted broker", func() bool {
		st, err := c.status()
		if err != nil {
			return false
		}
		for _, g := range st.Gateways {
			if g.Name == "gw1" {
				return g.Connected
			}
		}
		return false
	})
	for range 4 {
		x := Open(t, client, "pid", "xterm", 24, 80)
		x.WaitFor("24 80")
		if got := c.serverOf(lastPID(t, x)); got != live {
			t.Fatalf("placed on %s, want %s (%s died while the broker was down)", got, live, dead)
		}
		x.Session.Close()
	}
	r.Stdin.Write([]byte("after-restart\r"))
	r.WaitFor("got:after-restart")
}

// A login made while a lone broker restarts waits for it and lands,
// instead of failing with "broker unavailable".
func TestLoginDuringBrokerRestartWaits(t *testing.T) {
	c := NewProcCluster(t, []string{"gw1"}, []string{"s1"})
	client := c.Dial("gw1")
	c.Signal("broker", syscall.SIGKILL)
	c.Eventually("gw1 to lose its broker link", func() bool {
		b, _ := os.ReadFile(filepath.Join(c.Dir, "gw1.log"))
		return strings.Contains(string(b), `msg="control link down" node=gw1 peer=broker`)
	})
	r := Open(t, client, "pid", "xterm", 24, 80) // placed once the broker is back
	c.Start("broker")
	r.WaitFor("24 80")
}

func TestFaultHungServerIsAvoided(t *testing.T) {
	c := NewProcCluster(t, []string{"gw1"}, []string{"s1", "s2"})
	c.Signal("s1", syscall.SIGSTOP) // a hang: the link stays up, reports stop
	c.Eventually("s1 marked down within 3 report intervals", func() bool { return !c.serverUp("s1") })
	client := c.Dial("gw1")
	for range 4 {
		r := Open(t, client, "pid", "xterm", 24, 80)
		r.WaitFor("24 80")
		if got := c.serverOf(lastPID(t, r)); got != "s2" {
			t.Fatalf("session placed on %s while s1 hangs", got)
		}
		r.Session.Close()
	}
	c.Signal("s1", syscall.SIGCONT)
	c.Eventually("s1 back by itself once it reports", func() bool { return c.serverUp("s1") })
}
