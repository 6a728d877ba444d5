package appd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"switchyard/control"
)

// testLimits are limits well below this test process's own.
var testLimits = Limits{OpenFiles: 100, OpenFilesHard: 200, Processes: 300, Core: 0,
	Memory: Unlimited, CPU: Unlimited, Tasks: Unlimited}

// limitScript prints the open-files limits, the core limit and the
// environment variables the shim must not leak nor lose.
const limitScript = `ulimit -n; ulimit -Hn; ulimit -c; ulimit -p; echo "term=$TERM gogc=${GOGC-unset} gomaxprocs=${GOMAXPROCS-unset} x=$X"`

// newShimManager is newTestManager starting apps through the test
// binary as the shim (see TestMain).
func newShimManager(t testing.TB, apps map[string]App) *Manager {
	t.Helper()
	sh, err := OpenShim("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sh.fd) })
	m := newTestManager(t, apps)
	m.Shim = sh
	return m
}

// TestShimSetsLimitsBeforeExec: through the shim, an app runs with its
// limits, its own environment (none of the shim's), batch or in a PTY.
func TestShimSetsLimitsBeforeExec(t *testing.T) {
	app := sh(limitScript)
	app.Limits = testLimits
	app.Env = map[string]string{"X": "from-config"}
	m := newShimManager(t, map[string]App{"lim": app})
	c := dialManager(t, m)

	s := spawn(t, c, control.SpawnRequest{App: "lim", User: "alice"})
	stdout, stderr, _ := s.waitEnd()
	want := "100\n200\n0\n300\nterm= gogc=unset gomaxprocs=unset x=from-config\n"
	if stdout != want || stderr != "" || s.exitStatus() != 0 {
		t.Errorf("batch: stdout %q stderr %q, want %q", stdout, stderr, want)
	}

	p := spawn(t, c, control.SpawnRequest{App: "lim", User: "alice", Pty: &control.PtySpec{Term: "xterm-256color", Rows: 24, Cols: 80}})
	out, _, _ := p.waitEnd()
	wantPTY := strings.ReplaceAll(strings.Replace(want, "term=", "term=xterm-256color", 1), "\n", "\r\n")
	if out != wantPTY {
		t.Errorf("pty: output %q, want %q", out, wantPTY)
	}
}

// TestShimExecFailureRejects: a program the shim cannot exec is refused
// with its errno, as without the shim, and nothing is left running.
func TestShimExecFailureRejects(t *testing.T) {
	app := App{Argv: []string{"/nonexistent/program"}, User: "nobody", Limits: testLimits}
	m := newShimManager(t, map[string]App{"gone": app})
	c := dialManager(t, m)
	_, err := trySpawn(t, c, control.SpawnRequest{App: "gone", User: "alice"})
	if err == nil {
		t.Fatal("spawn of a missing program accepted")
	}
	msg := rejection(t, err).Message
	want := `spawn_failed: app "gone" could not be started on server s1 (no such file or directory)`
	if msg != want {
		t.Errorf("rejection %q, want %q", msg, want)
	}
	if n := m.Len(); n != 0 {
		t.Errorf("%d sessions after a failed spawn", n)
	}
}

// TestGrantableClampsToOwnHardLimit: a finite limit above appd's own hard
// limit is lowered to it, with an error to log; "unlimited" is lowered
// silently.
func TestGrantableClampsToOwnHardLimit(t *testing.T) {
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &own); err != nil {
		t.Fatal(err)
	}
	if own.Max == unix.RLIM_INFINITY {
		t.Skip("this process has no hard open-files limit to clamp to")
	}
	l := testLimits
	l.OpenFiles, l.OpenFilesHard = own.Max+1, own.Max+10
	rl, err := l.grantable()
	if rl[0].lim != (unix.Rlimit{Cur: own.Max, Max: own.Max}) {
		t.Errorf("open files %+v, want %d:%d", rl[0].lim, own.Max, own.Max)
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("open files %d:%d: lowered", own.Max, own.Max)) {
		t.Errorf("err = %v, want it to name the lowered open-files limit", err)
	}
	l.OpenFilesHard = Unlimited
	if _, err := l.grantable(); err != nil {
		t.Errorf("unlimited lowered with an error: %v", err)
	}
}

// BenchmarkSpawnLimits times a batch spawn of `true` until its channel
// closes: without limits, through the shim, and through the shim with a
// control group (when this host has one to give).
func BenchmarkSpawnLimits(b *testing.B) {
	cg, cgErr := DiscoverCgroups()
	withTasks := testLimits
	withTasks.Tasks = 64
	for _, bc := range []struct {
		name   string
		limits Limits
		cg     *Cgroups
	}{{"none", Limits{}, nil}, {"shim", testLimits, nil}, {"shim+cgroup", withTasks, cg}} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.name == "shim+cgroup" && (cgErr != nil || !cg.Has(ctrlPids)) {
				b.Skipf("no cgroup with the pids controller: %v", cgErr)
			}
			app := App{Argv: []string{"true"}, User: "nobody", Limits: bc.limits}
			m := newShimManager(b, map[string]App{"t": app})
			m.Cgroups = bc.cg
			c := dialManager(b, m)
			for b.Loop() {
				s := spawn(b, c, control.SpawnRequest{App: "t", User: "alice"})
				s.waitEnd()
			}
		})
	}
}

// TestShimPublicPath: the shim starts by its binary's path only when any
// user may reach and run it there.
func TestShimPublicPath(t *testing.T) {
	dir := t.TempDir() // 0700: others may not search it
	bin := filepath.Join(dir, "appd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "exe")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	if got := publicPath(link); got != "" {
		t.Errorf("publicPath in a private directory = %q, want \"\"", got)
	}
	for d := dir; d != os.TempDir(); d = filepath.Dir(d) { // t.TempDir's own directories
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := publicPath(link); got != bin {
		t.Errorf("publicPath of a public binary = %q, want %q", got, bin)
	}
	if err := os.Chmod(bin, 0o750); err != nil {
		t.Fatal(err)
	}
	if got := publicPath(link); got != "" {
		t.Errorf("publicPath of a binary others may not run = %q, want \"\"", got)
	}
}
