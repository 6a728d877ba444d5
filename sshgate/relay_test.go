package sshgate

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// channelPair opens one "session" channel over a real SSH connection on
// loopback and returns both ends: near (the side a relay reads) and far
// (the side playing appd or the client), with their request queues.
func channelPair(t *testing.T) (near gossh.Channel, nearReqs <-chan *gossh.Request, far gossh.Channel, farReqs <-chan *gossh.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	host := newSigner(t)
	type accepted struct {
		ch   gossh.Channel
		reqs <-chan *gossh.Request
		err  error
	}
	got := make(chan accepted, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			got <- accepted{err: err}
			return
		}
		cfg := &gossh.ServerConfig{NoClientAuth: true}
		cfg.AddHostKey(host)
		conn, chans, reqs, err := gossh.NewServerConn(nc, cfg)
		if err != nil {
			got <- accepted{err: err}
			return
		}
		t.Cleanup(func() { conn.Close() })
		go gossh.DiscardRequests(reqs)
		nch := <-chans
		ch, chReqs, err := nch.Accept()
		got <- accepted{ch, chReqs, err}
	}()
	client, err := gossh.Dial("tcp", ln.Addr().String(), &gossh.ClientConfig{HostKeyCallback: gossh.FixedHostKey(host.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ch, reqs, err := client.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	return ch, reqs, a.ch, a.reqs
}

// A relay delivers appd's output before its exit status, answers appd's
// requests itself, and ends drained when appd closes; when the client
// leaves, it closes the appd channel and ends once appd has closed too.
// (Giving up after the grace period needs a stalled appd connection: an
// x/crypto peer answers a close by itself.)
func TestRelayWait(t *testing.T) {
	t.Run("exit after output", func(t *testing.T) {
		client, clientReqs, user, _ := channelPair(t)
		go gossh.DiscardRequests(clientReqs)
		app, appReqs, appd, _ := channelPair(t)
		rl := startRelay(client, client, app, appReqs, nil)
		answered := make(chan bool, 1)
		go func() {
			appd.Write([]byte("out"))
			appd.Stderr().Write([]byte("err"))
			ok, err := appd.SendRequest("exit-status", true, gossh.Marshal(exitStatusMsg{Status: 3}))
			answered <- ok && err == nil
			appd.Close()
		}()
		ex, drained := rl.wait(context.Background(), time.Minute)
		if !recv(t, answered, "the exit-status reply") {
			t.Error("the relay refused appd's exit-status")
		}
		if !drained || ex == nil {
			t.Fatalf("wait = %+v, %v; want the exit request, drained", ex, drained)
		}
		if status, _ := ex.status(); status != 3 {
			t.Errorf("status %d, want 3", status)
		}
		client.CloseWrite()
		out, _ := io.ReadAll(user)
		errOut, _ := io.ReadAll(user.Stderr())
		if string(out) != "out" || string(errOut) != "err" {
			t.Errorf("client got %q and %q on stderr; want \"out\" and \"err\"", out, errOut)
		}
	})
	t.Run("client left, appd closes", func(t *testing.T) {
		client, clientReqs, _, _ := channelPair(t)
		go gossh.DiscardRequests(clientReqs)
		app, appReqs, appd, _ := channelPair(t)
		rl := startRelay(client, client, app, appReqs, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		go func() {
			io.Copy(io.Discard, appd) // ends when the relay closes the channel
			appd.Close()
		}()
		if ex, drained := rl.wait(ctx, time.Minute); ex != nil || !drained {
			t.Errorf("wait = %+v, %v; want no exit, drained", ex, drained)
		}
	})
}
