package sshgate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/testutil"
)

// withSessions makes the broker know these sessions, for any user asking:
// the gateway must keep only the authenticated user's.
func (e *env) withSessions(list ...control.SessionInfo) {
	e.placer.mu.Lock()
	defer e.placer.mu.Unlock()
	for i := range list {
		if list[i].Addr == "" {
			list[i].Addr = e.appd.addr
		}
	}
	e.placer.sessions = list
}

var (
	t0       = time.Now().Add(-time.Hour)
	aliceOld = control.SessionInfo{ID: "sess-old", PID: 1, User: "alice", App: "top", Server: "s1",
		Started: t0, State: control.StateDetached, Detached: t0.Add(time.Minute)}
	aliceNew = control.SessionInfo{ID: "sess-1", PID: 4242, User: "alice", App: "vi", Server: "s1",
		Started: t0.Add(10 * time.Minute), State: control.StateDetached, Detached: t0.Add(50 * time.Minute)}
	aliceOn = control.SessionInfo{ID: "sess-on", PID: 3, User: "alice", App: "bash", Server: "s1",
		Started: t0.Add(20 * time.Minute), State: control.StateAttached}
	aliceLost = control.SessionInfo{ID: "sess-lost", PID: 5, User: "alice", App: "top", Server: "s2",
		Started: t0, State: control.StateUnreachable}
	bobs = control.SessionInfo{ID: "sess-bob", PID: 9, User: "bob", App: "top", Server: "s1",
		Started: t0, State: control.StateDetached, Detached: t0}
)

func TestSessionsCommand(t *testing.T) {
	e := newEnv(t)
	e.withSessions(aliceNew, aliceOn, aliceOld, bobs)
	r := e.run(e.mustDial("alice", e.alice), "sessions", runOpts{})
	if user := recv(t, e.placer.listed, "sessions call"); user != "alice" {
		t.Errorf("listed the sessions of %q", user)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.status != 0 || r.stderr != "" || len(lines) != 4 {
		t.Fatalf("got %+v", r)
	}
	want := [][]string{
		{"ID", "APP", "SERVER", "STATE", "AGE", "IDLE"},
		{"sess-1", "vi", "s1", "detached", "50m", "10m"},
		{"sess-on", "bash", "s1", "attached", "40m", "-"},
		{"sess-old", "top", "s1", "detached", "1h00m", "59m"},
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], w)
		}
	}
	if strings.Contains(r.stdout, "bob") {
		t.Errorf("alice sees bob's session:\n%s", r.stdout)
	}
	r = e.run(e.mustDial("alice", e.alice), "sessions", runOpts{pty: true})
	if !strings.HasSuffix(r.stdout, "\r\n") || strings.Count(r.stdout, "\r\n") != 4 {
		t.Errorf("under a PTY: %q", r.stdout)
	}
	r = e.run(e.mustDial("alice", e.alice), "sessions x", runOpts{})
	if r.status != 64 || r.stderr != "switchyard: sessions takes no arguments\n" {
		t.Errorf("sessions x: %+v", r)
	}
}

func TestSessionsBrokerDown(t *testing.T) {
	e := newEnv(t)
	e.placer.listErr = errors.New("refused")
	r := e.run(e.mustDial("alice", e.alice), "sessions", runOpts{})
	if r.status != 69 || r.stderr != "switchyard: broker unavailable\n" {
		t.Errorf("got %+v", r)
	}
}

func TestResumeLatestDetached(t *testing.T) {
	e := newEnv(t)
	e.withSessions(aliceOld, aliceNew, aliceOn, bobs)
	r := e.run(e.mustDial("alice", e.alice), "resume", runOpts{pty: true, stdin: "typed\r"})
	req := recv(t, e.appd.attaches, "attach")
	if req.ID != "sess-1" || req.User != "alice" || req.Pty == nil || !reflect.DeepEqual(*req.Pty, wantPty) {
		t.Errorf("attach request %+v pty %+v", req, req.Pty)
	}
	if r.status != 0 || r.stdout != "resumed\r\ntyped\r" {
		t.Errorf("got %+v", r)
	}
	info := recv(t, e.placer.started, "session started")
	if info.ID != "sess-1" || info.PID != 4242 || info.App != "vi" || info.Gateway != "gw1" || info.Server != "s1" ||
		info.State != control.StateAttached || !info.Started.Equal(aliceNew.Started) || !info.Detached.IsZero() || info.Addr != "" {
		t.Errorf("session started %+v", info)
	}
}

