package appd

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"switchyard/audit"
	"switchyard/control"
)

// lockedBuffer is a bytes.Buffer safe for the audit writer and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestKillEndsProcessGroupAndTellsUser: an administrator's kill reaches
// an app and a child of it that both ignore SIGHUP, the attached user
// reads one line with the reason, the session ends with
// control.ExitKilled, and the audit trail names the admin.
func TestKillEndsProcessGroupAndTellsUser(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"stubborn": sh(`trap '' HUP; sleep 1000 & echo child=$!; echo ready; wait`)})
	var trail lockedBuffer
	m.Audit = audit.New(audit.Options{Node: "s1", Out: &trail})
	s := spawn(t, dialManager(t, m), control.SpawnRequest{App: "stubborn", User: "alice",
		Pty: &control.PtySpec{Term: "xterm", Cols: 80, Rows: 24}})
	s.waitOutput("ready")
	s.mu.Lock()
	child, _ := strconv.Atoi(regexp.MustCompile(`child=(\d+)`).FindStringSubmatch(s.stdout.String())[1])
	s.mu.Unlock()

	if err := m.Kill(control.KillRequest{ID: "nope", By: "root"}); control.ErrorCode(err) != control.CodeNoSession {
		t.Errorf("kill of an unknown session: %v", err)
	}
	if err := m.Kill(control.KillRequest{ID: s.started.ID, Reason: "maintenance\x1b[2J", By: "root"}); err != nil {
		t.Fatal(err)
	}
	if status := s.exitStatus(); status != control.ExitKilled {
		t.Errorf("exit status %d, want %d", status, control.ExitKilled)
	}
	_, stderr, _ := s.waitEnd()
	if stderr != `switchyard: session ended by an administrator: maintenance\x1b[2J`+"\r\n" {
		t.Errorf("the user read %q", stderr)
	}
	waitGone(t, s.started.PID)
	waitGone(t, child)
	m.Audit.Close()
	evs := map[string]audit.Event{}
	for _, line := range strings.Split(strings.TrimSpace(trail.b.String()), "\n") {
		ev, ok := audit.Parse([]byte(line))
		if !ok {
			t.Fatalf("audit line %q", line)
		}
		evs[ev.Event] = ev
	}
	if k := evs["kill"]; k.Session != s.started.ID || k.Fields["by"] != "root" {
		t.Errorf("kill event %+v", k)
	}
	if e := evs["exit"]; e.Fields["killed_by"] != "root" || e.Fields["hangup"] != "killed by an administrator" ||
		e.Fields["signal"] != "KILL" {
		t.Errorf("exit event %+v", e.Fields)
	}
}
