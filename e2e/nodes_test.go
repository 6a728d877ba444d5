package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"switchyard/config"
	"switchyard/daemon"
)

// logLines returns every daemon log line so far that contains all parts.
func (c *Cluster) logLines(parts ...string) []string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	var out []string
	for _, line := range strings.Split(c.logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// statusCLI runs `broker status` (with -json if asJSON) and returns its
// stdout, stderr and exit status.
func (c *Cluster) statusCLI(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	err := daemon.Broker(context.Background(), append([]string{"status", "-config", c.Config}, args...),
		daemon.Env{Stdout: &out, Stderr: &errOut})
	code := daemon.Exit("broker", err, &out, &errOut)
	return out.String(), errOut.String(), code
}

// A reload that changes a key the node reads only at start is refused
// whole by that node, which logs only the refusal, names the key, keeps
// its running config (its hash, and what the new file would add), and
// shows in `broker status` as a mismatch with the key; the broker, for
// which the key reloads, takes the file. Status then exits 3.
func TestReloadNeedingRestartAppliesNothing(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	old := c.Status()
	if old.ConfigHash != c.cfg.Hash || len(old.Problems) != 0 {
		t.Fatalf("before: broker runs %q (file %q), problems %q", old.ConfigHash, c.cfg.Hash, old.Problems)
	}
	for _, g := range old.Gateways {
		if g.ConfigHash != c.cfg.Hash || g.ConfigMismatch {
			t.Fatalf("before: gateway %+v", g)
		}
	}
	// gw1 moves to another port (a restart key) and bob loses his key.
	c.editConfig(`listen = "`+c.GatewayAddr("gw1")+`"`, `listen = "127.0.0.1:1"`)
	c.editConfig(`keys = ["`+authorized(c.Bob)+`"]`, "keys = []")
	next, err := config.Load(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	c.Reload()
	c.WaitLog("config reload refused", "node=gw1", "restart_needed=[gateway.gw1.listen]")
	c.WaitLog("config reloaded", "node=broker", "hash="+next.Hash)
	c.WaitLog("config reloaded", "node=s1", "hash="+next.Hash)
	if l := c.logLines("config reloaded", "node=gw1"); len(l) > 0 {
		t.Fatalf("gw1 refused the reload and still logged: %q", l)
	}
	c.Eventually("status to flag gw1", func() bool {
		st := c.Status()
		return st.ConfigHash == next.Hash && len(st.Gateways) == 1 && st.Gateways[0].ConfigMismatch &&
			st.Gateways[0].ConfigHash == old.ConfigHash && slices.Equal(st.Gateways[0].RestartNeeded, []string{"gateway.gw1.listen"}) &&
			!st.Servers[0].ConfigMismatch
	})
	text, _, code := c.statusCLI()
	if code != 3 || !strings.Contains(text, "restart needed: gateway.gw1.listen") || !strings.Contains(text, "MISMATCH") ||
		!strings.Contains(text, "DEGRADED") {
		t.Fatalf("status exit %d, text:\n%s", code, text)
	}
	// gw1 serves on its old address, with its old users: bob's key works.
	client, err := c.Dial("gw1", "bob", c.Bob)
	if err != nil {
		t.Fatalf("gw1 applied part of the refused file, or left its address: %v", err)
	}
	client.Close()
	// Back to the running file: gw1 reloads it, the cluster is whole.
	c.editConfig(`listen = "127.0.0.1:1"`, `listen = "`+c.GatewayAddr("gw1")+`"`)
	c.Reload()
	c.WaitLog("config reloaded", "node=gw1")
	c.Eventually("gw1 to refuse bob's removed key", func() bool {
		cl, err := c.Dial("gw1", "bob", c.Bob)
		if err == nil {
			cl.Close()
		}
		return err != nil
	})
	c.Eventually("status to be whole", func() bool {
		_, _, code := c.statusCLI("-json")
		return code == 0
	})
}

// `broker status` exits 0 on a whole cluster and 3 when a server is
// down, naming it; each session shows its client's address and route.
func TestStatusExitsThreeWhenDegraded(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1", "s2"}})
	client, r, _ := c.runningPID(t)
	_ = client
	r.Stdin.Write([]byte("x\r"))
	out, _, code := c.statusCLI("-json")
	st := decodeStatus(t, []byte(out))
	if code != 0 || len(st.Problems) != 0 || len(st.Sessions) != 1 {
		t.Fatalf("whole cluster: exit %d, problems %q, sessions %+v", code, st.Problems, st.Sessions)
	}
	s := st.Sessions[0]
	if !strings.HasPrefix(s.ClientAddr, "127.0.0.1:") || s.Route != "direct" {
		t.Fatalf("session client %q route %q, want 127.0.0.1:PORT and direct", s.ClientAddr, s.Route)
	}
	text, _, _ := c.statusCLI()
	if !regexp.MustCompile(`attached\s+127\.0\.0\.1:\d+\s+direct`).MatchString(text) || !strings.Contains(text, "cluster OK") {
		t.Fatalf("status text:\n%s", text)
	}
	down := "s1"
	if s.Server == "s1" {
		down = "s2"
	}
	c.Stop(down)
	c.Eventually("status to exit 3", func() bool {
		_, _, code := c.statusCLI("-json")
		return code == 3
	})
	out, errOut, _ := c.statusCLI("-json")
	st = decodeStatus(t, []byte(out))
	if !slices.Contains(st.Problems, "server "+down+" down") || !strings.Contains(errOut, "cluster degraded: server "+down+" down") {
		t.Fatalf("problems %q, stderr %q", st.Problems, errOut)
	}
}

// A server the file drains cannot be undrained by command (exit 1, with
// the reason); a broken file leaves status, drain, undrain and the
// session commands working against the running broker, with a warning.
func TestAdminCommandsDespiteBrokenFile(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1", "s2"}, ServerConfig: map[string]string{"s2": "draining = true"}})
	_, err := c.broker("undrain", "s2")
	var msg bytes.Buffer
	if code := daemon.ExitCode("broker", err, &msg); code != 1 || !strings.Contains(msg.String(), "draining = true") {
		t.Fatalf("undrain of a server drained in the file: exit %d, %q", code, msg.String())
	}
	for _, srv := range c.Status().Servers {
		if srv.Name == "s2" && (!srv.Draining || srv.DrainedBy != "config") {
			t.Fatalf("s2 after the refused undrain: %+v", srv)
		}
	}
	c.editConfig("[broker]", "[broker\n")
	out, errOut, code := c.statusCLI()
	if code != 0 || !strings.Contains(out, "GATEWAY") || !strings.Contains(errOut, "is invalid") {
		t.Fatalf("status with a broken file: exit %d\nstdout:\n%s\nstderr: %s", code, out, errOut)
	}
	if out, err := c.broker("drain", "s1"); err != nil || !strings.Contains(out, "drained") {
		t.Fatalf("drain with a broken file: %q, %v", out, err)
	}
	if out, err := c.broker("undrain", "s1"); err != nil || !strings.Contains(out, "undrained") {
		t.Fatalf("undrain with a broken file: %q, %v", out, err)
	}
	// So do the session commands: a broken file must not keep the admin
	// from ending a session or locking a user out.
	for _, args := range [][]string{{"sessions"}, {"lock", "alice"}, {"kick", "alice"}, {"unlock", "alice"},
		{"audit", "-user", "alice"}} {
		if out, err := c.broker(args...); err != nil {
			t.Fatalf("%s with a broken file: %q, %v", args, out, err)
		}
	}
	if _, err := c.broker("replay", "0123456789abcdef"); err == nil || strings.Contains(err.Error(), "toml") {
		t.Fatalf("replay with a broken file: %v (want the broker's answer: no such recording)", err)
	}
}

// adminGetFrom gets path from a node's admin listener.
func adminGetFrom(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Gateways and appds serve /metrics (passing promlint), /healthz and
// /readyz on their loopback admin listener; readiness follows the
// broker taking their reports; a foreign Host is refused. The broker is
// ready with a healthy server to place on.
func TestNodeAdminMetricsAndReadiness(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, Admin: []string{"gw1", "s1"}})
	client, r, _ := c.runningPID(t)
	defer client.Close()
	r.Stdin.Write([]byte("x\r"))
	if cl, err := c.Dial("gw1", "alice", c.Bob); err == nil { // a wrong key: one failed login
		cl.Close()
	}
	want := map[string][]string{
		"gw1": {`switchyard_build_info{goversion="go`, `switchyard_config_info{hash="` + c.cfg.Hash + `"} 1`,
			"switchyard_config_last_reload_successful 1", "switchyard_config_restart_needed 0", "switchyard_report_age_seconds ",
			"switchyard_gateway_open_connections 1", "switchyard_gateway_active_sessions 1",
			`switchyard_gateway_login_failures_total{reason="no_login"} 1`, "switchyard_gateway_blocked_addresses 0"},
		"s1": {`switchyard_config_info{hash="` + c.cfg.Hash + `"} 1`, "switchyard_config_last_reload_success_timestamp_seconds ",
			`switchyard_appd_sessions{state="attached"} 1`, "switchyard_appd_ptys 1",
			`switchyard_appd_spawn_failures_total{code="spawn_failed"} 0`, "switchyard_report_age_seconds "},
	}
	resp, err := c.adminGet("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if probs, err := promlint.New(bytes.NewReader(b)).Lint(); err != nil || len(probs) > 0 ||
		!strings.Contains(string(b), `switchyard_config_info{hash="`+c.cfg.Hash+`"} 1`) {
		t.Fatalf("broker metrics: promlint %v %+v\n%s", err, probs, b)
	}
	resp, err = c.adminGet("/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok: placing on 1 healthy servers\n" {
		t.Fatalf("broker /readyz: %d %q", resp.StatusCode, b)
	}
	for node, lines := range want {
		addr := c.AdminAddr(node)
		var body string
		c.Eventually(node+"'s metrics", func() bool {
			_, body = adminGetFrom(t, addr, "/metrics")
			for _, l := range lines {
				if !strings.Contains(body, l) {
					return false
				}
			}
			return true
		})
		probs, err := promlint.New(strings.NewReader(body)).Lint()
		if err != nil || len(probs) > 0 {
			t.Fatalf("%s: promlint: %v %+v", node, err, probs)
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, b := adminGetFrom(t, addr, path); code != 200 || b != "ok\n" {
				t.Fatalf("%s %s: %d %q", node, path, code, b)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		req.Host = "evil.example:80"
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: a foreign Host got %v %v", node, resp, err)
		}
	}
	c.Stop("broker")
	for _, node := range []string{"gw1", "s1"} {
		c.Eventually(node+" not ready without a broker", func() bool {
			code, b := adminGetFrom(t, c.AdminAddr(node), "/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(b, "report")
		})
		if code, _ := adminGetFrom(t, c.AdminAddr(node), "/healthz"); code != 200 {
			t.Fatalf("%s unhealthy without a broker: %d", node, code)
		}
	}
}

// When a reload moves a gateway's listen address, the gateway refuses it
// (restart needed) and serves on; the broker, which took the file, still
// sends redirected users where the gateway serves (its reported
// address), not to the new port nothing serves.
func TestRedirectNamesTheAddressTheGatewayServes(t *testing.T) {
	c := twoNetworks(t, "", "")
	c.editConfig(`listen = "`+c.GatewayAddr("gw1")+`"`, `listen = "127.0.0.1:1"`)
	c.Reload()
	c.WaitLog("config reload refused", "node=gw1", "restart_needed=[gateway.gw1.listen]")
	c.WaitLog("config reloaded", "node=broker")
	h := redirected(t, c, "held") // checks the hint names gw1's running port
	if h.port == "1" {
		t.Fatal("redirected to the port nothing serves")
	}
}
