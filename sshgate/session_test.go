package sshgate

import (
	"bufio"
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/internal/testutil"
)

func TestLoginAsApp(t *testing.T) {
	e := newEnv(t)
	r := e.run(e.mustDial("htop", e.alice), "", runOpts{pty: true})
	req := recv(t, e.placer.reqs, "place")
	if req.User != "alice" || req.App != "htop" || req.Gateway != "gw1" || !strings.HasPrefix(req.ClientAddr, "127.0.0.1:") {
		t.Errorf("place request %+v", req)
	}
	spawn := recv(t, e.appd.spawns, "spawn")
	if spawn.App != "htop" || spawn.User != "alice" || spawn.Pty == nil || !reflect.DeepEqual(*spawn.Pty, wantPty) {
		t.Errorf("spawn request %+v pty %+v", spawn, spawn.Pty)
	}
	if r.status != 0 || r.stdout != "app=htop user=alice args=\n" {
		t.Errorf("got %+v", r)
	}
	info := recv(t, e.placer.started, "session started")
	if info.ID != "sess-1" || info.PID != 4242 || info.User != "alice" || info.App != "htop" || info.Server != "s1" || info.Gateway != "gw1" || info.Started.IsZero() {
		t.Errorf("session started %+v", info)
	}
	ended := recv(t, e.placer.ended, "session ended")
	if ended.ID != "sess-1" || ended.Server != "s1" || ended.Status != 0 {
		t.Errorf("session ended %+v", ended)
	}
}

func TestExecArgs(t *testing.T) {
	e := newEnv(t)
	r := e.run(e.mustDial("alice", e.alice), "report  a b", runOpts{})
	spawn := recv(t, e.appd.spawns, "spawn")
	if spawn.App != "report" || !slices.Equal(spawn.Args, []string{"a", "b"}) || spawn.Pty != nil {
		t.Errorf("spawn request %+v", spawn)
	}
	if r.stdout != "app=report user=alice args=a,b\n" {
		t.Errorf("got %+v", r)
	}
}

func TestNoAppNamed(t *testing.T) {
	e := newEnv(t)
	r := e.run(e.mustDial("alice", e.alice), "", runOpts{})
	want := "switchyard: no app named; try: ssh -t APP@HOST or ssh HOST APP\n"
	if r.status != 64 || r.stderr != want || r.stdout != "" {
		t.Errorf("got %+v", r)
	}
}

func TestNoAppHook(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.NoApp = func(_ context.Context, term Terminal, _ Menu) (Choice, error) {
			if term.User != "alice" || term.Pty == nil {
				return Choice{}, errors.New("bad terminal")
			}
			return Choice{App: "picked", Args: []string{"x"}}, nil
		}
	})
	r := e.run(e.mustDial("alice", e.alice), "", runOpts{pty: true})
	if r.status != 0 || r.stdout != "app=picked user=alice args=x\n" {
		t.Errorf("got %+v", r)
	}
}

func TestRawBytesUnderPty(t *testing.T) {
	e := newEnv(t)
	r := e.run(e.mustDial("alice", e.alice), "raw", runOpts{pty: true})
	if r.stdout != "a\nb\r\nc" {
		t.Errorf("stdout %q, want %q", r.stdout, "a\nb\r\nc")
	}
}

// What appd writes on stderr reaches the client's stderr, without a PTY
// and with one (where the gateway copies it once the channel closes: see
// startBridge), before the exit status.
func TestStderrStaysStderr(t *testing.T) {
	e := newEnv(t)
	for _, pty := range []bool{false, true} {
		r := e.run(e.mustDial("alice", e.alice), "stderr", runOpts{pty: pty})
		if r.stdout != "out\n" || r.stderr != "err\n" || r.status != 0 {
			t.Errorf("pty %v: got %+v", pty, r)
		}
	}
}

