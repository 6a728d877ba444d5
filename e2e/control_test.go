package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"switchyard/audit"
	"switchyard/control"
)

// Admin control of sessions and users (broker sessions, kill, kick, lock,
// unlock), with the stock OpenSSH client in tmux for what the user sees.

// sessionsOfUser is `broker sessions -user U -json`.
func (c *Cluster) sessionsOfUser(user string) []control.SessionInfo {
	c.t.Helper()
	out, err := c.broker("sessions", "-user", user, "-json")
	if err != nil {
		c.t.Fatalf("broker sessions: %v", err)
	}
	var v struct{ Sessions []control.SessionInfo }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		c.t.Fatalf("broker sessions -json: %v\n%s", err, out)
	}
	return v.Sessions
}

// waitSessions waits until the broker lists n sessions of user, and
// returns them.
func (c *Cluster) waitSessions(user string, n int) []control.SessionInfo {
	c.t.Helper()
	var list []control.SessionInfo
	c.Eventually(strconv.Itoa(n)+" sessions of "+user, func() bool {
		list = c.sessionsOfUser(user)
		return len(list) == n
	})
	return list
}

// killedLine is what the user of a killed session reads.
const killedLine = "switchyard: session ended by an administrator"

func TestAdminKillInTmux(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	o := GatewayOpenSSH(t, c, "gw1")
	alice := o.Key(t, "alice", c.Alice)
	x := NewTmux(t)
	x.Start("a", 100, 30, append([]string{"ssh"}, o.Args(alice, "-tt", o.At("ticker"))...))
	x.WaitText("a", "tick=2 ")
	s := c.waitSessions("alice", 1)[0]

	table, err := c.broker("sessions")
	if err != nil || !regexp.MustCompile(`(?m)^`+s.ID[:12]+`\s+alice\s+ticker\s+s1\s+gw1\s+`+strconv.Itoa(s.PID)+`\s`).MatchString(table) {
		t.Fatalf("broker sessions (err %v) does not list the session:\n%s", err, table)
	}
	if out, err := c.broker("kill", "0123456789abcdef"); err == nil || !strings.Contains(err.Error(), "no such session") {
		t.Errorf("kill of an unknown session: %q, %v; want no such session", out, err)
	}
	out, err := c.broker("kill", s.ID[:8], "-reason", "maintenance at noon")
	if err != nil || !strings.Contains(out, "killed "+s.ID) {
		t.Fatalf("broker kill: %q, %v", out, err)
	}
	screen := x.WaitText("a", killedLine+": maintenance at noon")
	if status := x.WaitExit("a"); status != control.ExitKilled {
		t.Errorf("ssh exited %d after a kill, want %d; pane:\n%s", status, control.ExitKilled, screen)
	}
	waitGone(t, s.PID)
	c.waitSessions("alice", 0)
	if _, err := c.broker("kill", s.ID); err == nil {
		t.Errorf("a second kill of %s succeeded", s.ID)
	}
	// The kill is audited with who asked, at the broker and at appd.
	evs := c.auditEvents("-session", s.ID)
	admin := findEvent(evs, "admin.kill", "broker")
	if admin == nil || admin.Fields["by"] == "" || admin.Fields["by"] == "unknown" || admin.Fields["reason"] != "maintenance at noon" {
		t.Errorf("admin.kill event %+v", admin)
	}
	if exit := findEvent(evs, "exit", "s1"); exit == nil || exit.Fields["killed_by"] != admin.Fields["by"] {
		t.Errorf("exit event %+v does not name the admin %v", exit, admin.Fields["by"])
	}
}

