package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// spliced returns a client whose channels are spliced, by a middle SSH
// server, to channels opened on backend.
func spliced(t testing.TB, ctx context.Context, backend *ssh.Client) *ssh.Client {
	t.Helper()
	return sshtest.Pair(t, func(nc ssh.NewChannel) {
		inner, innerReqs, err := backend.OpenChannel(nc.ChannelType(), nc.ExtraData())
		if err != nil {
			var oce *ssh.OpenChannelError
			if errors.As(err, &oce) {
				nc.Reject(oce.Reason, oce.Message)
			}
			return
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			inner.Close()
			return
		}
		Splice(ctx, ch, reqs, inner, innerReqs)
	})
}

// backendLog records what the backend end of a splice saw.
type backendLog struct {
	mu     sync.Mutex
	events []string
}

func (l *backendLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, s)
}

func (l *backendLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, ",")
}

// scriptedApp plays an appd session: a started request that wants a reply,
// stdout and stderr, then it echoes stdin until EOF, answers requests, and
// ends with "bye", EOF, exit-status 7 and close.
func scriptedApp(log *backendLog) func(ssh.NewChannel) {
	return func(nc ssh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		ok, err := ch.SendRequest(control.RequestStarted, true, []byte(`{"id":"x","pid":1}`))
		log.add("started-reply=" + map[bool]string{true: "true", false: "false"}[ok && err == nil])
		go func() {
			for req := range reqs {
				log.add(req.Type)
				if req.WantReply {
					req.Reply(req.Type == "window-change", nil)
				}
			}
		}()
		ch.Write([]byte("hello "))
		ch.Stderr().Write([]byte("oops"))
		io.Copy(ch, ch) // echo until the client's EOF
		log.add("eof")
		ch.Write([]byte(" bye"))
		ch.CloseWrite()
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{7}))
		ch.Close()
	}
}

