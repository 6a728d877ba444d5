package appd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
)

// dialAs returns a client whose channels m.HandleChannel serves as opened
// by gateway node (the connection's user: a test-only server that takes
// the name on trust, as transport takes it from the node's key).
func dialAs(t *testing.T, m *Manager, node string) *ssh.Client {
	t.Helper()
	signer := newTestSigner(t)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
		if err != nil {
			return
		}
		defer conn.Close()
		go ssh.DiscardRequests(reqs)
		for ch := range chans {
			wg.Go(func() { m.HandleChannel(ctx, ch, conn.User()) })
		}
	})
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User: node, HostKeyCallback: ssh.FixedHostKey(signer.PublicKey()), Timeout: waitTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		ln.Close()
		cancel()
		wg.Wait()
	})
	return client
}

func newTestSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lockedLog is a log destination safe for concurrent writers.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// refusedAs checks that err is the rejection of a channel from a gateway
// that does not reach s1.
func refusedAs(t *testing.T, err error, node string) {
	t.Helper()
	if err == nil {
		t.Fatalf("a channel from %s, which does not reach s1, was accepted", node)
	}
	oce := rejection(t, err)
	want := "no_server: gateway " + node + " does not reach server s1"
	if oce.Reason != ssh.Prohibited || oce.Message != want {
		t.Fatalf("rejection %v %q, want %v %q", oce.Reason, oce.Message, ssh.Prohibited, want)
	}
}

// Only gateways that reach the server open spawn and attach channels on
// it, by the node that opened the connection, whatever gateway the
// request names; a new list applies to open connections at once; the
// refusals are logged once per gateway.
func TestChannelsOnlyFromGatewaysThatReach(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"app": graceApp(time.Minute)})
	logs := &lockedLog{}
	m.Logger = slog.New(slog.NewTextHandler(logs, nil))
	m.SetGateways([]string{"gw1"})
	gw1, gw2 := dialAs(t, m, "gw1"), dialAs(t, m, "gw2")

	_, err := trySpawn(t, gw2, ptyReq("app"))
	refusedAs(t, err, "gw2")
	relayed := ptyReq("app")
	relayed.Gateway = "gw1" // a name in the request proves nothing
	_, err = trySpawn(t, gw2, relayed)
	refusedAs(t, err, "gw2")

	relayed.Gateway = "gw2" // gw1 relaying for gw2
	first := spawn(t, gw1, relayed)
	first.waitOutput("ready")
	first.ch.Close()
	waitState(t, m, first.started.ID, control.StateDetached)
	_, err = openChannel(t, gw2, control.ChannelAttach, attachReq(first.started.ID, "alice"))
	refusedAs(t, err, "gw2")
	if _, _, err := gw1.OpenChannel("session", nil); err == nil || rejection(t, err).Reason != ssh.UnknownChannelType {
		t.Fatalf("a session channel: %v, want unknown channel type", err)
	}

	m.SetGateways([]string{"gw2"}) // a reload: gw2 reaches s1 now, gw1 no longer
	_, err = openChannel(t, gw1, control.ChannelAttach, attachReq(first.started.ID, "alice"))
	refusedAs(t, err, "gw1")
	second := attach(t, gw2, attachReq(first.started.ID, "alice"))
	second.ch.Write([]byte("quit\r"))
	if got := second.exitStatus(); got != 3 {
		t.Errorf("exit status = %d, want 3", got)
	}
	if n := strings.Count(logs.String(), "gateway does not reach this server"); n != 2 {
		t.Errorf("%d refusals logged in full, want one per gateway:\n%s", n, logs)
	}
}
