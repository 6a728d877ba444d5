package appd

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/control"
)

// counterApp prints a line with a growing number every 20 ms, and
// "marker" on SIGUSR1.
func counterApp(grace time.Duration) App {
	a := sh(`trap 'echo marker' USR1; i=0; while :; do i=$((i+1)); echo "n=$i"; sleep 0.02; done`)
	a.Grace = grace
	return a
}

// nextAppd connects a new appd to the keeper at path and adopts what it
// holds.
func nextAppd(t *testing.T, path string, apps map[string]App) (*Manager, *Keeper, int) {
	t.Helper()
	return nextAppdWith(t, path, apps, nil)
}

// nextAppdWith is nextAppd with setup run on the new Manager before it
// adopts (a reload's settings, as the daemon applies them first).
func nextAppdWith(t *testing.T, path string, apps map[string]App, setup func(*Manager)) (*Manager, *Keeper, int) {
	t.Helper()
	k, held, err := ConnectKeeper(path, os.Args[0], time.Minute, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Quit(); k.Close() })
	m := newTestManager(t, apps)
	m.Keeper = k
	if setup != nil {
		setup(m)
	}
	return m, k, m.Adopt(held)
}

// checkCounts fails unless out's "n=K" lines count up by one, with no
// gap and no repeat; it returns the last K.
func checkCounts(t *testing.T, out string) int {
	t.Helper()
	last := 0
	for _, line := range strings.Split(out, "\r\n") {
		var n int
		if _, err := fmt.Sscanf(line, "n=%d", &n); err != nil {
			continue
		}
		if last != 0 && n != last+1 {
			t.Fatalf("count jumps from %d to %d", last, n)
		}
		last = n
	}
	return last
}

// TestHandoverKeepsAttachedAndDetachedSessions: appd hands its sessions
// over (a graceful restart); the next appd takes them back: same pid, the
// attached session's output continues where it stopped with no line lost
// or repeated once its gateway rejoins, the detached one resumes with
// what it printed meanwhile.
func TestHandoverKeepsAttachedAndDetachedSessions(t *testing.T) {
	k, path := testKeeper(t, time.Minute)
	apps := map[string]App{"count": counterApp(time.Minute)}
	m := newTestManager(t, apps)
	m.Keeper = k
	c := dialManager(t, m)
	att := spawn(t, c, ptyReq("count"))
	att.waitOutput("n=5\r\n")
	det := spawn(t, c, ptyReq("count"))
	det.waitOutput("n=2\r\n")
	det.ch.Close()
	waitState(t, m, det.started.ID, control.StateDetached)

	if n := m.Handover(); n != 2 {
		t.Fatalf("handed over %d sessions, want 2", n)
	}
	att.waitEnd() // the channel closes without an exit: the gateway would ride through
	k.Close()
	before := checkCounts(t, att.output())
	syscall.Kill(det.started.PID, syscall.SIGUSR1) // printed while no appd runs

	m2, _, adopted := nextAppd(t, path, apps)
	if adopted != 2 {
		t.Fatalf("adopted %d sessions, want 2", adopted)
	}
	c2 := dialManager(t, m2)
	rejoin := attachReq(att.started.ID, "alice")
	rejoin.Rejoin = true
	again := attach(t, c2, rejoin)
	if again.started.PID != att.started.PID {
		t.Fatalf("rejoined pid %d, want %d", again.started.PID, att.started.PID)
	}
	again.waitOutput(fmt.Sprintf("n=%d\r\n", before+20))
	if first := firstCount(again.output()); first != before+1 {
		t.Errorf("after the handover the count starts at %d, want %d", first, before+1)
	}
	checkCounts(t, again.output())

	resumed := attach(t, c2, attachReq(det.started.ID, "alice"))
	resumed.waitOutput("marker")
	if resumed.started.PID != det.started.PID {
		t.Errorf("resumed pid %d, want %d", resumed.started.PID, det.started.PID)
	}
}

// TestKeeperHoldsSessionsAfterAppdDies: appd dies without a handover (as
// kill -9 leaves it); the next appd still takes the session back.
func TestKeeperHoldsSessionsAfterAppdDies(t *testing.T) {
	k, path := testKeeper(t, time.Minute)
	apps := map[string]App{"count": counterApp(0)} // no grace: adopted sessions still wait for a rejoin
	m := newTestManager(t, apps)
	m.Keeper = k
	c := dialManager(t, m)
	s := spawn(t, c, ptyReq("count"))
	s.waitOutput("n=3\r\n")
	abandon(m) // as if appd died: it does nothing more
	k.Close()  // and its link drops
	m2, _, adopted := nextAppd(t, path, apps)
	if adopted != 1 {
		t.Fatalf("adopted %d sessions, want 1", adopted)
	}
	info := waitState(t, m2, s.started.ID, control.StateDetached)
	if info.PID != s.started.PID || info.User != "alice" || info.App != "count" {
		t.Fatalf("adopted %+v, want pid %d of alice's count", info, s.started.PID)
	}
	again := attach(t, dialManager(t, m2), attachReq(s.started.ID, "alice"))
	again.waitOutput("n=")
	syscall.Kill(s.started.PID, syscall.SIGTERM) // its exit is known through the keeper, its parent
	if _, _, exit := again.waitEnd(); exitSignal(t, exit) != "TERM" {
		t.Errorf("exit %+v, want signal TERM", exit)
	}
	waitLen(t, m2, 0)
}

