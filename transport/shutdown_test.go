package transport

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/testutil"
)

// Shutdown stops accepting at once but lets a connection being served go
// on, and returns once its handler has.
func TestShutdownWaitsForConnections(t *testing.T) {
	c := startServer(t, echoChannels)
	client, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	shut := make(chan error, 1)
	go func() { shut <- c.server.Shutdown(context.Background()) }()
	testutil.Eventually(t, 10*time.Second, "the listener to close", func() bool {
		extra, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
		if err == nil {
			extra.Close()
		}
		return err != nil
	})
	echo(t, client, "still served")
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a connection still served", err)
	default:
	}
	client.Close()
	if err := testutil.Recv(t, shut, 10*time.Second, "Shutdown to return"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// When its context ends first, Shutdown says so and leaves the connection
// open; Close then ends it.
func TestShutdownBoundedByContext(t *testing.T) {
	c := startServer(t, echoChannels)
	client, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", c.addr, c.srv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.server.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context: %v, want context.Canceled", err)
	}
	echo(t, client, "after the bound")
	closed := make(chan error, 1)
	go func() { closed <- client.Wait() }()
	c.server.Close()
	testutil.Recv(t, closed, 10*time.Second, "Close to end the connection")
}

// echo sends msg on a new channel of client and checks the server's echo.
func echo(t *testing.T, client *ssh.Client, msg string) {
	t.Helper()
	ch, reqs, err := client.OpenChannel("x", nil)
	if err != nil {
		t.Fatalf("open a channel: %v", err)
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	if _, err := ch.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(ch) // the server closes the channel after its echo
	if want := "cli:" + msg; string(b) != want {
		t.Fatalf("echo %q (%v), want %q", b, err, want)
	}
}
