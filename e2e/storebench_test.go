package e2e

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/internal/etcdtest"
)

// storeClusters runs bench on a cluster whose lone broker keeps its state
// in a file (sub-benchmark "file", the default) and on one whose broker
// keeps it in a three-member etcd on loopback ("etcd"), in one run.
func storeClusters(b *testing.B, opts ClusterOptions, bench func(*testing.B, *Cluster)) {
	b.Run("file", func(b *testing.B) { bench(b, NewCluster(b, opts)) })
	b.Run("etcd", func(b *testing.B) {
		e := etcdtest.Start(b, 3)
		o := opts
		o.Extra += fmt.Sprintf("[etcd]\nendpoints = [\"%s\"]\n", strings.Join(e.Endpoints(), `", "`))
		c := NewCluster(b, o)
		c.Eventually("the broker to lead", func() bool {
			st, err := c.tryStatus()
			return err == nil && st.HA != nil && st.HA.Leading
		})
		bench(b, c)
	})
}

// BenchmarkPlaceRoundTrip is one selection request gateway→broker→gateway
// over the real control link on loopback, with the broker's state in a
// file and in etcd.
func BenchmarkPlaceRoundTrip(b *testing.B) {
	storeClusters(b, ClusterOptions{Servers: []string{"s1", "s2"}}, benchPlaceRoundTrip)
}

func benchPlaceRoundTrip(b *testing.B, c *Cluster) {
	c.quiet.Store(true) // placement log lines would swamp the benchmark output
	p := c.asGateway(b)
	ctx := context.Background()
	req := control.PlaceRequest{User: "alice", App: "cat", ClientAddr: "127.0.0.1:5000", Gateway: "gw1"}
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		var pl control.Placement
		if err := p.Call(ctx, control.MethodPlace, req, &pl); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		// Tell the broker the session came and went, as a gateway does, or
		// the placements pile up against the servers' capacity.
		id := "bench-" + strconv.Itoa(len(lat))
		p.Notify(ctx, control.MethodSessionStarted, control.SessionInfo{ID: id, Server: pl.Server, User: "alice", App: "cat"})
		p.Notify(ctx, control.MethodSessionEnded, control.SessionEnded{ID: id, Server: pl.Server})
	}
	reportPercentiles(b, lat, time.Microsecond, "us")
}

// BenchmarkLoginSetup times a whole login (TCP, handshake, key auth,
// placement, spawn) until the first byte of the app's output, with the
// broker's state in a file and in etcd.
func BenchmarkLoginSetup(b *testing.B) {
	storeClusters(b, ClusterOptions{Servers: []string{"s1"}}, benchLoginSetup)
}

// BenchmarkLoginSetupAudit is BenchmarkLoginSetup (state in a file) with
// the audit trail in its files, the default, and off: what the audit
// costs a login (about ten events on three nodes).
func BenchmarkLoginSetupAudit(b *testing.B) {
	for _, sink := range []string{"file", "off"} {
		b.Run(sink, func(b *testing.B) {
			benchLoginSetup(b, NewCluster(b, ClusterOptions{Servers: []string{"s1"}, Extra: "[audit]\nsink = \"" + sink + "\"\n"}))
		})
	}
}

func benchLoginSetup(b *testing.B, c *Cluster) {
	c.quiet.Store(true)
	var lat []time.Duration
	first := make([]byte, 1)
	for b.Loop() {
		start := time.Now()
		client, err := c.Dial("gw1", "alice", c.Alice)
		if err != nil {
			b.Fatal(err)
		}
		s, _, stdout := openSession(b, client, "echo ready", false)
		if _, err := io.ReadFull(stdout, first); err != nil {
			b.Fatalf("first byte: %v", err)
		}
		lat = append(lat, time.Since(start))
		io.Copy(io.Discard, stdout)
		s.Wait()
		client.Close()
	}
	reportPercentiles(b, lat, time.Millisecond, "ms")
}
