package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchyard/broker"
	"switchyard/control"
	"switchyard/internal/testutil"
)

// twoNetworks is a cluster of two gateways with disjoint networks: gw1
// reaches s1 only, and relays for the others on its internal listener;
// gw2 reaches s2 only. s1 is in the loopback client's region and s2 in a
// far one, so placement prefers s1, and a client of gw2 is handed to
// gw1. gw2Config and brokerConfig are extra lines for those tables.
func twoNetworks(t *testing.T, gw2Config, brokerConfig string) *Cluster {
	t.Helper()
	return NewCluster(t, ClusterOptions{
		Gateways:      []string{"gw1", "gw2"},
		Servers:       []string{"s1", "s2"},
		GatewayConfig: map[string]string{"gw1": `reach = ["s1"]`, "gw2": "reach = [\"s2\"]\n" + gw2Config},
		ServerConfig:  map[string]string{"s1": `region = "near"`, "s2": `region = "far"`},
		// Both servers run on this one host and read its CPU, which other
		// tests load: load must not outweigh locality here, or a route
		// would depend on whatever else the machine runs.
		Extra:        "[policy]\nload_weight = 0.001\n[region.near]\ncidrs = [\"127.0.0.0/8\"]\nnear = [\"far\"]\n[region.far]\ncidrs = [\"192.0.2.0/24\"]\n" + heldApp,
		ExtraApps:    []string{"held"},
		Internal:     []string{"gw1"},
		BrokerConfig: brokerConfig,
	})
}

// heldApp writes one line at once, then becomes cat: /proc/PID/comm
// tells a test when the line is out.
const heldApp = `[app.held]
argv = ["sh", "-c", "echo waited pid=$$ term=$TERM; exec cat"]
user = "nobody"
`

// hint is a parsed SWITCHYARD-REDIRECT line.
type hint struct {
	host, port, login, app, session string
	pid                             int
	expires                         time.Time
}

var redirectRE = regexp.MustCompile(`(?m)^SWITCHYARD-REDIRECT host=(\S+) port=(\d+) login=(\S+) app=(\S+) session=([0-9a-f]+) pid=(\d+) expires=(\S+)\r?$`)

// parseHint finds the machine-readable redirect line in stderr.
func parseHint(t *testing.T, stderr string) hint {
	t.Helper()
	m := redirectRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no SWITCHYARD-REDIRECT line with a session in %q", stderr)
	}
	h := hint{host: m[1], port: m[2], login: m[3], app: m[4], session: m[5]}
	h.pid, _ = strconv.Atoi(m[6])
	var err error
	if h.expires, err = time.Parse(time.RFC3339, m[7]); err != nil {
		t.Fatalf("expires: %v", err)
	}
	return h
}

// portOf is the port of a gateway's user-facing address.
func (c *Cluster) portOf(gateway string) string {
	_, port, _ := net.SplitHostPort(c.GatewayAddr(gateway))
	return port
}