func TestAdminKickEndsEveryUserSession(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1", "s2"}})
	o := GatewayOpenSSH(t, c, "gw1")
	alice, bob := o.Key(t, "alice", c.Alice), o.Key(t, "bob", c.Bob)
	x := NewTmux(t)
	x.Start("a1", 80, 24, append([]string{"ssh"}, o.Args(alice, "-tt", o.At("ticker"))...))
	x.Start("a2", 80, 24, append([]string{"ssh"}, o.Args(alice, "-tt", o.At("pid"))...))
	x.Start("b", 80, 24, append([]string{"ssh"}, o.Args(bob, "-tt", o.At("ticker"))...))
	x.WaitText("a1", "tick=1 ")
	x.WaitText("a2", "pid=")
	x.WaitText("b", "tick=1 ")
	mine := c.waitSessions("alice", 2)
	c.waitSessions("bob", 1)

	out, err := c.broker("kick", "alice", "-reason", "account review")
	if err != nil || strings.Count(out, "killed ") != 2 {
		t.Fatalf("broker kick: %q, %v; want two sessions killed", out, err)
	}
	for _, pane := range []string{"a1", "a2"} {
		x.WaitText(pane, killedLine+": account review")
		if status := x.WaitExit(pane); status != control.ExitKilled {
			t.Errorf("%s: ssh exited %d after a kick, want %d", pane, status, control.ExitKilled)
		}
	}
	for _, s := range mine {
		waitGone(t, s.PID)
	}
	// Bob's session runs on.
	before := lastTickIn(x.Screen("b"))
	x.WaitScreen("b", "bob's ticks to go on", func(s string) bool { return lastTickIn(s) > before+2 })
	if list := c.sessionsOfUser("bob"); len(list) != 1 {
		t.Errorf("bob has %d sessions after alice's kick, want 1", len(list))
	}
	if out, err := c.broker("kick", "alice"); err != nil || !strings.Contains(out, "no sessions") {
		t.Errorf("second kick: %q, %v", out, err)
	}
}

var tickRE = regexp.MustCompile(`tick=(\d+)`)

