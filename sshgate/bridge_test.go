package sshgate

import (
	"context"
	"io"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
	"switchyard/sshmsg"
)

// A bridge delivers appd's output before its exit status, answers appd's
// requests itself, and ends drained when appd closes; when the client
// leaves, it closes the appd channel and ends once appd has closed too.
// (Giving up after the grace period needs a stalled appd connection: an
// x/crypto peer answers a close by itself.)
func TestBridgeWait(t *testing.T) {
	t.Run("exit after output", func(t *testing.T) {
		client, clientReqs, user, _ := sshtest.ChannelPair(t)
		go gossh.DiscardRequests(clientReqs)
		app, appReqs, appd, _ := sshtest.ChannelPair(t)
		br := startBridge(client, client, app, appReqs, nil, false)
		answered := make(chan bool, 1)
		go func() {
			appd.Write([]byte("out"))
			appd.Stderr().Write([]byte("err"))
			ok, err := appd.SendRequest("exit-status", true, gossh.Marshal(sshmsg.ExitStatus{Status: 3}))
			answered <- ok && err == nil
			appd.Close()
		}()
		ex, drained := br.wait(context.Background(), time.Minute, nil)
		if !recv(t, answered, "the exit-status reply") {
			t.Error("the bridge refused appd's exit-status")
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
		client, clientReqs, _, _ := sshtest.ChannelPair(t)
		go gossh.DiscardRequests(clientReqs)
		app, appReqs, appd, _ := sshtest.ChannelPair(t)
		br := startBridge(client, client, app, appReqs, nil, false)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		go func() {
			io.Copy(io.Discard, appd) // ends when the bridge closes the channel
			appd.Close()
		}()
		if ex, drained := br.wait(ctx, time.Minute, nil); ex != nil || !drained {
			t.Errorf("wait = %+v, %v; want no exit, drained", ex, drained)
		}
	})
}
