package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/brokerstate"
	"switchyard/config"
	"switchyard/daemon"
	"switchyard/internal/sshtest"
)

// cli runs `broker VERB -config FILE ARGS...` against the process
// cluster's broker, as an admin would, and returns its output.
func (c *ProcCluster) cli(verb string, args ...string) (string, error) {
	var out bytes.Buffer
	err := daemon.Broker(context.Background(), append([]string{verb, "-config", c.Config}, args...), daemon.Env{Stdout: &out})
	return out.String(), err
}

// openSSH is the stock ssh client pointed at one of the process
// cluster's gateways.
func (c *ProcCluster) openSSH(gateway string) *OpenSSH {
	c.t.Helper()
	host, err := config.EnsureKey(c.cfg.Resolve(c.cfg.Gateways[gateway].HostKey))
	if err != nil {
		c.t.Fatal(err)
	}
	return NewOpenSSH(c.t, c.cfg.Gateways[gateway].Listen, host.PublicKey())
}

// TestBrokerRestartKeepsDrainsAndReservations: the lone broker, killed
// with -9 and started again, still has a drain made with the CLI (who and
// when), a reservation for a redirected client with its pre-launched
// process, and the session registry before any server reports; the client
// following its hint lands in the reserved PID.
func TestBrokerRestartKeepsDrainsAndReservations(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	c := newProcCluster(t, []string{"gw1", "gw2", "gw3"}, []string{"s1", "s2"}, drainRedirectOptions)
	drainedAt, h, target := drainAndRedirect(t, c)

	// The state is on disk before the hint was sent: kill -9 now loses
	// nothing. s1's appd is stopped meanwhile, so that whatever the new
	// broker knows of s1's sessions comes from the file, not a report.
	c.Signal("broker", syscall.SIGKILL)
	c.Signal("s1", syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			c.Signal("s1", syscall.SIGCONT)
		}
	}()
	c.Start("broker")
	var restarted bool
	c.Eventually("the restarted broker to answer", func() bool {
		st, err := c.status()
		if err != nil {
			return false
		}
		restarted = true
		for _, s := range st.Servers {
			if s.Name == "s1" && s.ReportAge >= 0 {
				t.Fatalf("s1 reported while stopped: %+v", s)
			}
			if s.Name == "s2" && (!s.Draining || s.DrainedBy != me.Username ||
				s.DrainedAt.Before(drainedAt.Add(-5*time.Second)) || s.DrainedAt.After(drainedAt)) {
				t.Fatalf("s2 after the restart: %+v; want drained by %s at about %v", s, me.Username, drainedAt)
			}
		}
		if len(st.Reservations) != 1 || st.Reservations[0].PID != h.pid || st.Reservations[0].Gateway != target {
			t.Fatalf("reservations after the restart: %+v", st.Reservations)
		}
		found := false
		for _, s := range st.Sessions {
			found = found || s.PID == h.pid && s.ID == h.session && s.Server == "s1" && s.State == "detached"
		}
		if !found {
			t.Fatalf("the pre-launched session %s pid %d is not listed before s1 reports: %+v", h.session, h.pid, st.Sessions)
		}
		return true
	})
	if !restarted {
		t.Fatal("never answered")
	}
	text, err := c.cli("status")
	if err != nil && !errors.Is(err, daemon.ErrDegraded) || !strings.Contains(text, "yes ("+me.Username+", ") {
		t.Fatalf("broker status does not say who drained s2:\n%s%v", text, err)
	}
	c.Signal("s1", syscall.SIGCONT)
	stopped = false
	c.WaitUp()

	// The redirected client follows its hint and gets the reserved PID.
	o1 := c.openSSH(target)
	p := startSSH(t, o1, o1.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", "-p", h.port, h.login+"@"+h.host)
	p.WaitFor("waited pid=" + strconv.Itoa(h.pid) + " ")
	p.Write("after-restart\r")
	p.WaitFor("after-restart")

	// The drain holds: new sessions at gw3, which reaches both, go to s1.
	client := c.Dial("gw3")
	for range 4 {
		x := Open(t, client, "pid", "xterm", 24, 80)
		x.WaitFor("24 80")
		if got := c.serverOf(lastPID(t, x)); got != "s1" {
			t.Fatalf("placed on %s after the restart; s2 is drained", got)
		}
		x.Session.Close()
	}
	p.Write("\x04")
	if code, _, errOut := p.Wait(); code != 0 || errOut != "" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if out, err := c.cli("undrain", "s2"); err != nil || !strings.Contains(out, "undrained") {
		t.Fatalf("undrain: %q, %v", out, err)
	}
}