func TestResumeByID(t *testing.T) {
	e := newEnv(t)
	e.withSessions(aliceOld, aliceNew, bobs)
	r := e.run(e.mustDial("alice", e.alice), "resume sess-1", runOpts{pty: true})
	if req := recv(t, e.appd.attaches, "attach"); req.ID != "sess-1" || r.stdout != "resumed\r\n" {
		t.Errorf("attach %+v, got %+v", req, r)
	}
}

func TestResumeRefusals(t *testing.T) {
	tests := []struct {
		name   string
		login  string
		cmd    string
		pty    bool
		list   []control.SessionInfo
		stderr string
		status int
	}{
		{"unknown id", "alice", "resume nope", true, []control.SessionInfo{aliceNew}, "switchyard: no such session\r\n", 66},
		{"another user's id", "bob", "resume sess-1", true, []control.SessionInfo{aliceNew, bobs}, "switchyard: no such session\r\n", 66},
		{"broker lists it, appd refuses", "alice", "resume sess-old", true, []control.SessionInfo{aliceOld}, "switchyard: no such session\r\n", 66},
		{"nothing detached", "alice", "resume", true, []control.SessionInfo{aliceOn, bobs}, "switchyard: no detached session to resume\r\n", 66},
		{"no pty", "alice", "resume", false, []control.SessionInfo{aliceNew}, "switchyard: resume needs a terminal; try: ssh -t HOST resume\n", 64},
		{"two ids", "alice", "resume a b", true, nil, "switchyard: usage: resume [SESSION-ID]\r\n", 64},
		{"server unreachable", "alice", "resume sess-lost", true, []control.SessionInfo{aliceLost},
			"switchyard: session sess-lost is on server s2, which is unreachable; try again later\r\n", 69},
		{"only an unreachable one", "alice", "resume", true, []control.SessionInfo{aliceLost}, "switchyard: no detached session to resume\r\n", 66},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.withSessions(tt.list...)
			signer := e.alice
			if tt.login == "bob" {
				signer = e.bob
			}
			r := e.run(e.mustDial(tt.login, signer), tt.cmd, runOpts{pty: tt.pty})
			if r.stderr != tt.stderr || r.status != tt.status || r.stdout != "" {
				t.Errorf("got stderr %q status %d stdout %q, want %q %d", r.stderr, r.status, r.stdout, tt.stderr, tt.status)
			}
		})
	}
}

func TestTakenOverIsNotReportedEnded(t *testing.T) {
	e := newEnv(t)
	e.withSessions(control.SessionInfo{ID: "sess-takeover", User: "alice", App: "vi", Server: "s1", State: control.StateDetached})
	r := e.run(e.mustDial("alice", e.alice), "resume", runOpts{pty: true})
	if r.status != 0 || r.stdout != "kept output\r\n" || r.stderr != "switchyard: session taken over by a newer connection\r\n" {
		t.Errorf("got %+v", r)
	}
	e.waitLog("session left running", "reason=\"taken over\"")
	select {
	case ended := <-e.placer.ended:
		t.Errorf("a taken-over session was reported ended: %+v", ended)
	default:
	}
}

func TestClientGoneDetachesPTYSession(t *testing.T) {
	e := newEnv(t)
	sess, err := e.mustDial("alice", e.alice).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := sess.StdoutPipe()
	if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("hang"); err != nil {
		t.Fatal(err)
	}
	readLine(t, bufio.NewReader(out))
	sess.Close()
	if ev := recv(t, e.appd.events, "appd event"); ev != "closed" {
		t.Errorf("appd saw %q, want closed", ev)
	}
	e.waitLog("session left running", "detached: client disconnected")
	select {
	case ended := <-e.placer.ended:
		t.Errorf("a detached session was reported ended: %+v", ended)
	default:
	}
}

