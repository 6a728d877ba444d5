package appd

import (
	"context"
	"errors"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
)

// loop is an app that runs until it is signalled, after printing "ready".
const loop = `echo ready; while :; do sleep 0.05; done`

// waitGone polls until pid no longer exists.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still exists after %v", pid, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLen polls until m runs n sessions.
func waitLen(t *testing.T, m *Manager, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for m.Len() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Len() = %d after %v, want %d", m.Len(), waitTimeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{
		"top":    {Argv: []string{"top"}, User: "nobody"},
		"broken": {Argv: []string{"/nonexistent/program"}, User: "nobody"},
		"empty":  {User: "nobody"},
	})
	c := dialManager(t, m)
	for _, tc := range []struct {
		name string
		req  control.SpawnRequest
		want string
	}{
		{"unknown", control.SpawnRequest{App: "foo"}, `unknown_app: no app named "foo" on this server`},
		{"args", control.SpawnRequest{App: "top", Args: []string{"-b"}}, `bad_args: app "top" takes no arguments`},
		{"missing program", control.SpawnRequest{App: "broken"}, `spawn_failed: app "broken" could not be started on server s1`},
		{"no argv", control.SpawnRequest{App: "empty"}, `spawn_failed: app "empty" has no program configured`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trySpawn(t, c, tc.req)
			oce := rejection(t, err)
			if oce.Reason != ssh.Prohibited || !strings.HasPrefix(oce.Message, tc.want) {
				t.Errorf("rejected with %v %q, want Prohibited %q...", oce.Reason, oce.Message, tc.want)
			}
			if strings.ContainsAny(oce.Message, "\r\n") {
				t.Errorf("message %q is not one line", oce.Message)
			}
		})
	}
	if m.Len() != 0 {
		t.Errorf("Len() = %d after rejections", m.Len())
	}
}

func TestMalformedRequest(t *testing.T) {
	t.Parallel()
	c := dialManager(t, newTestManager(t, nil))
	_, _, err := c.OpenChannel(control.ChannelSpawn, []byte("{not json"))
	if oce := rejection(t, err); !strings.HasPrefix(oce.Message, "internal: ") {
		t.Errorf("message = %q, want internal: ...", oce.Message)
	}
}

func TestMaxSessions(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"loop": sh(loop)})
	m.MaxSessions = 1
	c := dialManager(t, m)
	first := spawn(t, c, ptyReq("loop"))
	_, err := trySpawn(t, c, ptyReq("loop"))
	if oce := rejection(t, err); oce.Message != "no_server: server s1 is full (1 sessions)" {
		t.Errorf("message = %q", oce.Message)
	}
	first.ch.Close()
	waitLen(t, m, 0)
	spawn(t, c, ptyReq("loop")).ch.Close() // the slot is free again
}

// A reload that lowers the capacity refuses new spawns and ends none.
func TestSetMaxSessionsWhileServing(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"loop": sh(loop)})
	c := dialManager(t, m)
	first := spawn(t, c, ptyReq("loop"))
	second := spawn(t, c, ptyReq("loop"))
	m.SetMaxSessions(1)
	_, err := trySpawn(t, c, ptyReq("loop"))
	if oce := rejection(t, err); oce.Message != "no_server: server s1 is full (1 sessions)" {
		t.Errorf("message = %q", oce.Message)
	}
	if m.Len() != 2 {
		t.Fatalf("lowering the capacity ended sessions: %d left of 2", m.Len())
	}
	first.ch.Close()
	second.ch.Close()
	waitLen(t, m, 0)
}