// lastTickIn is the last tick=N on a screen, 0 if none.
func lastTickIn(screen string) int {
	m := tickRE.FindAllStringSubmatch(screen, -1)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// lockedLine is what a locked user reads.
const lockedLine = "switchyard: user locked by an administrator"

func TestAdminLockRefusesLoginsAndResumesAcrossRestart(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	// A detached session of alice's, to try resuming.
	client, conn := c.DialConn("gw1", "alice", c.Alice)
	first := Open(t, client, "ticker", "xterm", 24, 80)
	first.WaitFor("tick=1 ")
	pid := lastPID(t, first)
	conn.Close()
	detached := c.SessionOf(pid, control.StateDetached)

	if _, err := c.broker("lock", "nosuchuser"); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Errorf("lock of an unknown user: %v", err)
	}
	if out, err := c.broker("lock", "alice", "-reason", "security review"); err != nil || out != "alice: locked\n" {
		t.Fatalf("broker lock: %q, %v", out, err)
	}
	// A lock whose time is past holds nothing.
	if _, err := c.broker("lock", "bob", "-until", "2000-01-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	o := GatewayOpenSSH(t, c, "gw1")
	alice, bob := o.Key(t, "alice", c.Alice), o.Key(t, "bob", c.Bob)
	want := lockedLine + ": security review"
	x := NewTmux(t)
	for _, try := range []struct {
		name  string
		login []string
	}{
		{"app", []string{o.At("ticker")}},             // a new session
		{"picker", []string{o.At("alice")}},           // the picker
		{"resume", []string{o.At("alice"), "resume"}}, // a resume
		{"list", []string{o.At("alice"), "sessions"}}, // the session list
	} {
		name, login := try.name, try.login
		t.Logf("locked alice tries: %s", name)
		x.Start(name, 100, 30, append([]string{"ssh"}, o.Args(alice, append([]string{"-tt"}, login...)...)...))
		screen := x.WaitText(name, want)
		if status := x.WaitExit(name); status != control.ExitLocked {
			t.Errorf("%s: locked user's ssh exited %d, want %d; pane:\n%s", name, status, control.ExitLocked, screen)
		}
		if n := strings.Count(screen, "switchyard: "); n != 1 {
			t.Errorf("%s: %d switchyard lines, want one:\n%s", name, n, screen)
		}
	}
	if out, errOut, code := o.Run(t, nil, bob, "-T", o.At("bob"), "echo", "hi"); code != 0 || string(out) != "hi\n" {
		t.Errorf("bob (lock expired): exit %d, %q %q", code, out, errOut)
	}
	st := c.Status()
	if len(st.Locks) != 1 || st.Locks[0].User != "alice" || st.Locks[0].Reason != "security review" || st.Locks[0].By == "" {
		t.Errorf("status locks: %+v", st.Locks)
	}
	if text, _ := c.broker("status"); !regexp.MustCompile(`(?m)^alice\s+\S+\s+.*security review$`).MatchString(text) {
		t.Errorf("broker status does not show the lock:\n%s", text)
	}

	// Kept across a broker restart.
	c.Stop("broker")
	c.Start("broker")
	c.WaitHealthy()
	if _, errOut, code := o.Run(t, nil, alice, "-T", o.At("alice"), "echo", "hi"); code != control.ExitLocked || string(errOut) != want+"\n" {
		t.Errorf("after a broker restart: exit %d, stderr %q; want %d and %q", code, errOut, control.ExitLocked, want)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("the lock ended alice's detached session")
	}

	if out, err := c.broker("unlock", "alice"); err != nil || out != "alice: unlocked\n" {
		t.Fatalf("broker unlock: %q, %v", out, err)
	}
	x.Start("back", 100, 30, append([]string{"ssh"}, o.Args(alice, "-tt", o.At("alice"), "resume", detached.ID)...))
	x.WaitText("back", "pid="+strconv.Itoa(pid))
	if len(c.Status().Locks) != 0 {
		t.Errorf("locks after unlock: %+v", c.Status().Locks)
	}
}

// TestAdminControlEndpointsGuarded: kill, kick, lock and unlock are
// POST-only behind the admin guard (token, Host and Origin on TCP), the
// listings need the token too, and each use is audited with the caller.
func TestAdminControlEndpointsGuarded(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	withToken := bearer(testAdminToken)
	foreign := func(r *http.Request) { withToken(r); r.Header.Set("Origin", "http://evil.example") }
	for _, path := range []string{"/kill/0123456789ab", "/kick/alice", "/lock/alice", "/unlock/alice"} {
		for _, r := range []struct {
			name   string
			method string
			edit   func(*http.Request)
			want   int
		}{
			{"no token", "POST", nil, 401},
			{"foreign Origin", "POST", foreign, 403},
			{"GET", "GET", withToken, 405},
		} {
			if got := c.adminDo(t, r.method, path, r.edit); got != r.want {
				t.Errorf("%s %s: status %d, want %d", r.name, path, got, r.want)
			}
		}
	}
	for _, path := range []string{"/sessions", "/audit"} {
		if got := c.adminDo(t, "GET", path, nil); got != 401 {
			t.Errorf("GET %s without token: %d, want 401", path, got)
		}
	}
	if st := c.Status(); len(st.Locks) != 0 {
		t.Fatalf("a refused request locked: %+v", st.Locks)
	}
	if got := c.adminDo(t, "POST", "/lock/alice?reason=by+token", withToken); got != 200 {
		t.Fatalf("lock with the token: %d", got)
	}
	if got := c.adminDo(t, "POST", "/lock/nosuchuser", withToken); got != 404 {
		t.Errorf("lock of an unknown user: %d, want 404", got)
	}
	var lock *audit.Event
	c.Eventually("the lock in the audit trail", func() bool {
		lock = findEvent(c.auditEvents("-user", "alice"), "admin.lock", "broker")
		return lock != nil
	})
	if lock.Fields["by"] != "token" || lock.Fields["reason"] != "by token" || lock.Fields["outcome"] != "ok" {
		t.Errorf("admin.lock event %+v", lock.Fields)
	}
	// The reads above are audited too, with the since they asked for:
	// none, not the year 1.
	read := findEvent(c.auditEvents("-user", "alice"), "admin.audit", "broker")
	if read == nil || read.Fields["by"] == nil || read.Fields["since"] != nil {
		t.Errorf("admin.audit event %+v", read)
	}
	if got := c.adminDo(t, "GET", "/audit?since=yesterday", withToken); got != 400 {
		t.Errorf("audit with a bad since: %d, want 400", got)
	}
}