// TestKeptOutputSurvivesAppdDeath: what a detached session kept is in
// the keeper's file as it is kept, so an appd that dies without a
// handover loses none of it.
func TestKeptOutputSurvivesAppdDeath(t *testing.T) {
	k, path := testKeeper(t, time.Minute)
	apps := map[string]App{"count": counterApp(time.Minute)}
	m := newTestManager(t, apps)
	m.Keeper = k
	s := spawn(t, dialManager(t, m), ptyReq("count"))
	s.waitOutput("n=2\r\n")
	s.ch.Close()
	waitState(t, m, s.started.ID, control.StateDetached)
	syscall.Kill(s.started.PID, syscall.SIGUSR1)
	waitUntil(t, "the marker to be kept", func() bool { return keptLen(m, s.started.ID) > 0 && keptHas(m, s.started.ID, "marker") })
	abandon(m)
	k.Close()
	m2, _, adopted := nextAppd(t, path, apps)
	if adopted != 1 {
		t.Fatalf("adopted %d sessions, want 1", adopted)
	}
	again := attach(t, dialManager(t, m2), attachReq(s.started.ID, "alice"))
	again.waitOutput("marker")
	checkCounts(t, again.output())
}

// keptHas reports whether session id keeps want.
func keptHas(m *Manager, id, want string) bool {
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Contains(string(s.kept.buf), want)
}

// TestKeeperEndsAppsWhenNoAppdReturns: once its hold runs out with no
// appd connected, the keeper ends its apps and exits.
func TestKeeperEndsAppsWhenNoAppdReturns(t *testing.T) {
	k, _ := testKeeper(t, time.Hour)
	k.SetHold(300 * time.Millisecond) // as a reload of handover does
	m := newTestManager(t, map[string]App{"count": counterApp(time.Minute)})
	m.Keeper = k
	s := spawn(t, dialManager(t, m), ptyReq("count"))
	s.waitOutput("n=2\r\n")
	keeper := k.PID()
	k.Close()
	waitUntil(t, "the app to end", func() bool { return !alive(s.started.PID) })
	waitUntil(t, "the keeper to exit", func() bool { return !alive(keeper) })
}

// abandon makes m's sessions do nothing more, as if appd had died: their
// pumps stop and nothing is signalled or sent to the keeper.
func abandon(m *Manager) {
	for _, s := range m.snapshot() {
		s.mu.Lock()
		s.handed = true
		s.mu.Unlock()
		s.term.master.SetReadDeadline(time.Now())
		<-s.pumped
	}
}

// firstCount is the first K of out's "n=K" lines, 0 if none.
func firstCount(out string) int {
	for _, line := range strings.Split(out, "\r\n") {
		var n int
		if _, err := fmt.Sscanf(line, "n=%d", &n); err == nil {
			return n
		}
	}
	return 0
}

// output is what the channel delivered so far.
func (s *spawned) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdout.String()
}

// TestKeeperDeathEndsItsApps: when the keeper dies (kill -9) under a
// running appd, the apps it started die with it, their children too, and
// appd ends their sessions.
func TestKeeperDeathEndsItsApps(t *testing.T) {
	k, _ := testKeeper(t, time.Minute)
	m := newTestManager(t, map[string]App{"group": sh("trap '' HUP; sleep 1000 & echo pid=$$; wait")}) // the child ignores the hang-up
	m.Keeper = k
	s := spawn(t, dialManager(t, m), ptyReq("group"))
	s.waitOutput("pid=")
	pgid := s.started.PID
	waitUntil(t, "the app's child", func() bool { return len(groupMembers(pgid)) == 2 })
	syscall.Kill(k.PID(), syscall.SIGKILL)
	waitUntil(t, "every process of the app to be gone", func() bool { return len(groupMembers(pgid)) == 0 })
	if _, _, exit := s.waitEnd(); exitSignal(t, exit) != "KILL" {
		t.Errorf("exit %+v, want signal KILL", exit)
	}
	waitLen(t, m, 0)
}
