package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// cutAppdLinks destroys every TCP connection to server's appd listener
// from this host's side (ss -K, as root): the gateway's socket is gone and
// appd gets a reset, as when a link breaks. It fails the test when there
// was no connection to cut.
func cutAppdLinks(t *testing.T, c *ProcCluster, server string) {
	t.Helper()
	cutLinksTo(t, c.cfg.Servers[server].Listen)
}

// cutLinksTo is cutAppdLinks for the listener at addr.
func cutLinksTo(t *testing.T, addr string) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ss", "-K", "-t", "dst", "127.0.0.1", "dport", "=", ":"+port).CombinedOutput()
	if !strings.Contains(string(out), "ESTAB") {
		t.Fatalf("ss -K cut no connection to %s: %v\n%s", addr, err, out)
	}
}

// rodeThrough counts the sessions a gateway's log says rode through.
func rodeThrough(c *ProcCluster, gateway string) int {
	b, _ := os.ReadFile(filepath.Join(c.Dir, gateway+".log"))
	return strings.Count(string(b), `msg="session rode through a lost appd link"`)
}

var rideTickRE = regexp.MustCompile(`tick=(\d+) pid=(\d+)`)

// checkTicks fails unless out holds ticks 1, 2, 3... with none missing
// nor repeated, all from one process; it returns the last.
func checkTicks(t *testing.T, out string) int {
	t.Helper()
	pid, last := "", 0
	for _, m := range rideTickRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		if n != last+1 {
			t.Fatalf("tick %d after tick %d: output lost or repeated", n, last)
		}
		if pid != "" && m[2] != pid {
			t.Fatalf("tick %d from pid %s, earlier ones from %s", n, m[2], pid)
		}
		pid, last = m[2], n
	}
	return last
}

// The ride-through windows of the tests: the default, and a short one
// to run out.
const (
	rideDefault = "ride_through = \"10s\"\n"
	rideShort   = "ride_through = \"1s\"\n"
)

// rideCuts is how many times TestRideThroughLostAppdLink cuts the link.
const rideCuts = 10

// TestRideThroughLostAppdLink: the gateway's connection to appd is cut
// (reset) rideCuts times under two attached stock ssh sessions, a counter
// and an echo. Neither client notices: the gateway re-attaches both to
// the same processes each time, the counter's sequence goes on with
// nothing lost or repeated, and a line typed right after each cut
// reaches the app. It logs the gaps the gateway measured.
func TestRideThroughLostAppdLink(t *testing.T) {
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"}, procOptions{GatewayConfig: map[string]string{"gw1": testLimits(rideDefault) + rideDefault}})
	o := c.openSSH("gw1")
	key := o.Key(t, "alice", c.Alice)
	ticker := startSSH(t, o, key, "-tt", "-o", "LogLevel=ERROR", o.At("ticker"))
	ticker.WaitFor("tick=3 ")
	echo := startSSH(t, o, key, "-tt", "-o", "LogLevel=ERROR", o.At("pid"))
	pid := ptyPID(t, echo)
	echo.Write("before\r")
	echo.WaitFor("got:before")

	for i := 1; i <= rideCuts; i++ {
		cutAppdLinks(t, c, "s1")
		echo.Write(fmt.Sprintf("in-gap-%d\r", i))
		c.Eventually("both sessions ride through", func() bool { return rodeThrough(c, "gw1") >= 2*i })
		echo.WaitFor(fmt.Sprintf("got:in-gap-%d", i))
		at := checkTicks(t, ticker.Stdout())
		ticker.WaitFor(fmt.Sprintf("tick=%d ", at+3))
	}
	last := checkTicks(t, ticker.Stdout())
	gaps := rideGaps(t, c, "gw1")
	t.Logf("%d cuts, %d ride-throughs, %d ticks in sequence; re-attach gap p50 %v, max %v",
		rideCuts, len(gaps), last, gaps[len(gaps)/2], gaps[len(gaps)-1])
	for name, p := range map[string]*sshProc{"ticker": ticker, "pid": echo} {
		select {
		case <-p.done:
			t.Fatalf("the %s client exited %d: stderr %q", name, p.code, p.errOut.String())
		default:
		}
	}
	if c.serverOf(pid) != "s1" {
		t.Fatalf("the echo app %d is not a session of s1 any more", pid)
	}
}

