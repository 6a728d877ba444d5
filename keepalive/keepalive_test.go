package keepalive

import (
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// dial returns an SSH client over a Conn to a loopback server that
// accepts no channels, through addr if not "" (a testutil.Partition in
// front of the server).
func dial(t *testing.T, through func(server string) string) (*ssh.Client, *Conn) {
	t.Helper()
	host := sshtest.NewSigner(t)
	cfg := &ssh.ServerConfig{NoClientAuth: true} // test only
	cfg.AddHostKey(host)
	addr := sshtest.Serve(t, cfg, func(nc ssh.NewChannel) { nc.Reject(ssh.Prohibited, "no channels") })
	if through != nil {
		addr = through(addr)
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ac := &Conn{Conn: raw}
	sc, chans, reqs, err := ssh.NewClientConn(ac, addr, &ssh.ClientConfig{User: "test",
		HostKeyCallback: ssh.FixedHostKey(host.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	t.Cleanup(func() { client.Close() })
	return client, ac
}

// Run gives up on a peer cut off without a FIN or RST, closes the
// connection and says so.
func TestRunGivesUpOnPartitionedPeer(t *testing.T) {
	var cut func()
	client, ac := dial(t, func(server string) string {
		addr, c := testutil.Partition(t, server)
		cut = c
		return addr
	})
	gaveUp := make(chan bool, 1)
	go func() { gaveUp <- Run(client, ac, 20*time.Millisecond, 2) }()
	if _, _, err := client.SendRequest("ping@test", true, nil); err != nil {
		t.Fatalf("the connection did not work before the cut: %v", err)
	}
	cut()
	if !testutil.Recv(t, gaveUp, 10*time.Second, "Run to give up") {
		t.Fatal("Run returned without reporting that it gave up")
	}
	if _, _, err := client.SendRequest("ping@test", true, nil); err == nil {
		t.Fatal("the connection still works after Run gave up on it")
	}
}

// Run on a connection closed by its own end reports that it did not
// give up.
func TestRunEndsWithConnection(t *testing.T) {
	client, ac := dial(t, nil)
	gaveUp := make(chan bool, 1)
	go func() { gaveUp <- Run(client, ac, time.Hour, 3) }()
	client.Close()
	if testutil.Recv(t, gaveUp, 10*time.Second, "Run to return") {
		t.Fatal("Run reported giving up on a connection its own end closed")
	}
}

// A connection that ends stops its keepalive's timer: nothing of the
// keepalive outlives the connection.
func TestStartStopsWithConnection(t *testing.T) {
	client, ac := dial(t, nil)
	Start(client, ac, time.Hour, 3, func() { t.Error("gave up on a connection that was closed") })
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
func TestSchedule(t *testing.T) {
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
