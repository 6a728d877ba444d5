package sshgate

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/sshtest"
	"switchyard/sshmsg"
)

// testAppd is an appd stand-in: an x/crypto SSH server whose spawn channel
// runs a scripted behaviour chosen by the app name.
type testAppd struct {
	addr     string
	spawns   chan control.SpawnRequest
	attaches chan control.AttachRequest
	events   chan string // "eof", "closed", "window-change COLSxROWS"
}

func startAppd(t *testing.T) *testAppd {
	t.Helper()
	cfg := &gossh.ServerConfig{NoClientAuth: true} // test only: internal auth is not this package's
	cfg.AddHostKey(sshtest.NewSigner(t))
	a := &testAppd{spawns: make(chan control.SpawnRequest, 16),
		attaches: make(chan control.AttachRequest, 16), events: make(chan string, 64)}
	a.addr = sshtest.Serve(t, cfg, a.serveChannel)
	return a
}

// serveChannel serves a spawn or attach channel.
func (a *testAppd) serveChannel(nch gossh.NewChannel) {
	switch nch.ChannelType() {
	case control.ChannelSpawn:
		a.spawn(nch)
	case control.ChannelAttach:
		a.attach(nch)
	default:
		nch.Reject(gossh.UnknownChannelType, "unknown channel type")
	}
}

// attach serves an attach channel: only alice's session "sess-1" exists;
// it echoes, and "sess-takeover" is taken over at once.
func (a *testAppd) attach(nch gossh.NewChannel) {
	var req control.AttachRequest
	if err := json.Unmarshal(nch.ExtraData(), &req); err != nil {
		nch.Reject(gossh.Prohibited, "internal: bad attach request")
		return
	}
	a.attaches <- req
	if req.User != "alice" || (req.ID != "sess-1" && req.ID != "sess-takeover") {
		nch.Reject(gossh.Prohibited, "no_session: no such session")
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	go gossh.DiscardRequests(reqs)
	started, _ := json.Marshal(control.Started{ID: req.ID, PID: 4242})
	ch.SendRequest(control.RequestStarted, false, started)
	if req.ID == "sess-takeover" {
		io.WriteString(ch, "kept output\r\n")
		ch.SendRequest(control.RequestTakenOver, false, nil)
		io.WriteString(ch.Stderr(), "switchyard: session taken over by a newer connection\r\n")
		ch.SendRequest("exit-status", false, gossh.Marshal(sshmsg.ExitStatus{Status: 0}))
		ch.Close()
		return
	}
	io.WriteString(ch, "resumed\r\n")
	io.Copy(ch, ch)
	ch.SendRequest("exit-status", false, gossh.Marshal(sshmsg.ExitStatus{Status: 0}))
	ch.Close()
}

func (a *testAppd) event(e string) {
	select {
	case a.events <- e:
	default:
	}
}

func (a *testAppd) spawn(nch gossh.NewChannel) {
	var req control.SpawnRequest
	if err := json.Unmarshal(nch.ExtraData(), &req); err != nil {
		nch.Reject(gossh.Prohibited, "internal: bad spawn request")
		return
	}
	a.spawns <- req
	switch req.App {
	case "nosuch":
		nch.Reject(gossh.Prohibited, "unknown_app: no app named nosuch")
		return
	case "broken":
		nch.Reject(gossh.Prohibited, "spawn_failed: exec /usr/bin/broken: permission denied")
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	winch := make(chan sshmsg.WindowChange, 8)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for r := range reqs {
			if r.Type == "window-change" {
				var m sshmsg.WindowChange
				gossh.Unmarshal(r.Payload, &m)
				a.event(fmt.Sprintf("window-change %dx%d", m.Cols, m.Rows))
				winch <- m
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	started, _ := json.Marshal(control.Started{ID: "sess-1", PID: 4242})
	ch.SendRequest(control.RequestStarted, false, started)
	a.behave(req, ch, winch, closed)
}

func (a *testAppd) behave(req control.SpawnRequest, ch gossh.Channel, winch <-chan sshmsg.WindowChange, closed <-chan struct{}) {
	exit := func(status uint32) {
		ch.SendRequest("exit-status", false, gossh.Marshal(sshmsg.ExitStatus{Status: status}))
		ch.Close()
	}
	switch req.App {
	case "echo":
		io.Copy(ch, ch)
		a.event("eof")
		exit(0)
	case "raw":
		io.WriteString(ch, "a\nb\r\nc")
		exit(0)
	case "stderr":
		io.WriteString(ch, "out\n")
		io.WriteString(ch.Stderr(), "err\n")
		exit(0)
	case "exit7":
		exit(7)
	case "sig":
		ch.SendRequest("exit-signal", false, gossh.Marshal(sshmsg.ExitSignal{Signal: "TERM"}))
		ch.Close()
	case "vanish":
		ch.Close()
	case "winch":
		io.WriteString(ch, "ready\n")
		select {
		case m := <-winch:
			fmt.Fprintf(ch, "size %dx%d\n", m.Cols, m.Rows)
			exit(0)
		case <-time.After(waitFor):
			exit(1)
		}
	case "hang":
		io.WriteString(ch, "ready\n")
		select {
		case <-closed:
			a.event("closed")
		case <-time.After(waitFor):
		}
		ch.Close()
	default:
		fmt.Fprintf(ch, "app=%s user=%s args=%s\n", req.App, req.User, strings.Join(req.Args, ","))
		exit(0)
	}
}