func TestSpliceCarriesEverything(t *testing.T) {
	ctx := ctxT(t)
	log := &backendLog{}
	client := spliced(t, ctx, sshtest.Pair(t, scriptedApp(log)))
	ch, reqs, err := client.OpenChannel(control.ChannelSpawn, []byte(`{"app":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	var outAtExit string
	var out, errOut strings.Builder
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(&out, ch) })
		wg.Go(func() { io.Copy(&errOut, ch.Stderr()) })
		wg.Wait()
	}()
	reqsDone := make(chan struct{})
	go func() {
		defer close(reqsDone)
		for req := range reqs {
			mu.Lock()
			got = append(got, req.Type)
			mu.Unlock()
			if req.Type == "exit-status" {
				<-outDone // data sent before the exit status must arrive before the channel closes
				outAtExit = out.String()
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		}
	}()
	if ok, err := ch.SendRequest("window-change", true, ssh.Marshal(struct{ C, R, W, H uint32 }{80, 24, 0, 0})); !ok || err != nil {
		t.Errorf("window-change: reply %v, %v; want the backend's true", ok, err)
	}
	if ok, err := ch.SendRequest("unknown@test", true, nil); ok || err != nil {
		t.Errorf("unknown request: reply %v, %v; want the backend's false", ok, err)
	}
	ch.SendRequest("signal", false, ssh.Marshal(struct{ Name string }{"INT"}))
	// A request without a reply and data travel apart: the EOF below could
	// pass the signal, and the backend end before it came. Wait for it.
	for !strings.Contains(log.String(), "signal") {
		select {
		case <-ctx.Done():
			t.Fatal("the signal never reached the backend")
		case <-time.After(time.Millisecond):
		}
	}
	ch.Write([]byte("ping"))
	ch.CloseWrite()
	select {
	case <-reqsDone:
	case <-ctx.Done():
		t.Fatal("the spliced channel did not close")
	}
	<-outDone
	if out.String() != "hello ping bye" || errOut.String() != "oops" || outAtExit != "hello ping bye" {
		t.Errorf("stdout %q, stderr %q, stdout at exit %q", out.String(), errOut.String(), outAtExit)
	}
	if strings.Join(got, ",") != "started@switchyard,exit-status" {
		t.Errorf("client saw requests %v", got)
	}
	if want := "started-reply=true,window-change,unknown@test,signal,eof"; log.String() != want {
		t.Errorf("backend saw %s, want %s", log, want)
	}
}

func TestSpliceClosesTheOtherSide(t *testing.T) {
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	closed := make(chan string, 4)
	backend := sshtest.Pair(t, func(nc ssh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		ssh.DiscardRequests(reqs) // until the channel closes
		closed <- string(nc.ExtraData())
		ch.Close()
	})
	client := spliced(t, ctx, backend)
	ch, reqs, err := client.OpenChannel("x", []byte("client-closed"))
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	ch.Close()
	if got := testutil.Recv(t, closed, 10*time.Second, "the backend's channel to close"); got != "client-closed" {
		t.Fatalf("backend saw %q closed", got)
	}
	// ctx ending closes both sides.
	ch2, reqs2, err := client.OpenChannel("x", []byte("ctx-ended"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if got := testutil.Recv(t, closed, 10*time.Second, "the backend's channel to close"); got != "ctx-ended" {
		t.Fatalf("backend saw %q closed", got)
	}
	ssh.DiscardRequests(reqs2) // returns once the client's channel is closed too
	ch2.Close()
}

func TestRelayChecksAndPassesRejections(t *testing.T) {
	backend := sshtest.Pair(t, func(nc ssh.NewChannel) { nc.Reject(ssh.Prohibited, "no_session: no such session") })
	r := &Relay{Name: "gw1",
		Open: func(ctx context.Context, node, addr, chanType string, extra []byte) (ssh.Channel, <-chan *ssh.Request, error) {
			if node == "down" {
				return nil, nil, errors.New("connection refused")
			}
			return backend.OpenChannel(chanType, extra)
		},
		Resolve: func(server string) (string, bool) { return "10.0.0.1:7101", server != "far" },
	}
	c := startServer(t, r.HandleConn)
	client, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	open := func(chanType string, req control.RelayRequest) string {
		extra, _ := json.Marshal(req)
		ch, _, err := client.OpenChannel(chanType, extra)
		if err == nil {
			ch.Close()
			return "accepted"
		}
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) {
			t.Fatalf("open: %v", err)
		}
		return oce.Message
	}
	for _, tt := range []struct {
		chanType string
		req      control.RelayRequest
		want     string
	}{
		{"session", control.RelayRequest{}, "a gateway's internal listener accepts only relay channels"},
		{control.ChannelRelay, control.RelayRequest{Server: "s1", Type: "direct-tcpip"}, `internal: relay of "direct-tcpip" channels is not allowed`},
		{control.ChannelRelay, control.RelayRequest{Server: "far", Type: control.ChannelSpawn}, "no_server: server far is not reachable through gateway gw1"},
		{control.ChannelRelay, control.RelayRequest{Server: "down", Type: control.ChannelSpawn}, "no_server: server down is unreachable from gateway gw1"},
		{control.ChannelRelay, control.RelayRequest{Server: "s1", Type: control.ChannelAttach}, "no_session: no such session"},
	} {
		if got := open(tt.chanType, tt.req); got != tt.want {
			t.Errorf("%s %+v: got %q, want %q", tt.chanType, tt.req, got, tt.want)
		}
	}
}

// Relays count against the relaying gateway's capacity: Admit refuses one
// beyond it, and Done gives the slot back when the relay ends.
func TestRelayCountsAgainstCapacity(t *testing.T) {
	backend := sshtest.Pair(t, func(nc ssh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		io.Copy(io.Discard, ch) // until the relayed client closes
		ch.Close()
	})
	var slots atomic.Int64
	r := &Relay{Name: "gw1",
		Open: func(ctx context.Context, node, addr, chanType string, extra []byte) (ssh.Channel, <-chan *ssh.Request, error) {
			return backend.OpenChannel(chanType, extra)
		},
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
	c := startServer(t, r.HandleConn)
	client, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	extra, _ := json.Marshal(control.RelayRequest{Server: "s1", Type: control.ChannelSpawn})
	first, reqs, err := client.OpenChannel(control.ChannelRelay, extra)
	if err != nil {
		t.Fatalf("first relay refused: %v", err)
	}
	go ssh.DiscardRequests(reqs)
	_, _, err = client.OpenChannel(control.ChannelRelay, extra)
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage || oce.Message != "no_server: gateway gw1 is full" {
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
	go ssh.DiscardRequests(reqs)
	again.Close()
}
