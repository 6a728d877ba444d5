package brokerlink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/config"
	"switchyard/control"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
	"switchyard/transport"
)

const wait = 15 * time.Second

// message is what a fake broker heard: a call or a notification.
type message struct {
	method string
	body   json.RawMessage
}

// fakeBroker is an SSH server on loopback that admits node gw1 by its key
// and speaks the control protocol on each control channel, as a broker
// does: it places top on s1, refuses other apps, lists alice's sessions
// and apps, and records every message.
type fakeBroker struct {
	signer ssh.Signer
	addr   string
	heard  chan message
	peers  chan *control.Peer // one per connection, once served
}

func startBroker(t *testing.T, gw ssh.PublicKey) *fakeBroker {
	t.Helper()
	b := &fakeBroker{signer: sshtest.NewSigner(t), heard: make(chan message, 64), peers: make(chan *control.Peer, 8)}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if c.User() != "gw1" || !bytes.Equal(k.Marshal(), gw.Marshal()) {
			return nil, errors.New("not gw1")
		}
		return nil, nil
	}}
	cfg.AddHostKey(b.signer)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b.addr = sshtest.Serve(t, cfg, func(nc ssh.NewChannel) {
		if nc.ChannelType() != control.ChannelControl {
			nc.Reject(ssh.UnknownChannelType, "control only")
			return
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		p := control.NewPeer(ch, b.answer, nil)
		b.peers <- p
		p.Serve(ctx)
	})
	return b
}

func (b *fakeBroker) answer(_ context.Context, method string, body json.RawMessage) (any, error) {
	b.heard <- message{method, body}
	switch method {
	case control.MethodPlace:
		var req control.PlaceRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		if req.App != "top" {
			return nil, control.NewError(control.CodeUnknownApp, "no app "+req.App)
		}
		return control.Placement{Server: "s1", Addr: "127.0.0.1:7101", Reason: "least loaded"}, nil
	case control.MethodSessionsList:
		return control.SessionList{Sessions: []control.SessionInfo{{ID: "sess-1", User: "alice", App: "top"}}}, nil
	case control.MethodAppsList:
		return control.AppList{Apps: []control.AppInfo{{Name: "top", Available: true}}}, nil
	}
	return nil, nil
}

// next returns the next message the broker heard.
func (b *fakeBroker) next(t *testing.T) message {
	t.Helper()
	return testutil.Recv(t, b.heard, wait, "a message at the broker")
}

