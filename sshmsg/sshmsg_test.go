package sshmsg

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// server accepts session channels, decodes each request a client sends
// with this package's types onto got, and answers "exec" by ending the
// session with exit as its last request.
func server(t *testing.T, got chan<- any, exit func(ch ssh.Channel)) *ssh.Client {
	return sshtest.Pair(t, func(nc ssh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		for req := range reqs {
			var m any
			switch req.Type {
			case "pty-req":
				m = &PtyReq{}
			case "env":
				m = &Env{}
			case "window-change":
				m = &WindowChange{}
			case "signal":
				m = &Signal{}
			case "exec":
				m = &Exec{}
			}
			ok := m != nil && ssh.Unmarshal(req.Payload, m) == nil
			if req.WantReply {
				req.Reply(ok, nil)
			}
			if !ok {
				t.Errorf("%s: payload %q does not decode", req.Type, req.Payload)
				continue
			}
			got <- m
			if req.Type == "exec" {
				exit(ch)
				ch.Close()
			}
		}
	})
}

// What x/crypto/ssh's client sends decodes as this package's types.
func TestClientRequestsDecode(t *testing.T) {
	got := make(chan any, 8)
	client := server(t, got, func(ch ssh.Channel) {
		ch.SendRequest("exit-status", false, ssh.Marshal(ExitStatus{Status: 3}))
	})
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm-256color", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		t.Fatalf("pty-req: %v", err)
	}
	if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
		t.Fatalf("env: %v", err)
	}
	next := func() any { return testutil.Recv(t, got, 10*time.Second, "a request") }
	if m := next().(*PtyReq); m.Term != "xterm-256color" || m.Rows != 24 || m.Cols != 80 || m.Modes != "\x35\x00\x00\x00\x01\x00" {
		t.Errorf("pty-req decoded as %+v", m)
	}
	if m := next().(*Env); m.Name != "LANG" || m.Value != "C.UTF-8" {
		t.Errorf("env decoded as %+v", m)
	}
	if err := s.WindowChange(30, 100); err != nil {
		t.Fatalf("window-change: %v", err)
	}
	if m := next().(*WindowChange); m.Rows != 30 || m.Cols != 100 {
		t.Errorf("window-change decoded as %+v", m)
	}
	if err := s.Signal(ssh.SIGINT); err != nil {
		t.Fatalf("signal: %v", err)
	}
	if m := next().(*Signal); m.Name != "INT" {
		t.Errorf("signal decoded as %+v", m)
	}
	err = s.Run("echo hi")
	if m := next().(*Exec); m.Command != "echo hi" {
		t.Errorf("exec decoded as %+v", m)
	}
	var exit *ssh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 3 {
		t.Errorf("Run with exit-status 3 returned %v", err)
	}
}

// What this package's exit-signal encodes, x/crypto/ssh's client reads.
func TestExitSignalEncodes(t *testing.T) {
	got := make(chan any, 8)
	client := server(t, got, func(ch ssh.Channel) {
		ch.SendRequest("exit-signal", false, ssh.Marshal(ExitSignal{Signal: "TERM", Error: "terminated"}))
	})
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Run("sleep 1000")
	var exit *ssh.ExitError
	if !errors.As(err, &exit) || exit.Signal() != "TERM" || exit.Msg() != "terminated" {
		t.Errorf("Run ended by exit-signal TERM returned %v", err)
	}
}
