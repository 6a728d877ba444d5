package sshgate

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
	"switchyard/sshmsg"
)

// spliced returns a client whose channels are spliced, by a middle SSH
// server, to channels opened on backend.
func spliced(t testing.TB, ctx context.Context, backend *gossh.Client) *gossh.Client {
	t.Helper()
	return sshtest.Pair(t, func(nc gossh.NewChannel) {
		inner, innerReqs, err := backend.OpenChannel(nc.ChannelType(), nc.ExtraData())
		if err != nil {
			var oce *gossh.OpenChannelError
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
		splice(ctx, ch, reqs, inner, innerReqs)
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
func scriptedApp(log *backendLog) func(gossh.NewChannel) {
	return func(nc gossh.NewChannel) {
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
		ch.SendRequest("exit-status", false, gossh.Marshal(sshmsg.ExitStatus{Status: 7}))
		ch.Close()
	}
}

func TestSpliceCarriesEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
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
	if ok, err := ch.SendRequest("window-change", true, gossh.Marshal(sshmsg.WindowChange{Cols: 80, Rows: 24})); !ok || err != nil {
		t.Errorf("window-change: reply %v, %v; want the backend's true", ok, err)
	}
	if ok, err := ch.SendRequest("unknown@test", true, nil); ok || err != nil {
		t.Errorf("unknown request: reply %v, %v; want the backend's false", ok, err)
	}
	ch.SendRequest("signal", false, gossh.Marshal(sshmsg.Signal{Name: "INT"}))
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
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	closed := make(chan string, 4)
	backend := sshtest.Pair(t, func(nc gossh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		gossh.DiscardRequests(reqs) // until the channel closes
		closed <- string(nc.ExtraData())
		ch.Close()
	})
	client := spliced(t, ctx, backend)
	ch, reqs, err := client.OpenChannel("x", []byte("client-closed"))
	if err != nil {
		t.Fatal(err)
	}
	go gossh.DiscardRequests(reqs)
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
	gossh.DiscardRequests(reqs2) // returns once the client's channel is closed too
	ch2.Close()
}
