package sshgate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
)

var expires = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// redirecting makes the fake broker send every client to gw2.
func redirecting(rd control.Redirect) func(*env) {
	return func(e *env) {
		e.placer.place = func(context.Context, control.PlaceRequest) (control.Placement, error) {
			return control.Placement{Server: "s1", Addr: e.appd.addr, Reason: "test", Redirect: &rd}, nil
		}
	}
}

func TestRedirectHint(t *testing.T) {
	pre := control.Redirect{Gateway: "gw2", Address: "127.0.0.1:2223", SessionID: "abc", PID: 77, Expires: expires}
	tests := []struct {
		name  string
		rd    control.Redirect
		login string
		cmd   string
		pty   bool
		want  string
	}{
		{"login is the app, pre-launched", pre, "htop", "", true,
			"switchyard: htop is ready for you on gw2; run: ssh -p 2223 htop@127.0.0.1\r\n" +
				"SWITCHYARD-REDIRECT host=127.0.0.1 port=2223 login=htop app=htop session=abc pid=77 expires=2026-03-04T05:06:07Z\r\n"},
		{"user login with a command", pre, "alice", "htop", true,
			"switchyard: htop is ready for you on gw2; run: ssh -t -p 2223 alice@127.0.0.1 htop\r\n" +
				"SWITCHYARD-REDIRECT host=127.0.0.1 port=2223 login=alice app=htop session=abc pid=77 expires=2026-03-04T05:06:07Z\r\n"},
		{"batch, port 22, arguments quoted", control.Redirect{Gateway: "gw2", Address: "gw2.example.com:22", Expires: expires}, "alice", "report a;b", false,
			"switchyard: use gw2 for report; run: ssh alice@gw2.example.com report 'a;b'\n" +
				"SWITCHYARD-REDIRECT host=gw2.example.com port=22 login=alice app=report expires=2026-03-04T05:06:07Z\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			redirecting(tt.rd)(e)
			r := e.run(e.mustDial(tt.login, e.alice), tt.cmd, runOpts{pty: tt.pty})
			if r.status != 75 || r.stderr != tt.want || r.stdout != "" {
				t.Fatalf("got status %d stdout %q stderr\n%q\nwant\n%q", r.status, r.stdout, r.stderr, tt.want)
			}
			req := recv(t, e.placer.reqs, "place")
			if tt.pty && (req.Pty == nil || req.Pty.Term != "xterm-256color" || req.Pty.Cols != 80) {
				t.Errorf("place request without the client's terminal: %+v", req)
			}
			select {
			case s := <-e.appd.spawns:
				t.Errorf("a redirected session spawned %+v", s)
			default:
			}
		})
	}
}

func TestClaimAttachesThePrelaunchedSession(t *testing.T) {
	e := newEnv(t)
	e.placer.place = func(context.Context, control.PlaceRequest) (control.Placement, error) {
		return control.Placement{Server: "s1", Addr: e.appd.addr, Reason: "claim",
			Claim: &control.Claim{SessionID: "sess-1", PID: 4242}}, nil
	}
	r := e.run(e.mustDial("htop", e.alice), "", runOpts{pty: true, stdin: "typed"})
	att := recv(t, e.appd.attaches, "attach")
	if att.ID != "sess-1" || att.User != "alice" || att.Pty == nil || att.Pty.Cols != 80 {
		t.Errorf("attach request %+v", att)
	}
	if r.status != 0 || !strings.HasPrefix(r.stdout, "resumed\r\n") {
		t.Errorf("got %+v", r)
	}
	if info := recv(t, e.placer.started, "session started"); info.ID != "sess-1" || info.PID != 4242 || info.App != "htop" {
		t.Errorf("session started %+v", info)
	}
	// A pre-launched app that is gone by the time the client comes.
	e.placer.place = func(context.Context, control.PlaceRequest) (control.Placement, error) {
		return control.Placement{Server: "s1", Addr: e.appd.addr, Claim: &control.Claim{SessionID: "gone", PID: 1}}, nil
	}
	r = e.run(e.mustDial("htop", e.alice), "", runOpts{pty: true})
	if r.status != 69 || r.stderr != "switchyard: the htop started for you ended before you arrived, try again\r\n" {
		t.Errorf("claim of a gone session: %+v", r)
	}
}

// relayOpener records relay channels and rejects them as a relaying
// gateway would.
type relayOpener struct {
	got chan relayRequest
	msg string
}

func (o *relayOpener) OpenChannel(_ context.Context, node, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error) {
	if chanType != control.ChannelRelay || node != "gw9" || addr != "10.9.9.9:7201" {
		return nil, nil, errors.New("unexpected channel " + chanType + " on " + node + " at " + addr)
	}
	rr, _ := decodeRelayRequest(extra)
	o.got <- rr
	if o.msg == "" {
		return nil, nil, errors.New("connection refused")
	}
	return nil, nil, &gossh.OpenChannelError{Reason: gossh.Prohibited, Message: o.msg}
}

func TestViaOpensARelayChannel(t *testing.T) {
	o := &relayOpener{got: make(chan relayRequest, 4), msg: "no_server: server s1 is not reachable through gateway gw9"}
	e := newEnv(t, func(s *Server) { s.Opener = o })
	e.placer.place = func(context.Context, control.PlaceRequest) (control.Placement, error) {
		return control.Placement{Server: "s1", Addr: "10.0.0.1:7101", Via: &control.Via{Gateway: "gw9", Addr: "10.9.9.9:7201"}}, nil
	}
	r := e.run(e.mustDial("alice", e.alice), "report x", runOpts{})
	rr := recv(t, o.got, "relay request")
	var spawn control.SpawnRequest
	if err := json.Unmarshal(rr.Extra, &spawn); err != nil || rr.Server != "s1" ||
		rr.Type != control.ChannelSpawn || spawn.App != "report" || spawn.User != "alice" {
		t.Errorf("relay request %+v (%+v, %v)", rr, spawn, err)
	}
	if r.status != 69 || r.stderr != "switchyard: server s1 is not reachable through gateway gw9\n" {
		t.Errorf("relay rejected: %+v", r)
	}
	o.msg = ""
	r = e.run(e.mustDial("alice", e.alice), "report x", runOpts{})
	if r.status != 69 || r.stderr != "switchyard: server s1 is unreachable through gateway gw9, try again later\n" {
		t.Errorf("relay unreachable: %+v", r)
	}
}

func TestRedirectCommandWords(t *testing.T) {
	for _, tt := range []struct {
		login, cmd string
		pty        bool
		app        string
		args       []string
		want       string
	}{
		{"top", "", true, "top", nil, "ssh -p 2223 top@h"},
		{"top", "", false, "top", nil, "ssh -p 2223 top@h"},
		{"top", "vi", true, "vi", nil, "ssh -t -p 2223 top@h vi"},
		{"alice", "", true, "vi", nil, "ssh -t -p 2223 alice@h vi"}, // chosen in the picker
		{"alice", "echo it's $HOME", false, "echo", []string{"it's", "$HOME"}, `ssh -p 2223 alice@h echo 'it'\''s' '$HOME'`},
	} {
		if got := redirectCommand("h", "2223", tt.login, tt.cmd, tt.pty, tt.app, tt.args); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt, got, tt.want)
		}
	}
}