// TestPickerChoosesAndGivesInputBack runs a NoApp that leaves a Read
// blocked on its input when it returns, as bubbletea does: the bytes the
// user types next must reach the app, not that Read.
func TestPickerChoosesAndGivesInputBack(t *testing.T) {
	leftover := make(chan string, 1)
	var menu Menu
	e := newEnv(t, func(s *Server) {
		s.NoApp = func(_ context.Context, term Terminal, m Menu) (Choice, error) {
			menu = m
			io.WriteString(term.Out, "picker\r\n")
			b := make([]byte, 4)
			if n, err := io.ReadFull(term.In, b); err != nil || string(b[:n]) != "pick" {
				return Choice{}, errors.New("picker did not read its keys")
			}
			go func() {
				n, err := term.In.Read(make([]byte, 64))
				leftover <- strings.Repeat("x", n) + " " + errString(err)
			}()
			return Choice{App: "echo"}, nil
		}
	})
	e.withSessions(aliceNew, aliceOn, bobs)
	e.placer.apps = []control.AppInfo{{Name: "echo", Description: "echoes", Available: true, Hint: "1 server, low load"}}
	sess, err := e.mustDial("alice", e.alice).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	in, _ := sess.StdinPipe()
	out, _ := sess.StdoutPipe()
	lines := bufio.NewReader(out)
	if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	if l := readLine(t, lines); l != "picker\r\n" {
		t.Fatalf("first line %q", l)
	}
	io.WriteString(in, "pick")
	if got := recv(t, leftover, "the picker's last read"); got != " EOF" {
		t.Errorf("the picker's read after it returned got %q, want nothing and EOF", got)
	}
	io.WriteString(in, "for the app\n")
	in.Close()
	if l := readLine(t, lines); l != "for the app\n" {
		t.Errorf("the app got %q", l)
	}
	if err := sess.Wait(); err != nil {
		t.Errorf("wait: %v", err)
	}
	if len(menu.Sessions) != 1 || menu.Sessions[0].ID != "sess-1" || len(menu.Apps) != 1 || menu.Apps[0].Hint != "1 server, low load" {
		t.Errorf("menu %+v", menu)
	}
}

func TestPickerResumes(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.NoApp = func(_ context.Context, _ Terminal, m Menu) (Choice, error) {
			return Choice{Resume: m.Sessions[0].ID}, nil
		}
	})
	e.withSessions(aliceNew)
	r := e.run(e.mustDial("alice", e.alice), "", runOpts{pty: true})
	if req := recv(t, e.appd.attaches, "attach"); req.ID != "sess-1" || r.stdout != "resumed\r\n" || r.status != 0 {
		t.Errorf("attach %+v, got %+v", req, r)
	}
}