// TestBrokerRefusesUnknownStateFile: a state file of another format
// version stops the broker with one line naming it, and is left as it
// was.
func TestBrokerRefusesUnknownStateFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	addrs := freeAddrs(t, 4)
	writeConfig(t, cfgPath, map[string]any{"State": dir, "Broker": addrs[0], "Admin": addrs[1], "Interval": "200ms",
		"Gateways": map[string]string{"gw1": addrs[2]}, "Servers": map[string]string{"s1": addrs[3]}, "Max": 5,
		"AliceKey": authorized(sshtest.NewSigner(t)), "BobKey": authorized(sshtest.NewSigner(t))})
	state := filepath.Join(dir, brokerstate.FileName)
	content := []byte(`{"format": 99}`)
	if err := os.WriteFile(state, content, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := daemon.Broker(context.Background(), []string{"-config", cfgPath}, daemon.Env{Stderr: &stderr})
	if code := daemon.ExitCode("broker", err, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1 (%v)", code, err)
	}
	// Log records (the start, a key made) may come first; the failure is
	// one line of its own, the last.
	var errLines []string
	for l := range strings.Lines(stderr.String()) {
		if !strings.HasPrefix(l, "time=") {
			errLines = append(errLines, l)
		}
	}
	line := strings.Join(errLines, "")
	if len(errLines) != 1 || !strings.HasSuffix(stderr.String(), line) || !strings.Contains(line, state) || !strings.Contains(line, "format version 99") {
		t.Fatalf("stderr %q: want one line naming %s and its version", line, state)
	}
	if raw, _ := os.ReadFile(state); !bytes.Equal(raw, content) {
		t.Fatalf("state file changed to %q", raw)
	}
}

// drainRedirectOptions shape the cluster of drainAndRedirect: gw1 reaches
// s1, gw2 reaches s2, gw3 both; every gateway hints.
var drainRedirectOptions = procOptions{
	GatewayConfig: map[string]string{"gw1": `reach = ["s1"]`, "gw2": `reach = ["s2"]`},
	Extra:         heldApp, ExtraApps: []string{"held"},
}

// drainAndRedirect drains s2 with the CLI, then has alice ask gw2, which
// reaches only s2, for held with a terminal: she is sent on with the app
// pre-launched on s1. It returns when the drain was made, the hint, and
// the gateway it names (gw1 or gw3), once the reserved process waits.
func drainAndRedirect(t *testing.T, c *ProcCluster) (drainedAt time.Time, h hint, target string) {
	t.Helper()
	if out, err := c.cli("drain", "s2"); err != nil || !strings.Contains(out, "drained") {
		t.Fatalf("broker drain s2: %q, %v", out, err)
	}
	drainedAt = time.Now()
	o2 := c.openSSH("gw2")
	_, errOut, code := o2.Run(t, nil, o2.Key(t, "alice", c.Alice), "-tt", "-o", "LogLevel=ERROR", o2.At("held"))
	if code != 75 {
		t.Fatalf("ssh -tt held@gw2: exit %d, stderr %q; want 75 and a hint", code, errOut)
	}
	h = parseHint(t, string(errOut))
	for _, gw := range []string{"gw1", "gw3"} {
		if _, port, _ := net.SplitHostPort(c.cfg.Gateways[gw].Listen); h.port == port {
			target = gw
		}
	}
	if target == "" {
		t.Fatalf("hint %+v, want gw1 or gw3", h)
	}
	waitComm(t, h.pid, "cat")
	return drainedAt, h, target
}
