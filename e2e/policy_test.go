package e2e

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"switchyard/config"
	"switchyard/control"
	"switchyard/transport"
)

// asGateway opens a control link to the cluster's broker with gateway
// gw1's node key, as the gateway itself does.
func (c *Cluster) asGateway(tb testing.TB) *control.Peer {
	tb.Helper()
	signer, err := config.EnsureKey(c.cfg.NodeSignerPath("gw1"))
	if err != nil {
		tb.Fatal(err)
	}
	l := &transport.Link{Identity: transport.Identity{Name: "gw1", Signer: signer}, Peer: "broker", Logger: slog.New(slog.DiscardHandler),
		Addr: func() string { return c.cfg.Broker.Listen }, Key: c.cfg.NodeKey}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	for {
		p, err := l.Current(wait)
		if err == nil {
			return p
		}
		if wait.Err() != nil {
			tb.Fatalf("no control link to the broker: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNoServerOffersTheApp(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	c.editConfig("[server.s1]", "[server.s1]\napps = [\"cat\"]")
	c.Reload()
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c.Eventually("the reload to reach the broker", func() bool {
		r := Open(t, client, "pid", "", 0, 0)
		status, _ := r.Wait()
		_, errOut := r.Output()
		return status == 69 && errOut == "switchyard: no server available: no server offers app \"pid\"\n"
	})
}

func TestRegionHintAndCIDRsSteerPlacement(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1", "s2"}})
	c.editConfig("[server.s1]", "[server.s1]\nregion = \"near\"")
	c.editConfig("[server.s2]", "[server.s2]\nregion = \"far\"")
	// Load is weighed lightly: every test server reads the same busy
	// host's CPU, which must not outweigh the regions under test.
	c.editConfig("[group.staff]", "[policy]\nload_weight = 0.001\n[region.near]\ncidrs = [\"127.0.0.0/8\"]\nnear = [\"far\"]\n[region.far]\ncidrs = [\"192.0.2.0/24\"]\n[group.staff]")
	c.Reload()
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	place := func(hint string) string {
		s, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if hint != "" {
			if err := s.Setenv("SWITCHYARD_REGION", hint); err != nil {
				t.Fatalf("setenv: %v", err)
			}
		}
		if _, err := s.Output("status"); err == nil {
			t.Fatal("app status should exit 7")
		}
		d := c.Status().Decisions
		return d[len(d)-1].Server + " " + d[len(d)-1].Reason
	}
	c.Eventually("the regions to be loaded", func() bool { return strings.Contains(place(""), "client in near") })
	for range 3 { // the loopback client is in region near: s1, whatever the affinity
		if got := place(""); !strings.HasPrefix(got, "s1 client in near") {
			t.Fatalf("loopback client placed %q, want s1 (region near)", got)
		}
	}
	if got := place("far"); !strings.HasPrefix(got, "s2 client in far") {
		t.Fatalf("client naming region far placed %q, want s2", got)
	}
}
