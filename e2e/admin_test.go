package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"switchyard/control"
	"switchyard/daemon"
)

func (c *Cluster) broker(args ...string) (string, error) {
	var out bytes.Buffer
	err := daemon.Broker(context.Background(), append(args[:1:1], append([]string{"-config", c.Config}, args[1:]...)...),
		daemon.Env{Stdout: &out})
	return out.String(), err
}

// adminGet gets path from the broker's TCP admin listener with the token.
func (c *Cluster) adminGet(path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+c.lns["admin"].Addr().String()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	return http.DefaultClient.Do(req)
}

func (c *Cluster) editConfig(old, new string) {
	c.t.Helper()
	b, err := os.ReadFile(c.Config)
	if err != nil {
		c.t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		c.t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(c.Config, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

func TestDrainKeepsSessionsAndStopsPlacements(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1", "s2"}})
	client, r, server := c.runningPID(t)
	if out, err := c.broker("drain", server); err != nil || !strings.Contains(out, "drained") {
		t.Fatalf("drain: %q, %v", out, err)
	}
	before := len(c.Status().Decisions)
	for range 3 {
		x := Open(t, client, "pid", "xterm", 24, 80)
		x.WaitFor("24 80")
	}
	st := c.Status()
	for _, d := range st.Decisions[before:] {
		if d.Server == server {
			t.Fatalf("placed on drained server %s", server)
		}
	}
	listed := false
	for _, s := range st.Servers {
		if s.Name == server && !s.Draining {
			t.Fatalf("status does not show %s draining", server)
		}
	}
	for _, s := range st.Sessions {
		listed = listed || s.Server == server
	}
	if !listed {
		t.Fatalf("the session on drained %s is not listed", server)
	}
	r.Stdin.Write([]byte("on-drained\r"))
	r.WaitFor("got:on-drained")
	text, err := c.broker("status")
	if err != nil || !strings.Contains(text, "DRAINING") || !strings.Contains(text, "STATE") || !strings.Contains(text, " attached") {
		t.Fatalf("broker status text:\n%s\n%v", text, err)
	}
	if _, err := c.broker("undrain", server); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Status().Servers {
		if s.Name == server && s.Draining {
			t.Fatalf("%s still draining after undrain", server)
		}
	}
	if _, err := c.broker("drain", "nosuch"); err == nil || !strings.Contains(err.Error(), "no such server") {
		t.Fatalf("drain of an unknown server: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	Open(t, client, "status", "", 0, 0).Wait()
	Open(t, client, "nosuchapp", "", 0, 0).Wait()
	running := Open(t, client, "pid", "xterm", 24, 80)
	running.WaitFor("24 80")
	c.Dial("gw1", "alice", c.Bob) // refused: counts as an auth failure
	c.Eventually("metrics to show placements and the gateway's auth failure", func() bool {
		resp, err := c.adminGet("/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := string(b)
		return strings.Contains(m, `switchyard_placements_total{outcome="placed",reason="ok"} 2`) &&
			strings.Contains(m, `switchyard_sessions{state="attached"} 1`) &&
			strings.Contains(m, `switchyard_sessions{state="detached"} 0`) &&
			strings.Contains(m, `switchyard_placements_total{outcome="refused",reason="unknown_app"} 1`) &&
			strings.Contains(m, `switchyard_selection_seconds_count 3`) &&
			strings.Contains(m, `switchyard_server_up{server="s1"} 1`) &&
			strings.Contains(m, `switchyard_gateway_auth_failures_total{gateway="gw1"} 1`) &&
			strings.Contains(m, `switchyard_reports_total{kind="server"}`)
	})
}

func TestReloadAppliesValidAndRefusesInvalid(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	running := Open(t, client, "pid", "xterm", 24, 80)
	running.WaitFor("24 80")

	// A valid change: a new app for alice, and bob's key removed.
	c.editConfig(`apps = ["secret"]`, `apps = ["secret", "late"]`)
	c.editConfig("[app.secret]", "[app.late]\nargv = [\"echo\", \"late\"]\nuser = \"nobody\"\n[app.secret]")
	c.editConfig(`keys = ["`+authorized(c.Bob)+`"]`, "keys = []")
	c.Reload()
	c.Eventually("the new app to run", func() bool {
		r := Open(t, client, "late", "", 0, 0)
		status, _ := r.Wait()
		out, _ := r.Output()
		return status == 0 && out == "late\n"
	})
	c.Eventually("bob's removed key to be refused", func() bool {
		cl, err := c.Dial("gw1", "bob", c.Bob)
		if err == nil {
			cl.Close()
		}
		return err != nil
	})

	// An invalid file is refused by every daemon; the running config stays.
	c.editConfig("[broker]", "[broker\n")
	c.Reload()
	for _, n := range []string{"broker", "gw1", "s1"} {
		c.WaitLog("config reload refused", "node="+n, "config.toml:3:8: expected")
	}
	r := Open(t, client, "late", "", 0, 0)
	if status, _ := r.Wait(); status != 0 {
		t.Fatalf("after a refused reload, the running config no longer serves: status %d", status)
	}
	running.Stdin.Write([]byte("survived\r"))
	running.WaitFor("got:survived")
}

// TestHostileNamesReachNoAdminTerminal: an app name with terminal escapes
// and 60 KB more (just under the gateway's 64 KiB command limit), typed by a user through a gateway, and session fields
// with escapes announced by a gateway, show in `broker status` only
// escaped, and make no broker log line longer than 1 KiB.
func TestHostileNamesReachNoAdminTerminal(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	esc := "\x1b]0;pwned\x07\x1b[2J\u009b31m"
	r := Open(t, client, esc+strings.Repeat("A", 60_000), "", 0, 0)
	if status, _ := r.Wait(); status != 64 {
		t.Fatalf("hostile app name: status %d, want 64", status)
	}
	p := c.asGateway(t)
	ctx := context.Background()
	if err := p.Notify(ctx, control.MethodSessionStarted, control.SessionInfo{ID: esc + "id", Server: "s1",
		User: esc + "user", App: esc + "app", Gateway: "gw1", State: esc}); err != nil {
		t.Fatal(err)
	}
	c.Eventually("the hostile placement and session in the broker's status", func() bool {
		st := c.Status()
		for _, s := range st.Sessions {
			if s.User == esc+"user" {
				return len(st.Decisions) > 0
			}
		}
		return false
	})
	text, err := c.broker("status")
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.IndexAny(text, "\x1b\x07\u009b"); i >= 0 {
		t.Errorf("broker status shows a raw control character at %d: %q", i, text[max(0, i-40):min(len(text), i+40)])
	}
	if !strings.Contains(text, `\x1b]0;pwned\x07`) || !strings.Contains(text, `\x1b[2J\x9b31muser`) {
		t.Errorf("broker status does not show the names escaped:\n%.2000s", text)
	}
	longest := 0
	c.logMu.Lock()
	for _, line := range strings.Split(c.logs.String(), "\n") {
		if strings.Contains(line, "node=broker") {
			longest = max(longest, len(line))
		}
	}
	c.logMu.Unlock()
	t.Logf("longest broker log line: %d bytes", longest)
	if longest > 1024 {
		t.Fatalf("a broker log line of %d bytes", longest)
	}
}
