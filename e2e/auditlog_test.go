package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"switchyard/audit"
	"switchyard/control"
)

// auditEvents is `broker audit -json` with args, decoded.
func (c *Cluster) auditEvents(args ...string) []audit.Event {
	c.t.Helper()
	out, err := c.broker(append([]string{"audit", "-json"}, args...)...)
	if err != nil {
		c.t.Fatalf("broker audit %v: %v", args, err)
	}
	var evs []audit.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		ev, ok := audit.Parse(sc.Bytes())
		if !ok {
			c.t.Fatalf("broker audit -json printed a line that is no event: %q", sc.Text())
		}
		evs = append(evs, ev)
	}
	return evs
}

// findEvent is the first event named name written by node ("" any).
func findEvent(evs []audit.Event, name, node string) *audit.Event {
	for i := range evs {
		if evs[i].Event == name && (node == "" || evs[i].Node == node) {
			return &evs[i]
		}
	}
	return nil
}

// trail is evs as "node:event" words, for messages.
func trail(evs []audit.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.Node + ":" + ev.Event)
		if k, _ := ev.Fields["kind"].(string); k != "" {
			b.WriteString("(" + k + ")")
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// TestAuditTrailOfWholeSession: a session's whole life, from the login
// through a drop, a resume through another gateway, to the app's exit,
// read back in order by `broker audit -session ID` from every node.
func TestAuditTrailOfWholeSession(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Gateways: []string{"gw1", "gw2"}, Servers: []string{"s1"}})
	o1, o2 := GatewayOpenSSH(t, c, "gw1"), GatewayOpenSSH(t, c, "gw2")
	alice1, alice2 := o1.Key(t, "alice", c.Alice), o2.Key(t, "alice", c.Alice)
	x := NewTmux(t)
	x.Start("first", 100, 30, append([]string{"ssh"}, o1.Args(alice1, "-tt", o1.At("pid"))...))
	x.WaitText("first", "30 100")
	x.Cmd("send-keys", "-t", "first", "hello", "Enter")
	x.WaitText("first", "got:hello")
	pid, _ := strconv.Atoi(pidRE.FindStringSubmatch(x.Screen("first"))[1])
	// Another user's session meanwhile: none of it belongs in the trail.
	if _, _, code := o1.Run(t, nil, o1.Key(t, "bob", c.Bob), "-T", o1.At("bob"), "echo", "bob-was-here"); code != 0 {
		t.Fatalf("bob's echo exited %d", code)
	}

	x.Cmd("kill-session", "-t", "first") // the terminal goes away: ssh dies, the session detaches
	s := c.SessionOf(pid, control.StateDetached)
	x.Start("second", 100, 30, append([]string{"ssh"}, o2.Args(alice2, "-tt", o2.At("alice"), "resume", s.ID)...))
	x.Cmd("send-keys", "-t", "second", "again", "Enter")
	x.WaitText("second", "got:again")
	x.Cmd("send-keys", "-t", "second", "C-d")
	if status := x.WaitExit("second"); status != 0 {
		t.Fatalf("the app's exit status reached ssh as %d, want 0", status)
	}
	waitGone(t, pid)

	var evs []audit.Event
	c.Eventually("the session's exit in the audit trail", func() bool {
		evs = c.auditEvents("-session", s.ID)
		return findEvent(evs, "session.close", "gw2") != nil && findEvent(evs, "exit", "s1") != nil
	})
	for i := 1; i < len(evs); i++ {
		if evs[i].TS.Before(evs[i-1].TS) {
			t.Fatalf("events out of time order at %d: %s", i, trail(evs))
		}
	}
	for _, ev := range evs {
		if ev.V != audit.Version || ev.User != "alice" && ev.User != "" {
			t.Fatalf("event %+v: not version %d or not alice's", ev, audit.Version)
		}
	}
	// The order of the life: each step after the one before it.
	steps := []struct{ node, event, kind string }{
		{"gw1", "auth.accepted", ""},
		{"broker", "place", ""},
		{"s1", "spawn", ""},
		{"gw1", "session.open", "new"},
		{"s1", "detach", ""},
		{"gw2", "auth.accepted", ""},
		{"gw2", "session.open", "resume"},
		{"s1", "exit", ""},
		{"gw2", "session.close", ""},
	}
	at := 0
	for _, st := range steps {
		for at < len(evs) && !(evs[at].Node == st.node && evs[at].Event == st.event &&
			(st.kind == "" || evs[at].Fields["kind"] == st.kind)) {
			at++
		}
		if at == len(evs) {
			t.Fatalf("no %s:%s %s in order in the trail: %s", st.node, st.event, st.kind, trail(evs))
		}
	}
	for _, want := range []string{"attach", "resume"} {
		if findEvent(evs, want, "s1") == nil {
			t.Errorf("no %s event at s1: %s", want, trail(evs))
		}
	}
	if n := strings.Count(trail(evs), "auth.accepted"); n != 2 {
		t.Errorf("%d logins in the trail, want alice's two: %s", n, trail(evs))
	}
	spawn, exit := findEvent(evs, "spawn", "s1"), findEvent(evs, "exit", "s1")
	if spawn.Fields["pid"] != num(pid) || spawn.Fields["unix_user"] != "nobody" || spawn.Fields["app"] != "pid" {
		t.Errorf("spawn event %+v", spawn.Fields)
	}
	if argv, _ := spawn.Fields["argv"].([]any); len(argv) != 3 || argv[0] != "sh" {
		t.Errorf("spawn argv %v", spawn.Fields["argv"])
	}
	if exit.Fields["status"] != num(0) || exit.Fields["bytes_in"] == num(0) || exit.Fields["duration"] == nil {
		t.Errorf("exit event %+v", exit.Fields)
	}
	if r := findEvent(evs, "resume", "s1"); r.Fields["gateway"] != "gw2" {
		t.Errorf("resume event %+v, want through gw2", r.Fields)
	}
	if a := findEvent(evs, "auth.accepted", "gw1"); a.Fields["method"] != "publickey" ||
		!strings.HasPrefix(a.Fields["key"].(string), "SHA256:") || a.Fields["client"] == "" {
		t.Errorf("auth event %+v", a.Fields)
	}
	if p := findEvent(evs, "place", "broker"); p.Fields["server"] != "s1" || p.Fields["gateway"] != "gw1" || p.Fields["route"] == "" {
		t.Errorf("place event %+v", p.Fields)
	}

	// -user gathers alice's events, bob's are his; nothing secret is
	// written anywhere.
	if evs := c.auditEvents("-user", "bob"); findEvent(evs, "spawn", "s1") == nil || findEvent(evs, "spawn", "s1").Fields["app"] != "echo" {
		t.Errorf("bob's trail: %s", trail(evs))
	}
	text, err := c.broker("audit", "-session", s.ID[:8])
	if err != nil || !strings.Contains(text, " s1 exit session="+s.ID+" user=alice ") {
		t.Errorf("broker audit text (err %v):\n%s", err, text)
	}
	for _, node := range []string{"broker", "gw1", "gw2", "s1"} {
		raw, err := os.ReadFile(filepath.Join(c.Dir, audit.FileName(node)))
		if err != nil {
			t.Fatalf("audit file of %s: %v", node, err)
		}
		if strings.Contains(string(raw), testAdminToken) {
			t.Errorf("%s's audit file holds the admin token", node)
		}
	}
}

// num is n as a decoded audit field holds it.
func num(n int) any { return json.Number(strconv.Itoa(n)) }
