package transport

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
)

// testLinks serves control links: each call is answered with a Placement
// naming the calling node; node "cli" alone may link unless refuse is
// set.
type testLinks struct {
	served chan *control.Peer // every link served, as it starts
	refuse atomic.Bool
}

func (l *testLinks) LinkHandler(node string) (control.Handler, error) {
	if l.refuse.Load() || node != "cli" {
		return nil, errors.New("node " + node + " may not link here")
	}
	return func(ctx context.Context, m string, b json.RawMessage) (any, error) {
		return control.Placement{Server: node}, nil
	}, nil
}

func (l *testLinks) ServeLink(ctx context.Context, node string, p *control.Peer) {
	l.served <- p
	p.Serve(ctx)
}

// ControlLinks serves control channels and refuses every other channel
// type, and the control channels of a node LinkHandler refuses, with
// its reason.
func TestControlLinksRefuses(t *testing.T) {
	links := &testLinks{served: make(chan *control.Peer, 4)}
	c := startServer(t, ControlLinks(links, nil))
	client, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	refusal := func(chanType string) string {
		ch, reqs, err := client.OpenChannel(chanType, nil)
		if err == nil {
			go ssh.DiscardRequests(reqs)
			ch.Close()
			return "accepted"
		}
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) {
			t.Fatalf("open %s: %v", chanType, err)
		}
		return oce.Message
	}
	if got := refusal(control.ChannelSpawn); got != "only control channels are accepted here" {
		t.Errorf("a spawn channel: %q", got)
	}
	if got := refusal(control.ChannelControl); got != "accepted" {
		t.Errorf("a control channel: %q", got)
	}
	links.refuse.Store(true)
	if got := refusal(control.ChannelControl); got != "node cli may not link here" {
		t.Errorf("a control channel of a refused node: %q", got)
	}
}
