package transport

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/sshtest"
)

// cluster is a server node "srv" that knows client node "cli".
type cluster struct {
	srv, cli ssh.Signer
	addr     string
	server   *Server
	accepts  atomic.Int32
	keys     KeyFunc
}

func startServer(t *testing.T, handler ConnHandler) *cluster {
	t.Helper()
	c := &cluster{srv: sshtest.NewSigner(t), cli: sshtest.NewSigner(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.keys = func(node string) (ssh.PublicKey, error) {
		switch node {
		case "srv":
			return c.srv.PublicKey(), nil
		case "cli":
			return c.cli.PublicKey(), nil
		}
		return nil, errors.New("unknown node " + node)
	}
	s := &Server{
		Signer: c.srv,
		Authorize: func(k ssh.PublicKey) (string, bool) {
			if string(k.Marshal()) == string(c.cli.PublicKey().Marshal()) {
				return "cli", true
			}
			return "", false
		},
		Handler: func(ctx context.Context, node string, conn *ssh.ServerConn, chans <-chan ssh.NewChannel) {
			c.accepts.Add(1)
			handler(ctx, node, conn, chans)
		},
	}
	c.server = s
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return c
}

// echoChannels accepts every channel and echoes its data.
func echoChannels(ctx context.Context, node string, conn *ssh.ServerConn, chans <-chan ssh.NewChannel) {
	for nc := range chans {
		ch, reqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go ssh.DiscardRequests(reqs)
		go func() {
			buf := make([]byte, 64)
			n, _ := ch.Read(buf)
			ch.Write(append([]byte(node+":"), buf[:n]...))
			ch.Close()
		}()
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMutualAuth(t *testing.T) {
	c := startServer(t, echoChannels)
	ctx := ctxT(t)
	good, err := Dial(ctx, Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
	if err != nil {
		t.Fatalf("listed node refused: %v", err)
	}
	good.Close()
	if _, err := Dial(ctx, Identity{"cli", sshtest.NewSigner(t)}, "srv", c.addr, c.srv.PublicKey()); err == nil {
		t.Fatal("an unlisted client key was admitted")
	}
	if _, err := Dial(ctx, Identity{"srv", c.cli}, "srv", c.addr, c.srv.PublicKey()); err == nil {
		t.Fatal("a listed key claiming another node's name was admitted")
	}
	if _, err := Dial(ctx, Identity{"cli", c.cli}, "srv", c.addr, sshtest.NewSigner(t).PublicKey()); err == nil {
		t.Fatal("client accepted a server host key that is not listed")
	}
}

func TestPoolMultiplexesChannels(t *testing.T) {
	c := startServer(t, echoChannels)
	p := &Pool{Identity: Identity{"cli", c.cli}, Keys: c.keys}
	defer p.Close()
	ctx := ctxT(t)
	for i := range 20 {
		ch, reqs, err := p.OpenChannel(ctx, "srv", c.addr, "test", nil)
		if err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
		go ssh.DiscardRequests(reqs)
		ch.Write([]byte("hi"))
		buf := make([]byte, 64)
		n, _ := ch.Read(buf)
		if string(buf[:n]) != "cli:hi" {
			t.Fatalf("got %q", buf[:n])
		}
		ch.Close()
	}
	if n := c.accepts.Load(); n != 1 {
		t.Fatalf("20 channels took %d connections, want 1", n)
	}
}

func TestLinkCallsAndReconnects(t *testing.T) {
	links := &testLinks{served: make(chan *control.Peer, 4)}
	served := links.served
	c := startServer(t, ControlLinks(links, nil))
	l := &Link{Identity: Identity{"cli", c.cli}, Peer: "srv", Addr: func() string { return c.addr }, Key: c.keys}
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	call := func() {
		t.Helper()
		p, err := l.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var pl control.Placement
		if err := p.Call(ctx, control.MethodPlace, control.PlaceRequest{}, &pl); err != nil {
			t.Fatal(err)
		}
		if pl.Server != "cli" {
			t.Fatalf("server saw node %q, want cli", pl.Server)
		}
	}
	call()
	first := <-served
	first.Close() // the server drops the link; it must come back
	select {
	case <-served:
	case <-ctx.Done():
		t.Fatal("link did not reconnect")
	}
	for {
		if p, err := l.Current(ctx); err == nil && p.Err() == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("reconnected link never became current")
		case <-time.After(10 * time.Millisecond):
		}
	}
	call()
	cancel()
	<-done
}

func TestLinkFailsFastWhenDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	key := sshtest.NewSigner(t)
	l := &Link{Identity: Identity{"cli", sshtest.NewSigner(t)}, Peer: "broker", Addr: func() string { return addr },
		Key: func(string) (ssh.PublicKey, error) { return key.PublicKey(), nil }}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	go l.Run(ctx)
	_, err := l.Current(ctx)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}
