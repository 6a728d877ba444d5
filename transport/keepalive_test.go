package transport

import (
	"testing"
	"time"

	"switchyard/internal/testutil"
)

// Dial keeps its connections with a keepalive: a peer cut off is given
// up on.

func TestKeepaliveClosesPartitionedConnection(t *testing.T) {
	old := aliveInterval
	aliveInterval = 50 * time.Millisecond
	t.Cleanup(func() { aliveInterval = old })
	c := startServer(t, echoChannels)
	addr, cut := testutil.Partition(t, c.addr)
	client, err := Dial(ctxT(t), Identity{"cli", c.cli}, "srv", addr, c.srv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// While the peer answers, an idle connection stays up across many
	// keepalive intervals.
	idle := time.NewTimer(10 * aliveInterval)
	done := make(chan struct{})
	go func() { client.Wait(); close(done) }()
	select {
	case <-done:
		t.Fatal("a healthy idle connection was closed by its keepalive")
	case <-idle.C:
	}
	cut()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a partitioned connection was not closed")
	}
}