// redirected runs `ssh -tt held@gw2` with the stock client, checks the
// hint it gets (text, status) and returns it.
func redirected(t *testing.T, c *Cluster, app string) hint {
	t.Helper()
	o := GatewayOpenSSH(t, c, "gw2")
	_, errOut, code := o.Run(t, nil, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", o.At(app))
	want := "switchyard: " + app + " is ready for you on gw1; run: ssh -p " + c.portOf("gw1") + " " + app + "@127.0.0.1\r\n"
	if code != 75 || !strings.HasPrefix(string(errOut), want) || strings.Count(string(errOut), "\n") != 2 {
		t.Fatalf("ssh -tt %s@gw2: exit %d, stderr\n%q\nwant 75 and\n%q then the SWITCHYARD-REDIRECT line", app, code, errOut, want)
	}
	h := parseHint(t, string(errOut))
	if h.host != "127.0.0.1" || h.port != c.portOf("gw1") || h.login != app || h.app != app {
		t.Fatalf("hint %+v, want gw1's address and login %s", h, app)
	}
	return h
}

// waitComm waits until process pid runs the program comm.
func waitComm(t *testing.T, pid int, comm string) {
	t.Helper()
	var b []byte
	var err error
	if !testutil.Poll(15*time.Second, func() bool {
		b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return err == nil && strings.TrimSpace(string(b)) == comm
	}) {
		t.Fatalf("pid %d runs %q (%v), want %s", pid, b, err, comm)
	}
}

// lastDecision is the broker's latest placement.
func (c *Cluster) lastDecision() broker.Decision {
	c.t.Helper()
	d := c.Status().Decisions
	if len(d) == 0 {
		c.t.Fatal("no placement made")
	}
	return d[len(d)-1]
}

func TestRedirectHintAndPrelaunchWithStockSSH(t *testing.T) {
	c := twoNetworks(t, "", "")
	t.Setenv("TERM", "vt220") // the client's terminal type, which the pre-launched app must get
	before := time.Now()
	h := redirected(t, c, "held")
	if h.expires.Before(before.Add(29*time.Second)) || h.expires.After(time.Now().Add(31*time.Second)) {
		t.Errorf("expires %v, want about 30s from now", h.expires)
	}
	if syscall.Kill(h.pid, 0) != nil {
		t.Fatalf("the pre-launched pid %d does not run", h.pid)
	}
	st := c.Status()
	if len(st.Reservations) != 1 || st.Reservations[0].PID != h.pid || st.Reservations[0].Gateway != "gw1" || st.Reservations[0].From != "gw2" {
		t.Fatalf("reservations %+v", st.Reservations)
	}
	if d := st.Decisions[len(st.Decisions)-1]; d.Route != broker.RouteRedirect || d.Target != "gw1" || d.Server != "s1" || d.PID != h.pid {
		t.Fatalf("decision %+v", d)
	}
	c.WaitLog("placement", "route=redirect", "pid="+strconv.Itoa(h.pid))

	waitComm(t, h.pid, "cat") // its first line is out, written while nobody was attached
	o := GatewayOpenSSH(t, c, "gw1")
	p := startSSH(t, o, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", "-p", h.port, h.login+"@"+h.host)
	p.WaitFor("waited pid=" + strconv.Itoa(h.pid) + " term=vt220")
	p.Write("live\r")
	p.WaitFor("live")
	if s := c.SessionOf(h.pid, control.StateAttached); s.Gateway != "gw1" || s.ID != h.session ||
		s.Route != control.RouteClaim || !strings.HasPrefix(s.ClientAddr, "127.0.0.1:") {
		t.Errorf("claimed session %+v, want %s attached through gw1, route claim, the client's address", s, h.session)
	}
	if d := c.lastDecision(); d.Route != broker.RouteClaim || d.PID != h.pid {
		t.Errorf("decision %+v", d)
	}
	if n := len(c.Status().Reservations); n != 0 {
		t.Errorf("%d reservations left after the claim", n)
	}
	p.Write("\x04") // Ctrl-D: cat ends, exit 0
	if code, _, errOut := p.Wait(); code != 0 || errOut != "" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestRelayModeNeedsNoHintWithStockSSH(t *testing.T) {
	c := twoNetworks(t, `redirect = "relay"`, "")
	o := GatewayOpenSSH(t, c, "gw2")
	bob := o.Key(t, "bob", c.Bob)
	if out, errOut, code := o.Run(t, nil, bob, "-T", o.At("status")); code != 7 || len(out) != 0 || len(errOut) != 0 {
		t.Errorf("ssh -T status@gw2: exit %d stdout %q stderr %q; want 7 and nothing", code, out, errOut)
	}
	d := c.lastDecision()
	if d.Route != broker.RouteRelay || d.Target != "gw1" || d.Server != "s1" {
		t.Fatalf("decision %+v, want a relay through gw1 to s1", d)
	}
	in := bytes.Repeat([]byte("relay\x00\xff\r\n"), 50000)
	out, errOut, code := o.Run(t, bytes.NewReader(in), bob, "-T", o.At("cat"))
	if code != 0 || !bytes.Equal(out, in) || len(errOut) != 0 {
		t.Errorf("ssh -T cat@gw2 <%d bytes: exit %d, %d bytes back, stderr %q", len(in), code, len(out), errOut)
	}
	out, errOut, code = o.Run(t, nil, bob, "-T", o.At("split"))
	if code != 0 || string(out) != "out\n" || string(errOut) != "err\n" {
		t.Errorf("ssh -T split@gw2: exit %d stdout %q stderr %q", code, out, errOut)
	}
	p := startSSH(t, o, bob, "-tt", "-o", "LogLevel=ERROR", o.At("held"))
	p.WaitFor("waited pid=")
	p.Write("through\r")
	p.WaitFor("through")
	c.Eventually("the relayed session's route in status", func() bool {
		for _, s := range c.Status().Sessions {
			if s.App == "held" && s.Route == control.RouteRelay && s.Gateway == "gw2" && strings.HasPrefix(s.ClientAddr, "127.0.0.1:") {
				return true
			}
		}
		return false
	})
	p.Write("\x04")
	if code, _, errOut := p.Wait(); code != 0 || errOut != "" {
		t.Errorf("ssh -tt held@gw2: exit %d stderr %q", code, errOut)
	}
	c.WaitLog("relay started", "node=gw1", "server=s1")
}

func TestReservationExpiryEndsTheProcess(t *testing.T) {
	c := twoNetworks(t, "", `reservation = "500ms"`)
	h := redirected(t, c, "held")
	waitGone(t, h.pid)
	c.Eventually("the broker to forget the pre-launched session and its reservation", func() bool {
		st := c.Status()
		for _, s := range st.Sessions {
			if s.PID == h.pid || s.ID == h.session {
				return false
			}
		}
		return len(st.Reservations) == 0
	})
	c.WaitLog("session ended", "pid="+strconv.Itoa(h.pid), `hangup="reservation expired"`)
	// Too late: following the hint now is a new placement on gw1.
	o := GatewayOpenSSH(t, c, "gw1")
	p := startSSH(t, o, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", "-p", h.port, h.login+"@"+h.host)
	p.WaitFor("waited pid=")
	if out := p.Stdout(); strings.Contains(out, "pid="+strconv.Itoa(h.pid)+" ") {
		t.Errorf("attached to the expired pid: %q", out)
	}
	p.Write("\x04")
	p.Wait()

	// appd's own timer ends an unclaimed app even when the broker is gone.
	h = redirected(t, c, "held")
	c.Stop("broker")
	waitGone(t, h.pid)
	c.Start("broker")
	c.WaitHealthy()
	for _, s := range c.Status().Sessions {
		if s.PID == h.pid {
			t.Errorf("the restarted broker lists the expired session %+v", s)
		}
	}
}

func TestDownGatewayIsNeverChosen(t *testing.T) {
	c := twoNetworks(t, "", "")
	c.Stop("gw1")
	c.Eventually("the broker to see gw1 gone", func() bool {
		for _, g := range c.Status().Gateways {
			if g.Name == "gw1" {
				return !g.Connected
			}
		}
		return false
	})
	o := GatewayOpenSSH(t, c, "gw2")
	alice := o.Key(t, "alice", c.Alice)
	for range 3 { // s1 would win, but the only gateway reaching it is down
		p := startSSH(t, o, alice, "-tt", "-o", "LogLevel=ERROR", o.At("held"))
		p.WaitFor("waited pid=")
		p.Write("\x04")
		if code, _, errOut := p.Wait(); code != 0 || errOut != "" {
			t.Fatalf("with gw1 down: exit %d, stderr %q", code, errOut)
		}
		if d := c.lastDecision(); d.Server != "s2" || d.Route != broker.RouteDirect || !strings.Contains(d.Reason, "not carried by any gateway: [s1]") {
			t.Fatalf("decision with gw1 down: %+v", d)
		}
	}
	c.Start("gw1")
	c.WaitHealthy()
	redirected(t, c, "held") // back up, gw1 is chosen again
}

func TestRedirectNeverBounces(t *testing.T) {
	c := twoNetworks(t, "", "")
	h := redirected(t, c, "held")
	// Before the client reaches gw1, its server is drained: the best
	// server is now s2, which only gw2 reaches. The client must not be
	// sent back to gw2.
	if _, err := c.broker("drain", "s1"); err != nil {
		t.Fatal(err)
	}
	o := GatewayOpenSSH(t, c, "gw1")
	out, errOut, code := o.Run(t, nil, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", "-p", h.port, h.login+"@"+h.host)
	want := "switchyard: no server available from gateway gw1: the only server offering \"held\" (s1) is draining\r\n"
	if code != 69 || string(errOut) != want || len(out) != 0 {
		t.Errorf("redirected client after a drain: exit %d stdout %q stderr %q; want 69 and %q", code, out, errOut, want)
	}
	waitGone(t, h.pid) // the unused pre-launched app is released
	if d := c.lastDecision(); !strings.Contains(d.Reason, "reservation of pid "+strconv.Itoa(h.pid)+" on s1 not used: server s1 is draining") {
		t.Errorf("decision %+v", d)
	}
	// Without a reservation the same client may be redirected: that is a
	// new decision, not a bounce.
	out, errOut, code = o.Run(t, nil, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", "-p", h.port, h.login+"@"+h.host)
	if code != 75 || !strings.Contains(string(errOut), "ready for you on gw2") {
		t.Errorf("a new request: exit %d stdout %q stderr %q; want a redirect to gw2", code, out, errOut)
	}
}

// sshProc is a running stock ssh client whose output a test waits for.
type sshProc struct {
	t      *testing.T
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	errOut bytes.Buffer
	done   chan struct{}
	code   int
	kill   context.CancelFunc // kills ssh
}

// startSSH starts ssh with o.Args(key, rest...), stdin a pipe; it is
// killed at the end of the test if still running.
func startSSH(t *testing.T, o *OpenSSH, key string, rest ...string) *sshProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ssh", o.Args(key, rest...)...)
	p := &sshProc{t: t, done: make(chan struct{}), kill: cancel}
	cmd.Stdout, cmd.Stderr = lockedWriter{&p.mu, &p.out}, lockedWriter{&p.mu, &p.errOut}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// Stdout is what ssh wrote to stdout so far.
func (p *sshProc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *sshProc) Write(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		p.t.Fatalf("write to ssh: %v", err)
	}
}

// WaitFor waits until stdout contains want.
func (p *sshProc) WaitFor(want string) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.Stdout(), want) {
		select {
		case <-p.done:
			if strings.Contains(p.Stdout(), want) {
				return
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			p.t.Fatalf("ssh exited %d before %q; stdout %q stderr %q", p.code, want, p.out.String(), p.errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.t.Fatalf("timed out waiting for %q; stdout %q stderr %q", want, p.out.String(), p.errOut.String())
		}
	}
}

// Wait waits for ssh to exit and returns its status and output.
func (p *sshProc) Wait() (code int, stdout, stderr string) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("ssh did not exit; stdout %q", p.Stdout())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code, p.out.String(), p.errOut.String()
}

// counterApp numbers the lines typed into it: the count lives only in
// that process.
const counterApp = `[app.counter]
argv = ["sh", "-c", "echo pid=$$; i=0; while read l; do i=$((i+1)); echo n=$i:$l pid=$$; done"]
user = "nobody"
`

// TestResumeThroughARelayWithStockSSH has the demo config's networks: gw1
// reaches s1 and s2 and relays for others on its internal listener; gw2,
// hinting, reaches s2 only. A session on s1 started through gw1 whose
// client drops is listed by gw2 and resumed through it, relayed by gw1:
// same process, same state.
func TestResumeThroughARelayWithStockSSH(t *testing.T) {
	c, first, conn, pid := relayedCounter(t)
	first.Stdin.Write([]byte("before\r"))
	first.WaitFor("n=1:before pid=" + strconv.Itoa(pid))
	if d := c.lastDecision(); d.Server != "s1" || d.Gateway != "gw1" || d.Route != broker.RouteDirect {
		t.Fatalf("decision %+v, want s1 served directly by gw1", d)
	}
	conn.Close() // the network drops
	s := c.SessionOf(pid, control.StateDetached)
	if s.Server != "s1" {
		t.Fatalf("detached session %+v, want it on s1", s)
	}

	list := c.sessionsOf("gw2", "alice", c.Alice)
	if !regexp.MustCompile(`(?m)^` + s.ID + `\s+counter\s+s1\s+detached\s`).MatchString(list) {
		t.Errorf("gw2 does not list %s detached on s1:\n%s", s.ID, list)
	}

	o := GatewayOpenSSH(t, c, "gw2")
	p := startSSH(t, o, o.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", o.At("alice"), "resume", s.ID)
	if at := c.SessionOf(pid, control.StateAttached); at.Gateway != "gw2" || at.ID != s.ID {
		t.Fatalf("resumed session %+v, want %s attached through gw2", at, s.ID)
	}
	p.Write("after\r")
	p.WaitFor("n=2:after pid=" + strconv.Itoa(pid)) // the same shell, its count kept
	c.WaitLog("relay started", "node=gw1", "peer=gw2", "server=s1", "type="+control.ChannelAttach)
	c.WaitLog("session started", "node=gw2", "id="+s.ID, "resumed=true", "via=gw1")
	p.Write("\x04") // Ctrl-D: read fails, the loop ends, sh exits 0
	if code, _, errOut := p.Wait(); code != 0 || errOut != "" {
		t.Errorf("resumed session: exit %d, stderr %q", code, errOut)
	}
	waitGone(t, pid)
}

// relayedCounter starts gw1 (reaching s1 and s2, relaying on its internal
// listener) and gw2 (reaching s2 only), drains s2, and starts alice's
// counter on s1 through gw1. It returns the cluster, that session, its
// client connection and the app's PID.
func relayedCounter(t *testing.T) (*Cluster, *Run, net.Conn, int) {
	t.Helper()
	c := NewCluster(t, ClusterOptions{
		Gateways:      []string{"gw1", "gw2"},
		Servers:       []string{"s1", "s2"},
		GatewayConfig: map[string]string{"gw1": `reach = ["s1", "s2"]`, "gw2": `reach = ["s2"]`},
		Extra:         counterApp,
		ExtraApps:     []string{"counter"},
		Internal:      []string{"gw1"},
	})
	if _, err := c.broker("drain", "s2"); err != nil { // the session goes to s1, which gw2 does not reach
		t.Fatal(err)
	}
	client, conn := c.DialConn("gw1", "alice", c.Alice)
	first := Open(t, client, "counter", "xterm", 24, 80)
	first.WaitFor("pid=")
	return c, first, conn, lastPID(t, first)
}
