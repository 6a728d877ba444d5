package sshgate

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// openerFunc is an Opener that is a function.
type openerFunc func(ctx context.Context, node, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error)

func (f openerFunc) OpenChannel(ctx context.Context, node, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error) {
	return f(ctx, node, addr, chanType, extra)
}

// relayClient returns a client whose channels r serves, as gateway gw2's.
func relayClient(t *testing.T, r *Relay) *gossh.Client {
	t.Helper()
	return sshtest.Pair(t, func(nc gossh.NewChannel) { r.ServeChannel(context.Background(), "gw2", nc) })
}

func TestRelayChecksAndPassesRejections(t *testing.T) {
	backend := sshtest.Pair(t, func(nc gossh.NewChannel) { nc.Reject(gossh.Prohibited, "no_session: no such session") })
	r := &Relay{Name: "gw1",
		Opener: openerFunc(func(ctx context.Context, node, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error) {
			if node == "down" {
				return nil, nil, errors.New("connection refused")
			}
			return backend.OpenChannel(chanType, extra)
		}),
		Resolve: func(server string) (string, bool) { return "10.0.0.1:7101", server != "far" },
	}
	client := relayClient(t, r)
	open := func(chanType string, req relayRequest) string {
		ch, _, err := client.OpenChannel(chanType, req.marshal())
		if err == nil {
			ch.Close()
			return "accepted"
		}
		var oce *gossh.OpenChannelError
		if !errors.As(err, &oce) {
			t.Fatalf("open: %v", err)
		}
		return oce.Message
	}
	for _, tt := range []struct {
		chanType string
		req      relayRequest
		want     string
	}{
		{"session", relayRequest{}, "a gateway's internal listener accepts only relay channels"},
		{control.ChannelRelay, relayRequest{Server: "s1", Type: "direct-tcpip"}, `internal: relay of "direct-tcpip" channels is not allowed`},
		{control.ChannelRelay, relayRequest{Server: "far", Type: control.ChannelSpawn}, "no_server: server far is not reachable through gateway gw1"},
		{control.ChannelRelay, relayRequest{Server: "down", Type: control.ChannelSpawn}, "no_server: server down is unreachable from gateway gw1"},
		{control.ChannelRelay, relayRequest{Server: "s1", Type: control.ChannelAttach}, "no_session: no such session"},
	} {
		if got := open(tt.chanType, tt.req); got != tt.want {
			t.Errorf("%s %+v: got %q, want %q", tt.chanType, tt.req, got, tt.want)
		}
	}
}

// Relays count against the relaying gateway's capacity: Admit refuses one
// beyond it, and Done gives the slot back when the relay ends.
func TestRelayCountsAgainstCapacity(t *testing.T) {
	backend := sshtest.Pair(t, func(nc gossh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go gossh.DiscardRequests(reqs)
		io.Copy(io.Discard, ch) // until the relayed client closes
		ch.Close()
	})
	var slots atomic.Int64
	r := &Relay{Name: "gw1",
		Opener: openerFunc(func(ctx context.Context, node, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error) {
			return backend.OpenChannel(chanType, extra)
		}),
		Resolve: func(string) (string, bool) { return "10.0.0.1:7101", true },
		Admit: func() bool {
			if slots.Add(1) > 1 {
				slots.Add(-1)
				return false
			}
			return true
		},
		Done: func() { slots.Add(-1) },
	}
	client := relayClient(t, r)
	extra := relayRequest{Server: "s1", Type: control.ChannelSpawn}.marshal()
	first, reqs, err := client.OpenChannel(control.ChannelRelay, extra)
	if err != nil {
		t.Fatalf("first relay refused: %v", err)
	}
	go gossh.DiscardRequests(reqs)
	_, _, err = client.OpenChannel(control.ChannelRelay, extra)
	var oce *gossh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != gossh.ResourceShortage || oce.Message != "no_server: gateway gw1 is full" {
		t.Fatalf("relay beyond capacity: %v, want a resource shortage saying the gateway is full", err)
	}
	first.Close()
	if !testutil.Poll(10*time.Second, func() bool { return slots.Load() == 0 }) {
		t.Fatalf("%d slots still taken after the relay ended", slots.Load())
	}
	again, reqs, err := client.OpenChannel(control.ChannelRelay, extra)
	if err != nil {
		t.Fatalf("relay after the slot came back: %v", err)
	}
	go gossh.DiscardRequests(reqs)
	again.Close()
}

// A relay request is two SSH strings and the inner request as is: the
// documented wire format, no JSON or base64 around the inner request.
func TestRelayRequestEncoding(t *testing.T) {
	inner := []byte(`{"app":"htop","user":"alice"}` + "\x00\xff")
	got := relayRequest{Server: "s1", Type: control.ChannelSpawn, Extra: inner}.marshal()
	want := binary.BigEndian.AppendUint32(nil, 2)
	want = append(want, "s1"...)
	want = binary.BigEndian.AppendUint32(want, uint32(len(control.ChannelSpawn)))
	want = append(want, control.ChannelSpawn...)
	want = append(want, inner...)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %q, want %q", got, want)
	}
	rr, err := decodeRelayRequest(got)
	if err != nil || rr.Server != "s1" || rr.Type != control.ChannelSpawn || !bytes.Equal(rr.Extra, inner) {
		t.Fatalf("decoded %+v, %v", rr, err)
	}
	if rr, err := decodeRelayRequest(relayRequest{Server: "s1", Type: control.ChannelAttach}.marshal()); err != nil || len(rr.Extra) != 0 {
		t.Errorf("no inner extra data: decoded %+v, %v", rr, err)
	}
	for _, bad := range [][]byte{nil, got[:3], got[:8], []byte(`{"server":`)} {
		if rr, err := decodeRelayRequest(bad); err == nil {
			t.Errorf("%q decoded as %+v", bad, rr)
		}
	}
}

// A relay request from a gateway older than the SSH encoding (JSON, the
// inner request in base64) is still served.
func TestRelayAcceptsLegacyRequest(t *testing.T) {
	backend := sshtest.Pair(t, func(nc gossh.NewChannel) {
		if string(nc.ExtraData()) != `{"app":"x"}` {
			nc.Reject(gossh.Prohibited, fmt.Sprintf("inner extra data %q", nc.ExtraData()))
			return
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go gossh.DiscardRequests(reqs)
		ch.Write([]byte("ok"))
		ch.Close()
	})
	r := &Relay{Name: "gw1",
		Opener: openerFunc(func(ctx context.Context, node, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error) {
			return backend.OpenChannel(chanType, extra)
		}),
		Resolve: func(string) (string, bool) { return "10.0.0.1:7101", true },
	}
	client := relayClient(t, r)
	legacy := `{"server":"s1","addr":"10.0.0.9:7101","type":"spawn@switchyard","extra":"eyJhcHAiOiJ4In0="}`
	ch, reqs, err := client.OpenChannel(control.ChannelRelay, []byte(legacy))
	if err != nil {
		t.Fatalf("legacy relay request refused: %v", err)
	}
	go gossh.DiscardRequests(reqs)
	if out, _ := io.ReadAll(ch); string(out) != "ok" {
		t.Fatalf("relayed channel said %q, want \"ok\"", out)
	}
}