// TestRideThroughGivesUp: with appd stopped (SIGSTOP) the link is cut;
// the gateway retries for ride_through (1s here), then the session
// detaches as when a connection drops: one line with the resume command
// and the count of bytes typed during the gap that never reached the app,
// exit 69. Once appd runs again the session resumes, same process.
func TestRideThroughGivesUp(t *testing.T) {
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"}, procOptions{GatewayConfig: map[string]string{"gw1": testLimits(rideShort) + rideShort}})
	o := c.openSSH("gw1")
	key := o.Key(t, "alice", c.Alice)
	echo := startSSH(t, o, key, "-tt", "-o", "LogLevel=ERROR", o.At("pid"))
	pid := ptyPID(t, echo)
	c.Signal("s1", syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			c.Signal("s1", syscall.SIGCONT)
		}
	}()
	cutAppdLinks(t, c, "s1")
	c.Eventually("gw1 rides through", func() bool {
		b, _ := os.ReadFile(filepath.Join(c.Dir, "gw1.log"))
		return strings.Contains(string(b), `msg="lost the appd link; riding through"`)
	})
	echo.Write("lost\r") // held by the gateway, then dropped: the line says so
	code, _, errOut := echo.Wait()
	m := regexp.MustCompile(`switchyard: lost the link to server s1; if the app still runs it is detached, resume with: ssh -t -p \d+ alice@127\.0\.0\.1 resume (\S+) \(the last 5 bytes you typed were not delivered\)\r?\n`).FindStringSubmatch(errOut)
	if code != 69 || m == nil {
		t.Fatalf("after the ride-through window: exit %d, stderr %q; want 69 and the resume line", code, errOut)
	}
	b, _ := os.ReadFile(filepath.Join(c.Dir, "gw1.log"))
	if !strings.Contains(string(b), `msg="ride-through ended: appd did not come back in time"`) {
		t.Fatalf("gw1's log does not say the ride-through ran out:\n%s", b)
	}
	c.Signal("s1", syscall.SIGCONT)
	stopped = false
	again := startSSH(t, o, key, "-tt", "-o", "LogLevel=ERROR", o.At("alice"), "resume", m[1])
	again.Write("resumed\r")
	again.WaitFor("got:resumed")
	c.Eventually("gw1 logs the resumed session, same process", func() bool {
		b, _ := os.ReadFile(filepath.Join(c.Dir, "gw1.log"))
		return regexp.MustCompile(`msg="session started".*pid=` + strconv.Itoa(pid) + ` id=` + regexp.QuoteMeta(m[1]) + ` .*resumed=true`).Match(b)
	})
}

// TestRideThroughRelayedSession: a stock ssh session through gw2, which
// reaches no server and relays through gw1 to s1, rides through a cut of
// gw1's link to s1: gw2 re-opens the attach through gw1, and input typed
// right after the cut reaches the same app.
func TestRideThroughRelayedSession(t *testing.T) {
	c := twoNetworks(t, `redirect = "relay"`, "")
	o := GatewayOpenSSH(t, c, "gw2")
	bob := o.Key(t, "bob", c.Bob)
	p := startSSH(t, o, bob, "-tt", "-o", "LogLevel=ERROR", o.At("pid"))
	pid := ptyPID(t, p)
	p.Write("before\r")
	p.WaitFor("got:before")
	cutLinksTo(t, c.lns["s1"].Addr().String())
	p.Write("in-gap\r")
	c.WaitLog(`msg="session rode through a lost appd link"`, "node=gw2", "pid="+strconv.Itoa(pid))
	p.WaitFor("got:in-gap")
	select {
	case <-p.done:
		t.Fatalf("the client exited %d: stderr %q", p.code, p.errOut.String())
	default:
	}
}
