package transport

import (
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/testutil"
)

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

// A connection that ends stops its keepalive's timer: nothing of the
// keepalive outlives the connection.
func TestKeepaliveStopsWithConnection(t *testing.T) {
	c := startServer(t, echoChannels)
	raw, err := net.Dial("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	ac := &AliveConn{Conn: raw}
	cfg := &ssh.ClientConfig{Config: algorithms(), User: "cli", Auth: []ssh.AuthMethod{ssh.PublicKeys(c.cli)},
		HostKeyCallback: ssh.FixedHostKey(c.srv.PublicKey()), HostKeyAlgorithms: hostAlgos}
	sc, chans, reqs, err := ssh.NewClientConn(ac, c.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	StartKeepalive(client, ac, time.Hour, 3, func() { t.Error("gave up on a connection that was closed") })
	timer := ac.timer.Load()
	if timer == nil {
		t.Fatal("no keepalive timer was started")
	}
	client.Close()
	client.Wait()
	if timer.Stop() {
		t.Fatal("the keepalive timer was still running after the connection closed")
	}
}

// The schedule gives up after a silence of between max and max+½
// intervals: asks+1 to asks+2 ticks.
func TestKeepaliveSchedule(t *testing.T) {
	for _, tt := range []struct {
		interval time.Duration
		max      int
	}{{15 * time.Second, 3}, {5 * time.Second, 3}, {2 * time.Second, 2}, {time.Second, 1}} {
		tick, asks := schedule(tt.interval, tt.max)
		earliest, latest := time.Duration(asks+1)*tick, time.Duration(asks+2)*tick
		want := time.Duration(tt.max) * tt.interval
		if earliest != want || latest != want+tt.interval/2 {
			t.Errorf("%v × %d: gives up after %v to %v of silence, want %v to %v",
				tt.interval, tt.max, earliest, latest, want, want+tt.interval/2)
		}
	}
}
