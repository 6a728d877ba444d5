package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// brokerSet starts one control server per name; each places only while
// leader holds its name, and otherwise answers CodeNotLeader naming the
// leader (and counts the refusal in refused). It returns Brokers linked
// to all of them.
func brokerSet(t *testing.T, leader *atomic.Value, refused *atomic.Int32, names ...string) *Brokers {
	t.Helper()
	b := &Brokers{Links: map[string]*Link{}, Order: names, LeaderWait: 5 * time.Second}
	for _, name := range names {
		c := startServer(t, func(ctx context.Context, node string, conn *ssh.ServerConn, chans <-chan ssh.NewChannel) {
			for nc := range chans {
				ch, reqs, _ := nc.Accept()
				go ssh.DiscardRequests(reqs)
				p := control.NewPeer(ch, func(ctx context.Context, m string, body json.RawMessage) (any, error) {
					if l := leader.Load().(string); l != name {
						refused.Add(1)
						return nil, control.NewError(control.CodeNotLeader, l)
					}
					return control.Placement{Server: name}, nil
				}, nil)
				go p.Serve(ctx)
			}
		})
		b.Links[name] = &Link{Identity: Identity{"cli", c.cli}, Peer: "srv", Addr: func() string { return c.addr }, Key: c.keys}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

func placeOn(t *testing.T, b *Brokers) (string, error) {
	t.Helper()
	var pl control.Placement
	err := b.Call(ctxT(t), control.MethodPlace, control.PlaceRequest{}, &pl)
	return pl.Server, err
}

// Calls go to the leader, wherever the search starts, and follow it when
// it changes, also through a time when none leads.
func TestBrokersFollowTheLeader(t *testing.T) {
	var leader atomic.Value
	var refused atomic.Int32
	leader.Store("b3")
	b := brokerSet(t, &leader, &refused, "b1", "b2", "b3")
	if got, err := placeOn(t, b); err != nil || got != "b3" || b.Leader() != "b3" {
		t.Fatalf("placed on %q (%v), leader %q; want b3", got, err, b.Leader())
	}
	// An election under way: nobody places until every broker has refused
	// the call twice over; then b1 leads. Call must wait it out.
	leader.Store("")
	refused.Store(0)
	go func() {
		for refused.Load() < 6 {
			runtime.Gosched()
		}
		leader.Store("b1")
	}()
	if got, err := placeOn(t, b); err != nil || got != "b1" {
		t.Fatalf("during an election: placed on %q (%v), want b1 once it leads", got, err)
	}
	if b.Leader() != "b1" {
		t.Fatalf("leader %q, want b1", b.Leader())
	}
}

// With no leader at all, Call gives up after LeaderWait with ErrNoLeader;
// a lone broker that is down fails at once.
func TestBrokersNoLeader(t *testing.T) {
	var leader atomic.Value
	var refused atomic.Int32
	leader.Store("")
	b := brokerSet(t, &leader, &refused, "b1", "b2")
	b.LeaderWait = 200 * time.Millisecond
	if _, err := placeOn(t, b); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("got %v, want ErrNoLeader", err)
	}

	lone := &Brokers{Links: map[string]*Link{}, Order: []string{"broker"}, LeaderWait: time.Hour}
	key := sshtest.NewSigner(t)
	lone.Links["broker"] = &Link{Identity: Identity{"cli", sshtest.NewSigner(t)}, Peer: "broker", Addr: func() string { return "127.0.0.1:1" },
		Key: func(string) (ssh.PublicKey, error) { return key.PublicKey(), nil }}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	go lone.Run(ctx)
	if _, err := placeOn(t, lone); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("lone broker down: got %v, want ErrUnavailable at once", err)
	}
}

// placingBroker serves placements on addr ("127.0.0.1:0" for any port)
// with key, to cli; it returns the server and the address it listens on.
func placingBroker(t *testing.T, addr string, key, cli ssh.Signer) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Signer: key,
		Authorize: func(k ssh.PublicKey) (string, bool) {
			return "cli", string(k.Marshal()) == string(cli.PublicKey().Marshal())
		},
		Handler: func(ctx context.Context, node string, conn *ssh.ServerConn, chans <-chan ssh.NewChannel) {
			for nc := range chans {
				ch, reqs, _ := nc.Accept()
				go ssh.DiscardRequests(reqs)
				go control.NewPeer(ch, func(context.Context, string, json.RawMessage) (any, error) {
					return control.Placement{Server: "s1"}, nil
				}, nil).Serve(ctx)
			}
		}}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

// A lone broker that restarts is waited out: a call made while it is
// down, shortly after its link dropped, succeeds once it is back (before,
// it failed at once).
func TestLoneBrokerRestartIsWaitedOut(t *testing.T) {
	key, cli := sshtest.NewSigner(t), sshtest.NewSigner(t)
	first, addr := placingBroker(t, "127.0.0.1:0", key, cli)
	link := &Link{Identity: Identity{"cli", cli}, Peer: "broker", Addr: func() string { return addr },
		Key: func(string) (ssh.PublicKey, error) { return key.PublicKey(), nil }}
	lone := &Brokers{Links: map[string]*Link{"broker": link}, Order: []string{"broker"}, LeaderWait: time.Minute}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	go lone.Run(ctx)
	if got, err := placeOn(t, lone); err != nil || got != "s1" {
		t.Fatalf("broker up: placed on %q, %v", got, err)
	}
	first.Close() // the broker goes down
	testutil.Eventually(t, 10*time.Second, "the link to notice", func() bool { return !link.LostAt().IsZero() })
	placed := make(chan error, 1)
	go func() { _, err := placeOn(t, lone); placed <- err }()
	placingBroker(t, addr, key, cli) // back, on the same address
	if err := testutil.Recv(t, placed, 30*time.Second, "the waiting call"); err != nil {
		t.Fatalf("the call made during the restart failed: %v", err)
	}
}