func TestSessionsListsRunning(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"loop": sh(loop)})
	s := spawn(t, dialManager(t, m), ptyReq("loop"))
	s.waitOutput("ready")
	got := m.Sessions()
	if len(got) != 1 || m.Len() != 1 {
		t.Fatalf("Sessions() = %+v, Len() = %d; want one session", got, m.Len())
	}
	want := control.SessionInfo{ID: s.started.ID, PID: s.started.PID, User: "alice", App: "loop", Server: "s1", Gateway: "gw1", State: control.StateAttached}
	got[0].Started = time.Time{}
	if got[0] != want || len(want.ID) != 32 {
		t.Errorf("Sessions()[0] = %+v, want %+v", got[0], want)
	}
	if syscall.Kill(s.started.PID, 0) != nil {
		t.Errorf("pid %d is not running", s.started.PID)
	}
}

func TestChannelCloseEndsApp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		app  App
		pty  bool
	}{
		{"pty", sh(loop), true},
		{"batch", sh(loop), false},
		{"batch cat", App{Argv: []string{"cat"}, User: "nobody"}, false},
		{"ignores SIGHUP", sh(`trap "" HUP; ` + loop), true}, // SIGKILL after 2 s
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newTestManager(t, map[string]App{"app": tc.app})
			req := control.SpawnRequest{App: "app", User: "alice"}
			if tc.pty {
				req = ptyReq("app")
			}
			s := spawn(t, dialManager(t, m), req)
			if tc.app.Argv[0] == "sh" {
				s.waitOutput("ready")
			}
			s.ch.Close()
			waitGone(t, s.started.PID)
			waitLen(t, m, 0)
		})
	}
}

// TestPTYDrainBounded checks that a background child holding the PTY
// slave open does not hold the session open: the output is sent and the
// exit status arrives after the bounded drain.
func TestPTYDrainBounded(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"bg": sh(`(trap "" HUP; exec sleep 60) & echo done`)})
	s := spawn(t, dialManager(t, m), ptyReq("bg"))
	t.Cleanup(func() { syscall.Kill(-s.started.PID, syscall.SIGKILL) }) // the sleep
	if got := s.exitStatus(); got != 0 {
		t.Errorf("exit status = %d, want 0", got)
	}
	s.waitOutput("done")
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{
		"env": {Argv: []string{"env"}, Env: map[string]string{"APP_VAR": "1", "LANG": "app"}, User: "nobody"},
	})
	s := spawn(t, dialManager(t, m), control.SpawnRequest{App: "env", User: "alice", Env: map[string]string{
		"LANG": "C.UTF-8", "LC_TIME": "C", "COLORTERM": "truecolor",
		"FOO": "bar", "LD_PRELOAD": "/tmp/x.so", "TERM": "vt100", "LC_": "x",
	}})
	s.ch.CloseWrite()
	s.exitStatus()
	out, _, _ := s.waitEnd()
	env := map[string]string{}
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		env[k] = v
	}
	keys := slices.Sorted(maps.Keys(env))
	wantKeys := []string{"APP_VAR", "COLORTERM", "HOME", "LANG", "LC_TIME", "LOGNAME", "PATH", "SHELL", "USER"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("env keys = %v, want %v", keys, wantKeys)
	}
	if env["PATH"] != defaultPath || env["LANG"] != "app" || env["LC_TIME"] != "C" || env["USER"] != env["LOGNAME"] {
		t.Errorf("env = %v", env)
	}
}