func TestExitStatusPassedThrough(t *testing.T) {
	e := newEnv(t)
	r := e.run(e.mustDial("alice", e.alice), "exit7", runOpts{})
	if r.status != 7 || r.stderr != "" {
		t.Errorf("got %+v", r)
	}
	if ended := recv(t, e.placer.ended, "session ended"); ended.Status != 7 {
		t.Errorf("session ended %+v", ended)
	}
}

func TestExitSignalPassedThrough(t *testing.T) {
	e := newEnv(t)
	r := e.run(e.mustDial("alice", e.alice), "sig", runOpts{})
	if r.signal != "TERM" {
		t.Errorf("got %+v, want signal TERM", r)
	}
	if ended := recv(t, e.placer.ended, "session ended"); ended.Status != -1 || ended.Reason != "signal TERM" {
		t.Errorf("session ended %+v", ended)
	}
}

func TestClientEOFReachesApp(t *testing.T) {
	e := newEnv(t)
	r := e.run(e.mustDial("alice", e.alice), "echo", runOpts{stdin: "hello\n"})
	if r.status != 0 || r.stdout != "hello\n" {
		t.Errorf("got %+v", r)
	}
	if ev := recv(t, e.appd.events, "appd event"); ev != "eof" {
		t.Errorf("appd saw %q, want eof", ev)
	}
}

func TestEnvFiltered(t *testing.T) {
	e := newEnv(t)
	sess, err := e.mustDial("alice", e.alice).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Setenv("LANG", "C.UTF-8"); err != nil {
		t.Errorf("LANG refused: %v", err)
	}
	if err := sess.Setenv("LC_ALL", "C"); err != nil {
		t.Errorf("LC_ALL refused: %v", err)
	}
	if err := sess.Setenv("LD_PRELOAD", "/tmp/x.so"); err == nil {
		t.Error("LD_PRELOAD accepted")
	}
	if err := sess.Run("htop"); err != nil {
		t.Fatal(err)
	}
	spawn := recv(t, e.appd.spawns, "spawn")
	if len(spawn.Env) != 2 || spawn.Env["LANG"] != "C.UTF-8" || spawn.Env["LC_ALL"] != "C" {
		t.Errorf("env %v", spawn.Env)
	}
}

func TestWindowChangeForwarded(t *testing.T) {
	e := newEnv(t)
	sess, err := e.mustDial("alice", e.alice).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, _ := sess.StdoutPipe()
	lines := bufio.NewReader(out)
	if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("winch"); err != nil {
		t.Fatal(err)
	}
	if l := readLine(t, lines); l != "ready\n" {
		t.Fatalf("first line %q", l)
	}
	if err := sess.WindowChange(40, 100); err != nil {
		t.Fatal(err)
	}
	if l := readLine(t, lines); l != "size 100x40\n" {
		t.Errorf("appd saw %q, want size 100x40", l)
	}
	if err := sess.Wait(); err != nil {
		t.Errorf("wait: %v", err)
	}
}

// TestWindowChangeBeforeStart resizes while the broker is deciding: the
// latest size is forwarded once the app runs.
func TestWindowChangeBeforeStart(t *testing.T) {
	e := newEnv(t)
	placing, release := make(chan struct{}), make(chan struct{})
	place := e.placer.place
	e.placer.place = func(ctx context.Context, req control.PlaceRequest) (control.Placement, error) {
		close(placing)
		<-release
		return place(ctx, req)
	}
	sess, err := e.mustDial("alice", e.alice).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, _ := sess.StdoutPipe()
	lines := bufio.NewReader(out)
	if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("winch"); err != nil {
		t.Fatal(err)
	}
	recv(t, placing, "place")
	if err := sess.WindowChange(50, 120); err != nil {
		t.Fatal(err)
	}
	// window-change wants no reply; a request that does proves the
	// gateway has handled the one before it.
	if ok, _ := sess.SendRequest("keepalive@openssh.com", true, nil); ok {
		t.Error("keepalive@openssh.com answered true")
	}
	close(release)
	readLine(t, lines) // ready
	if l := readLine(t, lines); l != "size 120x50\n" {
		t.Errorf("appd saw %q, want size 120x50", l)
	}
	if spawn := recv(t, e.appd.spawns, "spawn"); spawn.Pty == nil || spawn.Pty.Cols != 120 || spawn.Pty.Rows != 50 {
		t.Errorf("spawn pty %+v", spawn.Pty)
	}
	if err := sess.Wait(); err != nil {
		t.Errorf("wait: %v", err)
	}
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	lc := make(chan string, 1)
	go func() {
		l, _ := r.ReadString('\n')
		lc <- l
	}()
	return recv(t, lc, "a line of output")
}

