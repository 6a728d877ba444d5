package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// pair returns two connected peers over net.Pipe, serving until the test ends.
func pair(t *testing.T, ha, hb Handler) (*Peer, *Peer) {
	t.Helper()
	ca, cb := net.Pipe()
	a, b := NewPeer(ca, ha, nil), NewPeer(cb, hb, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Serve(ctx) }()
	go func() { defer wg.Done(); b.Serve(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a, b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCallBothWays(t *testing.T) {
	echo := func(name string) Handler {
		return func(ctx context.Context, m string, body json.RawMessage) (any, error) {
			var req PlaceRequest
			if err := json.Unmarshal(body, &req); err != nil {
				return nil, err
			}
			return Placement{Server: name, Reason: m + " for " + req.User}, nil
		}
	}
	a, b := pair(t, echo("a"), echo("b"))
	ctx := testCtx(t)
	var got Placement
	if err := a.Call(ctx, MethodPlace, PlaceRequest{User: "alice"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Server != "b" || got.Reason != "place for alice" {
		t.Fatalf("a→b got %+v", got)
	}
	if err := b.Call(ctx, MethodPlace, PlaceRequest{User: "bob"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Server != "a" || got.Reason != "place for bob" {
		t.Fatalf("b→a got %+v", got)
	}
}

func TestRemoteErrorKeepsCode(t *testing.T) {
	a, _ := pair(t, nil, func(ctx context.Context, m string, _ json.RawMessage) (any, error) {
		if m == "plain" {
			return nil, errors.New("boom")
		}
		return nil, NewError(CodeForbidden, "alice may not run top")
	})
	ctx := testCtx(t)
	err := a.Call(ctx, MethodPlace, PlaceRequest{}, nil)
	if ErrorCode(err) != CodeForbidden || err.Error() != "forbidden: alice may not run top" {
		t.Fatalf("got %v", err)
	}
	err = a.Call(ctx, "plain", nil, nil)
	if ErrorCode(err) != CodeInternal {
		t.Fatalf("plain error: got %v", err)
	}
}

func TestNotificationsInOrder(t *testing.T) {
	const n = 200
	got := make(chan string, n)
	a, _ := pair(t, nil, func(ctx context.Context, m string, body json.RawMessage) (any, error) {
		var s SessionEnded
		json.Unmarshal(body, &s)
		got <- s.ID
		return nil, nil
	})
	ctx := testCtx(t)
	for i := range n {
		if err := a.Notify(ctx, MethodSessionEnded, SessionEnded{ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case id := <-got:
			if id != fmt.Sprint(i) {
				t.Fatalf("notification %d arrived as %s", i, id)
			}
		case <-ctx.Done():
			t.Fatal("notifications did not arrive")
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	a, _ := pair(t, nil, func(ctx context.Context, m string, body json.RawMessage) (any, error) {
		var req PlaceRequest
		json.Unmarshal(body, &req)
		return Placement{Server: req.User}, nil
	})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p Placement
			user := fmt.Sprint("u", i)
			if err := a.Call(ctx, MethodPlace, PlaceRequest{User: user}, &p); err != nil {
				errs <- err
			} else if p.Server != user {
				errs <- fmt.Errorf("reply for %s went to %s", p.Server, user)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCloseFailsPendingCall(t *testing.T) {
	block := make(chan struct{})
	a, b := pair(t, nil, func(ctx context.Context, m string, _ json.RawMessage) (any, error) {
		<-block
		return nil, nil
	})
	defer close(block)
	errc := make(chan error, 1)
	go func() { errc <- a.Call(context.Background(), MethodPlace, nil, nil) }()
	b.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("call succeeded on a closed connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pending call not woken by close")
	}
	if err := a.Call(testCtx(t), MethodPlace, nil, nil); err == nil {
		t.Fatal("call after close succeeded")
	}
}

func TestCallHonoursContext(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	a, _ := pair(t, nil, func(ctx context.Context, m string, _ json.RawMessage) (any, error) {
		<-block
		return nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Call(ctx, MethodPlace, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestOversizedFrameRefused(t *testing.T) {
	ca, cb := net.Pipe()
	p := NewPeer(ca, nil, nil)
	errc := make(chan error, 1)
	go func() { errc <- p.Serve(context.Background()) }()
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxFrame+1)
	cb.Write(hdr[:])
	if err := <-errc; err == nil || !bytes.Contains([]byte(err.Error()), []byte("exceeds")) {
		t.Fatalf("got %v", err)
	}
	cb.Close()
}

func TestFrameRoundTrip(t *testing.T) {
	env := &envelope{ID: 7, Method: MethodPlace, Body: json.RawMessage(`{"user":"a"}`)}
	frame, err := appendFrame(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := readFrame(bufio.NewReader(bytes.NewReader(frame)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 7 || got.Method != MethodPlace || string(got.Body) != `{"user":"a"}` {
		t.Fatalf("got %+v", got)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, env := range []*envelope{
		{ID: 1, Method: MethodPlace, Body: json.RawMessage(`{"user":"alice","app":"top"}`)},
		{ID: 1, Reply: true, Err: NewError(CodeNoServer, "none")},
		{Method: MethodServerReport, Body: json.RawMessage(`{"sessions":[{"id":"x","pid":3}]}`)},
	} {
		frame, _ := appendFrame(nil, env)
		f.Add(frame)
	}
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			env, _, err := readFrame(r, nil)
			if err != nil {
				return
			}
			if env.Reply && env.ID == 0 || !env.Reply && env.Method == "" {
				t.Fatalf("invalid envelope accepted: %+v", env)
			}
		}
	})
}
