package e2e

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/testutil"
)

// DialConn is Dial keeping the TCP connection, so that a test can cut it
// the way a network does: no SSH goodbye, no channel close.
func (c *Cluster) DialConn(gateway, login string, signer ssh.Signer) (*ssh.Client, net.Conn) {
	c.t.Helper()
	addr := c.GatewayAddr(gateway)
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:            login,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		nc.Close()
		c.t.Fatalf("ssh to %s as %s: %v", gateway, login, err)
	}
	client := ssh.NewClient(conn, chans, reqs)
	c.t.Cleanup(func() { client.Close() })
	return client, nc
}

// SessionOf waits until the broker knows the session whose app prints
// pid, in state, and returns it.
func (c *Cluster) SessionOf(pid int, state string) control.SessionInfo {
	c.t.Helper()
	var found control.SessionInfo
	c.Eventually("the session of pid "+strconv.Itoa(pid)+" "+state, func() bool {
		for _, s := range c.Status().Sessions {
			if s.PID == pid && s.State == state {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

var pidRE = regexp.MustCompile(`pid=(\d+)`)

// lastPID is the last pid=N the run printed.
func lastPID(t *testing.T, r *Run) int {
	t.Helper()
	out, _ := r.Output()
	m := pidRE.FindAllStringSubmatch(out, -1)
	if m == nil {
		t.Fatalf("no pid in %q", out)
	}
	pid, _ := strconv.Atoi(m[len(m)-1][1])
	return pid
}

// lastTick is the last tick=N the run printed, 0 if none.
func lastTick(r *Run) int {
	out, _ := r.Output()
	m := regexp.MustCompile(`tick=(\d+)`).FindAllStringSubmatch(out, -1)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// waitGone polls until pid no longer exists.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, fmt.Sprintf("pid %d to end", pid), func() bool { return syscall.Kill(pid, 0) != nil })
}

// sessionsOf runs `sessions` on gateway as login and returns its output.
func (c *Cluster) sessionsOf(gateway, login string, signer ssh.Signer) string {
	c.t.Helper()
	client, err := c.Dial(gateway, login, signer)
	if err != nil {
		c.t.Fatal(err)
	}
	defer client.Close()
	r := Open(c.t, client, "sessions", "", 0, 0)
	if status, _ := r.Wait(); status != 0 {
		_, errOut := r.Output()
		c.t.Fatalf("sessions as %s: exit %d, stderr %q", login, status, errOut)
	}
	out, _ := r.Output()
	return out
}

func TestResumeThroughAnotherGateway(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Gateways: []string{"gw1", "gw2"}})
	client, conn := c.DialConn("gw1", "alice", c.Alice)
	first := Open(t, client, "ticker", "xterm", 24, 80)
	first.WaitFor("tick=3 ")
	pid := lastPID(t, first)
	seen := lastTick(first)

	conn.Close() // the network drops: the gateway only sees its socket fail
	s := c.SessionOf(pid, control.StateDetached)
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("pid %d died when its client went away", pid)
	}
	if s.Detached.IsZero() || s.User != "alice" || s.App != "ticker" {
		t.Errorf("detached session %+v", s)
	}
	// Output produced while away: the ticks go on, and a marker the app
	// prints on a signal sent now, while nobody is attached.
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}

	list := c.sessionsOf("gw2", "alice", c.Alice)
	if !regexp.MustCompile(`(?m)^` + s.ID + `\s+ticker\s+` + s.Server + `\s+detached\s`).MatchString(list) {
		t.Errorf("alice's sessions do not list %s detached:\n%s", s.ID, list)
	}
	if list := c.sessionsOf("gw2", "bob", c.Bob); strings.Contains(list, s.ID) || strings.Count(list, "\n") != 1 {
		t.Errorf("bob sees sessions:\n%s", list)
	}
	bob, err := c.Dial("gw2", "bob", c.Bob)
	if err != nil {
		t.Fatal(err)
	}
	steal := Open(t, bob, "resume "+s.ID, "xterm", 24, 80)
	if status, _ := steal.Wait(); status != 66 {
		t.Errorf("bob's resume of alice's session: exit %d, want 66", status)
	}
	if out, errOut := steal.Output(); out != "" || errOut != "switchyard: no such session\r\n" {
		t.Errorf("bob's resume: stdout %q stderr %q", out, errOut)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("bob's attempt ended alice's session")
	}

	alice2, err := c.Dial("gw2", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	second := Open(t, alice2, "resume", "xterm", 30, 100)
	second.WaitFor("marker-")
	second.WaitFor("pid=" + strconv.Itoa(pid))
	out, _ := second.Output()
	firstTick := regexp.MustCompile(`tick=(\d+)`).FindStringSubmatch(out)
	if firstTick == nil {
		t.Fatalf("no tick after resume: %q", out)
	}
	// The ticks made while away come first. A few made just before appd
	// learned the client was gone went into the dying connection.
	if n, _ := strconv.Atoi(firstTick[1]); n <= seen || n > seen+20 {
		t.Errorf("first tick after resume is %d; the client had seen %d: the ticks made while away are missing", n, seen)
	}
	c.SessionOf(pid, control.StateAttached)

	// A newer attach takes over; the older connection is told why.
	alice3, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	third := Open(t, alice3, "resume "+s.ID, "xterm", 24, 80)
	third.WaitFor("pid=" + strconv.Itoa(pid))
	if status, _ := second.Wait(); status != 0 {
		t.Errorf("taken-over session exit %d, want 0", status)
	}
	if _, errOut := second.Output(); errOut != "switchyard: session taken over by a newer connection\r\n" {
		t.Errorf("taken-over session stderr %q", errOut)
	}
	before := lastTick(third)
	third.WaitFor("tick=" + strconv.Itoa(before+2) + " ")
	if st := c.SessionOf(pid, control.StateAttached); st.Gateway != "gw1" {
		t.Errorf("after the takeover the session is on %q, want gw1", st.Gateway)
	}
}

func TestGraceExpiryEndsDetachedSession(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, conn := c.DialConn("gw1", "alice", c.Alice)
	r := Open(t, client, "brief", "xterm", 24, 80)
	r.WaitFor("tick=1 ")
	pid := lastPID(t, r)
	id := c.SessionOf(pid, control.StateAttached).ID
	conn.Close()
	waitGone(t, pid)
	c.Eventually("the broker to forget the session", func() bool {
		for _, s := range c.Status().Sessions {
			if s.ID == id {
				return false
			}
		}
		return true
	})
	if list := c.sessionsOf("gw1", "alice", c.Alice); strings.Contains(list, id) {
		t.Errorf("sessions still lists %s after its grace period:\n%s", id, list)
	}
	again, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	late := Open(t, again, "resume", "xterm", 24, 80)
	if status, _ := late.Wait(); status != 66 {
		t.Errorf("resume after the grace period: exit %d, want 66", status)
	}
}

// TestAppExitAfterResumeIsReported checks that a resumed session still
// ends the normal way: the app's exit status reaches the new client and
// the broker forgets it.
func TestAppExitAfterResumeIsReported(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, conn := c.DialConn("gw1", "alice", c.Alice)
	first := Open(t, client, "pid", "xterm", 24, 80)
	first.WaitFor("24 80")
	pid := lastPID(t, first)
	conn.Close()
	s := c.SessionOf(pid, control.StateDetached)
	again, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	r := Open(t, again, "resume", "xterm", 24, 80)
	r.Stdin.Write([]byte("back\r"))
	r.WaitFor("got:back")
	r.Stdin.Write([]byte{4}) // Ctrl-D: read fails, the loop ends, sh exits 0
	if status, _ := r.Wait(); status != 0 {
		t.Errorf("exit %d after resume, want 0", status)
	}
	c.Eventually("the broker to forget the ended session", func() bool {
		for _, st := range c.Status().Sessions {
			if st.ID == s.ID {
				return false
			}
		}
		return true
	})
}

// TestGatewayDeathDetaches stops the gateway a session goes through: the
// app keeps running, and the user resumes it through the other gateway.
func TestGatewayDeathDetaches(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Gateways: []string{"gw1", "gw2"}, Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	first := Open(t, client, "ticker", "xterm", 24, 80)
	first.WaitFor("tick=2 ")
	pid := lastPID(t, first)
	c.Stop("gw1")
	c.SessionOf(pid, control.StateDetached)
	again, err := c.Dial("gw2", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	Open(t, again, "resume", "xterm", 24, 80).WaitFor("pid=" + strconv.Itoa(pid))
	if st := c.SessionOf(pid, control.StateAttached); st.Gateway != "gw2" {
		t.Errorf("resumed session on %q, want gw2", st.Gateway)
	}
}

// A resume right after the stock client is killed, through another
// gateway, finds the session detached: the gateway tells the broker at
// once, not the server's next report (two seconds here; with the report
// alone `resume` said "no detached session to resume" for up to an
// interval).
func TestResumeRightAfterClientKilled(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Gateways: []string{"gw1", "gw2"}, Servers: []string{"s1"}, Interval: 2 * time.Second})
	o1 := GatewayOpenSSH(t, c, "gw1")
	first := startSSH(t, o1, o1.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", o1.At("alice"), "ticker")
	first.WaitFor("tick=2 ")
	m := pidRE.FindStringSubmatch(first.Stdout())
	if m == nil {
		t.Fatalf("no pid in %q", first.Stdout())
	}
	pid, _ := strconv.Atoi(m[1])
	c.SessionOf(pid, control.StateAttached) // the broker knows it, attached

	first.kill() // SIGKILL: the client vanishes without a goodbye
	first.Wait()
	o2 := GatewayOpenSSH(t, c, "gw2")
	second := startSSH(t, o2, o2.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", o2.At("alice"), "resume")
	second.WaitFor("pid=" + strconv.Itoa(pid))
	if s := c.SessionOf(pid, control.StateAttached); s.Gateway != "gw2" {
		t.Errorf("resumed session %+v, want it attached through gw2", s)
	}
	c.WaitLog("session detached", "node=broker", "gateway=gw1")
}