func TestClientGoneHangsUpApp(t *testing.T) {
	e := newEnv(t)
	sess, err := e.mustDial("alice", e.alice).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := sess.StdoutPipe()
	if err := sess.Start("hang"); err != nil {
		t.Fatal(err)
	}
	readLine(t, bufio.NewReader(out))
	if got := e.srv.Sessions(); got != 1 {
		t.Errorf("Sessions() = %d during the session, want 1", got)
	}
	sess.Close()
	if ev := recv(t, e.appd.events, "appd event"); ev != "closed" {
		t.Errorf("appd saw %q, want closed", ev)
	}
	if ended := recv(t, e.placer.ended, "session ended"); ended.Status != -1 || ended.Reason != "client disconnected" {
		t.Errorf("session ended %+v", ended)
	}
}

func TestCapacity(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.Capacity = 1 })
	c := e.mustDial("alice", e.alice)
	startHang(t, c)
	r := e.run(c, "htop", runOpts{})
	if r.status != 69 || r.stderr != "switchyard: gateway full, try again later\n" {
		t.Errorf("got %+v", r)
	}
}

func TestRefusedRequestsAndChannels(t *testing.T) {
	e := newEnv(t)
	c := e.mustDial("alice", e.alice)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestSubsystem("sftp"); err == nil {
		t.Error("subsystem sftp accepted")
	}
	for _, req := range []string{"x11-req", "auth-agent-req@openssh.com", "keepalive@openssh.com", "signal"} {
		if ok, err := sess.SendRequest(req, true, nil); ok || err != nil {
			t.Errorf("%s: ok %v err %v, want false", req, ok, err)
		}
	}
	if _, err := c.Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Error("direct-tcpip accepted")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("tcpip-forward accepted")
	}
	if ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil); ok || err != nil {
		t.Errorf("global keepalive: ok %v err %v, want false", ok, err)
	}
}

func TestErrorsUserSees(t *testing.T) {
	tests := []struct {
		name   string
		place  error // returned by Place, if not nil
		cmd    string
		stderr string
		status int
	}{
		{"forbidden", control.NewError(control.CodeForbidden, "you may not run htop"), "htop",
			"switchyard: you may not run htop\n", 77},
		{"no server", control.NewError(control.CodeNoServer, ""), "htop",
			"switchyard: no server can run \"htop\" right now, try again later\n", 69},
		{"unknown app at broker", control.NewError(control.CodeUnknownApp, "no app named htp"), "htp",
			"switchyard: no app named htp\n", 64},
		{"broker down", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, "htop",
			"switchyard: broker unavailable\n", 69},
		{"broker cannot keep state", control.NewError(control.CodeUnavailable, "broker unavailable: cannot keep the reservation"), "htop",
			"switchyard: broker unavailable\n", 69},
		{"broker timeout", context.DeadlineExceeded, "htop",
			"switchyard: broker unavailable\n", 69},
		{"remote error wrapped", errors.Join(errors.New("call place"), control.NewError(control.CodeBadArgs, "htop takes no arguments\nsecond line")), "htop x",
			"switchyard: htop takes no arguments\n", 64},
		{"escapes in a reason", control.NewError(control.CodeUnknownApp, "no app named \x1b]0;pwned\x07x"), "x",
			"switchyard: no app named ]0;pwnedx\n", 64},
		{"spawn rejected unknown", nil, "nosuch", "switchyard: no app named nosuch\n", 64},
		{"spawn failed", nil, "broken", "switchyard: exec /usr/bin/broken: permission denied\n", 70},
		{"server went away", nil, "vanish", "switchyard: server s1 went away; session ended\n", 69},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.place != nil {
				e.placer.place = func(context.Context, control.PlaceRequest) (control.Placement, error) {
					return control.Placement{}, tt.place
				}
			}
			r := e.run(e.mustDial("alice", e.alice), tt.cmd, runOpts{})
			if r.stderr != tt.stderr || r.status != tt.status || r.stdout != "" {
				t.Errorf("got stderr %q status %d stdout %q, want %q %d", r.stderr, r.status, r.stdout, tt.stderr, tt.status)
			}
		})
	}
}