// configFor writes and loads a config whose [broker] is b, and whose
// gateway gw1 has key gw.
func configFor(t *testing.T, dir string, b *fakeBroker, gw ssh.PublicKey) *config.Config {
	t.Helper()
	line := func(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }
	src := `state_dir = "` + dir + `"

[broker]
listen = "` + b.addr + `"
public_key = "` + line(b.signer.PublicKey()) + `"
report_interval = "500ms"

[gateway.gw1]
listen = "127.0.0.1:2222"
public_key = "` + line(gw) + `"

[server.s1]
listen = "127.0.0.1:7101"

[app.top]
argv = ["top"]
`
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// run keeps links up until the test ends.
func run(t *testing.T, links *transport.Brokers) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { links.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestPlacerTalksToTheBroker(t *testing.T) {
	gw := sshtest.NewSigner(t)
	b := startBroker(t, gw.PublicKey())
	var cfg atomic.Pointer[config.Config]
	cfg.Store(configFor(t, t.TempDir(), b, gw.PublicKey()))
	links := Links(&cfg, transport.Identity{Name: "gw1", Signer: gw}, nil, nil, nil)
	if len(links.Order) != 1 || links.Order[0] != config.DefaultBroker {
		t.Fatalf("links to %v, want [broker]", links.Order)
	}
	run(t, links)
	p := Placer{Brokers: links}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	pl, err := p.Place(ctx, control.PlaceRequest{User: "alice", App: "top", Gateway: "gw1"})
	if err != nil || pl.Server != "s1" || pl.Addr != "127.0.0.1:7101" || pl.Reason != "least loaded" {
		t.Fatalf("Place = %+v, %v", pl, err)
	}
	if m := b.next(t); m.method != control.MethodPlace || !strings.Contains(string(m.body), `"user":"alice"`) {
		t.Errorf("the broker heard %s %s", m.method, m.body)
	}
	_, err = p.Place(ctx, control.PlaceRequest{User: "alice", App: "nope"})
	var re *control.RemoteError
	if !errors.As(err, &re) || re.Code != control.CodeUnknownApp || re.Message != "no app nope" {
		t.Fatalf("a refused placement: %v, want the broker's %s", err, control.CodeUnknownApp)
	}
	b.next(t)

	info := control.SessionInfo{ID: "sess-2", User: "alice", App: "top", Server: "s1"}
	for _, tc := range []struct {
		method string
		send   func() error
	}{
		{control.MethodSessionStarted, func() error { return p.SessionStarted(ctx, info) }},
		{control.MethodSessionDetached, func() error { return p.SessionDetached(ctx, info) }},
		{control.MethodSessionEnded, func() error {
			return p.SessionEnded(ctx, control.SessionEnded{ID: "sess-2", Server: "s1", Status: 3})
		}},
	} {
		if err := tc.send(); err != nil {
			t.Fatalf("%s: %v", tc.method, err)
		}
		if m := b.next(t); m.method != tc.method || !strings.Contains(string(m.body), `"id":"sess-2"`) {
			t.Errorf("sent %s, the broker heard %s %s", tc.method, m.method, m.body)
		}
	}

	sessions, err := p.Sessions(ctx, "alice")
	if err != nil || len(sessions) != 1 || sessions[0].ID != "sess-1" {
		t.Fatalf("Sessions = %+v, %v", sessions, err)
	}
	if m := b.next(t); m.method != control.MethodSessionsList || string(m.body) != `{"user":"alice"}` {
		t.Errorf("the broker heard %s %s", m.method, m.body)
	}
	apps, err := p.Apps(ctx, "alice")
	if err != nil || len(apps) != 1 || apps[0].Name != "top" || !apps[0].Available {
		t.Fatalf("Apps = %+v, %v", apps, err)
	}
	if m := b.next(t); m.method != control.MethodAppsList || string(m.body) != `{"user":"alice"}` {
		t.Errorf("the broker heard %s %s", m.method, m.body)
	}
}

// A link follows its broker to the address and key a reload gives it,
// runs onConnect on each connection and serves the broker's calls with
// the node's handler.
func TestLinksFollowTheBrokerThroughAReload(t *testing.T) {
	gw := sshtest.NewSigner(t)
	first, second := startBroker(t, gw.PublicKey()), startBroker(t, gw.PublicKey())
	dir := t.TempDir()
	var cfg atomic.Pointer[config.Config]
	cfg.Store(configFor(t, dir, first, gw.PublicKey()))
	report := func(ctx context.Context, p *control.Peer) {
		p.Notify(ctx, control.MethodGatewayReport, control.GatewayReport{Capacity: 7})
	}
	handler := func(_ context.Context, method string, _ json.RawMessage) (any, error) {
		return control.AppList{Apps: []control.AppInfo{{Name: "from gw1 " + method}}}, nil
	}
	links := Links(&cfg, transport.Identity{Name: "gw1", Signer: gw}, nil, handler, report)
	run(t, links)

	if m := first.next(t); m.method != control.MethodGatewayReport {
		t.Fatalf("the first broker heard %s first, want the report onConnect sends", m.method)
	}
	p := testutil.Recv(t, first.peers, wait, "the link to the first broker")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got control.AppList
	if err := p.Call(ctx, "ask", struct{}{}, &got); err != nil || len(got.Apps) != 1 || got.Apps[0].Name != "from gw1 ask" {
		t.Fatalf("the broker's call to the node: %+v, %v", got, err)
	}

	cfg.Store(configFor(t, dir, second, gw.PublicKey())) // the reload: a new address and key
	p.Close()                                            // the first broker goes away
	if m := second.next(t); m.method != control.MethodGatewayReport {
		t.Fatalf("the second broker heard %s first, want the report onConnect sends", m.method)
	}
	if _, err := (Placer{Brokers: links}).Sessions(ctx, "alice"); err != nil {
		t.Fatalf("Sessions after the reload: %v", err)
	}
	if m := second.next(t); m.method != control.MethodSessionsList {
		t.Errorf("the second broker heard %s, want %s", m.method, control.MethodSessionsList)
	}
	select {
	case m := <-first.heard:
		t.Errorf("the first broker heard %s after the reload", m.method)
	default:
	}
}