func TestPickerLeaveAndNoPty(t *testing.T) {
	called := make(chan struct{}, 4)
	e := newEnv(t, func(s *Server) {
		s.NoApp = func(context.Context, Terminal, Menu) (Choice, error) {
			called <- struct{}{}
			return Choice{}, nil
		}
	})
	if r := e.run(e.mustDial("alice", e.alice), "", runOpts{pty: true}); r.status != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("leaving the picker: %+v", r)
	}
	recv(t, called, "the picker")
	r := e.run(e.mustDial("alice", e.alice), "", runOpts{})
	if r.status != 64 || r.stderr != "switchyard: no app named; try: ssh -t APP@HOST or ssh HOST APP\n" {
		t.Errorf("no app, no pty: %+v", r)
	}
	select {
	case <-called:
		t.Error("the picker ran without a PTY")
	default:
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// waitLog waits until the gateway has logged a line with every one of parts.
func (e *env) waitLog(parts ...string) {
	e.t.Helper()
	logged := func() bool {
		for line := range strings.Lines(e.logs.String()) {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	}
	if !testutil.Poll(waitFor, logged) {
		e.t.Fatalf("no log line with %q", parts)
	}
}

// viaOpener plays a gateway that reaches only gw9: a relay channel on gw9
// opens its inner channel on the test appd, as gw9 would; anything else
// finds no route.
type viaOpener struct {
	dialOpener
	appd string
	got  chan relayRequest
}

func (o *viaOpener) OpenChannel(ctx context.Context, node, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error) {
	if chanType != control.ChannelRelay || node != "gw9" || addr != "10.9.9.9:7201" {
		return nil, nil, errors.New("dial " + addr + ": no route to host")
	}
	rr, err := decodeRelayRequest(extra)
	if err != nil {
		return nil, nil, err
	}
	o.got <- rr
	return o.dialOpener.OpenChannel(ctx, rr.Server, o.appd, rr.Type, rr.Extra)
}

// A session the broker lists with Via is attached through that gateway;
// one on a server this gateway does not reach, listed without Via (no
// gateway can relay there), fails with one line saying so.
func TestResumeThroughVia(t *testing.T) {
	o := &viaOpener{got: make(chan relayRequest, 4)}
	e := newEnv(t, func(s *Server) { s.Opener = o })
	t.Cleanup(o.Close)
	o.appd = e.appd.addr
	relayed := aliceNew
	relayed.Addr, relayed.Via = "10.0.0.1:7101", &control.Via{Gateway: "gw9", Addr: "10.9.9.9:7201"}
	e.withSessions(relayed)
	r := e.run(e.mustDial("alice", e.alice), "resume", runOpts{pty: true, stdin: "typed\r"})
	rr := recv(t, o.got, "relay request")
	var att control.AttachRequest
	if err := json.Unmarshal(rr.Extra, &att); err != nil || rr.Server != "s1" ||
		rr.Type != control.ChannelAttach || att.ID != "sess-1" || att.User != "alice" || att.Pty == nil {
		t.Errorf("relay request %+v (%+v, %v)", rr, att, err)
	}
	if r.status != 0 || r.stdout != "resumed\r\ntyped\r" {
		t.Errorf("got %+v", r)
	}
	if info := recv(t, e.placer.started, "session started"); info.ID != "sess-1" || info.Gateway != "gw1" || info.Via != nil || info.Addr != "" {
		t.Errorf("session started %+v", info)
	}
	e.waitLog("session started", "resumed=true", "via=gw9")

	direct := aliceNew
	direct.Addr = "10.0.0.1:7101"
	e.withSessions(direct)
	r = e.run(e.mustDial("alice", e.alice), "resume sess-1", runOpts{pty: true})
	want := "switchyard: server s1 of this session is not reachable from this gateway (gw1), try another gateway or later\r\n"
	if r.status != 69 || r.stderr != want || r.stdout != "" {
		t.Errorf("resume without a route: status %d stderr %q stdout %q; want 69 and %q", r.status, r.stderr, r.stdout, want)
	}
}

// resume takes a session's whole id or a unique prefix of at least
// minIDPrefix characters, as `broker status` shows them.
func TestChooseSessionByPrefix(t *testing.T) {
	list := []control.SessionInfo{
		{ID: "3f2a9c1d7e8b4a60", State: control.StateDetached},
		{ID: "3f2a9c1d00000000", State: control.StateDetached},
		{ID: "aa11bb22cc33dd44", State: control.StateDetached},
	}
	for _, tt := range []struct {
		id, want string
		ok       bool
	}{
		{"aa11bb22cc33dd44", "aa11bb22cc33dd44", true},
		{"aa11bb22cc33", "aa11bb22cc33dd44", true}, // what broker status shows
		{"aa11bb", "aa11bb22cc33dd44", true},
		{"aa11b", "", false},    // too short
		{"3f2a9c1d", "", false}, // two sessions start so
		{"3f2a9c1d7e", "3f2a9c1d7e8b4a60", true},
		{"ffffff", "", false},
	} {
		got, f := chooseSession(list, tt.id)
		if tt.ok != (f == nil) || tt.ok && got.ID != tt.want {
			t.Errorf("resume %q: got %q (%v), want %q ok=%v", tt.id, got.ID, f, tt.want, tt.ok)
		}
	}
}

// A picker whose input ends (ssh -tt alice@gw </dev/null) exits 0 quietly.
func TestPickerInputEnds(t *testing.T) {
	e := newEnv(t, func(s *Server) {
		s.NoApp = func(context.Context, Terminal, Menu) (Choice, error) {
			return Choice{}, fmt.Errorf("tui: read input: %w", io.EOF)
		}
	})
	if r := e.run(e.mustDial("alice", e.alice), "", runOpts{pty: true}); r.status != 0 || r.stderr != "" {
		t.Errorf("picker at EOF: %+v", r)
	}
}