func TestRunAsNobody(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("run-as needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	m := newTestManager(t, map[string]App{"id": {Argv: []string{"sh", "-c", "id -u; id -G; pwd"}, User: "nobody"}})
	s := spawn(t, dialManager(t, m), control.SpawnRequest{App: "id", User: "alice"})
	s.ch.CloseWrite()
	s.exitStatus()
	out, _, _ := s.waitEnd()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != nobody.Uid {
		t.Fatalf("output = %q, want uid %s first", out, nobody.Uid)
	}
	if slices.Contains(strings.Fields(lines[1]), "0") {
		t.Errorf("groups %q include root's group", lines[1])
	}
	wantDir := "/"
	if fi, err := os.Stat(nobody.HomeDir); err == nil && fi.IsDir() {
		wantDir = nobody.HomeDir
	}
	if lines[2] != wantDir {
		t.Errorf("pwd = %q, want %q", lines[2], wantDir)
	}
}

func TestRunAsRootRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root would run apps as root")
	}
	m := newTestManager(t, map[string]App{
		"nouser":  {Argv: []string{"id", "-u"}},
		"root":    {Argv: []string{"id", "-u"}, User: "root"},
		"uid0":    {Argv: []string{"id", "-u"}, User: "0"},
		"allowed": {Argv: []string{"id", "-u"}, User: "root", AllowRoot: true},
		"ghost":   {Argv: []string{"id", "-u"}, User: "no-such-user-here"},
	})
	c := dialManager(t, m)
	for _, app := range []string{"nouser", "root", "uid0", "ghost"} {
		_, err := trySpawn(t, c, control.SpawnRequest{App: app})
		if oce := rejection(t, err); !strings.HasPrefix(oce.Message, "spawn_failed: ") {
			t.Errorf("%s: message = %q, want spawn_failed", app, oce.Message)
		}
	}
	s := spawn(t, c, control.SpawnRequest{App: "allowed"})
	s.exitStatus()
	if out, _, _ := s.waitEnd(); out != "0\n" {
		t.Errorf("allowed root app printed %q, want 0", out)
	}
}

func TestRunAsSelfWhenNotRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("appd is root here")
	}
	m := newTestManager(t, map[string]App{"id": {Argv: []string{"id", "-u"}, User: "nobody"}})
	s := spawn(t, dialManager(t, m), control.SpawnRequest{App: "id"})
	s.exitStatus()
	if out, _, _ := s.waitEnd(); out != strconv.Itoa(os.Geteuid())+"\n" {
		t.Errorf("id -u = %q, want %d", out, os.Geteuid())
	}
}

func TestShutdownHangsUp(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"loop": sh(loop)})
	c := dialManager(t, m)
	pty := spawn(t, c, ptyReq("loop"))
	batch := spawn(t, c, control.SpawnRequest{App: "loop", User: "alice"})
	held, err := prelaunch(t, m, "loop", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pty.waitOutput("ready")
	batch.waitOutput("ready")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for name, s := range map[string]*spawned{"pty": pty, "batch": batch} {
		if _, _, exit := s.waitEnd(); exitSignal(t, exit) != "HUP" {
			t.Errorf("%s: exit request = %v, want exit-signal HUP", name, exit)
		}
	}
	waitGone(t, held.PID)
	_, err = trySpawn(t, c, ptyReq("loop"))
	if oce := rejection(t, err); oce.Message != "no_server: server s1 is shutting down" {
		t.Errorf("spawn after Shutdown: %q", oce.Message)
	}
}

func TestShutdownKillsAfterContext(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"stubborn": sh(`trap "" HUP; ` + loop)})
	s := spawn(t, dialManager(t, m), ptyReq("stubborn"))
	s.waitOutput("ready")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := m.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
	waitGone(t, s.started.PID)
	if _, _, exit := s.waitEnd(); exitSignal(t, exit) != "KILL" {
		t.Errorf("exit request = %v, want exit-signal KILL", exit)
	}
}

func TestContextEndHangsUp(t *testing.T) {
	t.Parallel()
	for _, pty := range []bool{true, false} {
		t.Run(map[bool]string{true: "pty", false: "batch"}[pty], func(t *testing.T) {
			t.Parallel()
			m := newTestManager(t, map[string]App{"loop": sh(loop)})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := control.SpawnRequest{App: "loop", User: "alice"}
			if pty {
				req = ptyReq("loop")
			}
			s := spawn(t, dialManagerContext(t, ctx, m), req)
			s.waitOutput("ready")
			cancel()
			if _, _, exit := s.waitEnd(); exitSignal(t, exit) != "HUP" {
				t.Errorf("exit request = %v, want exit-signal HUP", exit)
			}
			waitLen(t, m, 0)
		})
	}
}