func TestErrorLineUnderPtyEndsInCRLF(t *testing.T) {
	e := newEnv(t)
	e.placer.place = func(context.Context, control.PlaceRequest) (control.Placement, error) {
		return control.Placement{}, errors.New("refused")
	}
	r := e.run(e.mustDial("htop", e.alice), "", runOpts{pty: true})
	if r.stderr != "switchyard: broker unavailable\r\n" || r.status != 69 {
		t.Errorf("got %+v", r)
	}
}

func TestAppServerUnreachable(t *testing.T) {
	e := newEnv(t)
	e.placer.place = func(context.Context, control.PlaceRequest) (control.Placement, error) {
		return control.Placement{Server: "s9", Addr: "127.0.0.1:1"}, nil
	}
	r := e.run(e.mustDial("alice", e.alice), "htop", runOpts{})
	if r.stderr != "switchyard: server s9 is unreachable, try again later\n" || r.status != 69 {
		t.Errorf("got %+v", r)
	}
	if n := len(e.placer.reqs); n != 1+maxReplace {
		t.Errorf("placed %d times, want %d (once, then again without each unreachable server)", n, 1+maxReplace)
	}
}

// TestUnreachableServerIsPlacedAgain: a server whose appd went away a
// moment before the broker heard of it costs a second placement without
// it, not the login. The fake broker places on s9 (nothing listens) until
// it is asked to avoid it, then on s1; after three unreachable servers the
// user sees the one line of TestAppServerUnreachable.
func TestUnreachableServerIsPlacedAgain(t *testing.T) {
	e := newEnv(t)
	s1 := e.placer.place
	e.placer.place = func(ctx context.Context, req control.PlaceRequest) (control.Placement, error) {
		if slices.Contains(req.Avoid, "s9") {
			return s1(ctx, req)
		}
		return control.Placement{Server: "s9", Addr: "127.0.0.1:1"}, nil
	}
	r := e.run(e.mustDial("alice", e.alice), "htop", runOpts{})
	if r.status != 0 || r.stderr != "" {
		t.Fatalf("got %+v, want the session to run on s1", r)
	}
	first := recv(t, e.placer.reqs, "first placement")
	second := recv(t, e.placer.reqs, "second placement")
	if len(first.Avoid) != 0 || !slices.Equal(second.Avoid, []string{"s9"}) {
		t.Errorf("avoid: first %q, second %q; want none, then s9", first.Avoid, second.Avoid)
	}
}

// TestShutdownWaitsForHandshakes: a connection still in its SSH
// handshake when Shutdown starts (accepted a moment before a gateway
// hands its listener over) is waited for like an established one, not
// cut when the process exits after Shutdown returns.
func TestShutdownWaitsForHandshakes(t *testing.T) {
	e := newEnv(t)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitFor, "the connection is counted", func() bool { return e.srv.conns.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a handshake under way = %v, want it to wait until its deadline", err)
	}
	c.Close()
	ctx, cancel = context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown once the connection closed = %v", err)
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t)
	e.run(e.mustDial("alice", e.alice), "htop", runOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	go e.srv.Shutdown(ctx)
	if err := recv(t, e.served, "Serve to return"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
}

var _ Opener = (*dialOpener)(nil)
