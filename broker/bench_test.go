package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"switchyard/brokerstate"
	"switchyard/control"
	"switchyard/selection"
)

// benchRegions are the regions of benchBroker's servers and clients.
var benchRegions = []string{"eu", "us", "ap"}

// benchBroker has servers s0000.. in three regions (room for 3 times
// their share of nSessions), one gateway gw1 reaching all, users u0000..,
// and nSessions running sessions spread over servers and users, every
// node linked and reported. Its clock is *clock; its report interval is
// long enough that nothing goes stale while a benchmark moves the clock.
func benchBroker(tb testing.TB, nServers, nUsers, nSessions int, clock *time.Time) *Broker {
	tb.Helper()
	b := &Broker{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReportInterval: time.Hour,
		Now: func() time.Time { return *clock }}
	apps := []string{"top", "vi", "bash"}
	servers := map[string]ServerSpec{}
	for i := range nServers {
		servers[benchServer(i)] = ServerSpec{Addr: fmt.Sprintf("10.0.%d.%d:7101", i/250, i%250),
			Region: benchRegions[i%len(benchRegions)], Apps: apps, MaxSessions: 3*nSessions/nServers + 10}
	}
	b.SetCluster(Cluster{
		Servers:  servers,
		Gateways: map[string]GatewaySpec{"gw1": {Region: "eu", Address: "gw1:22"}},
		Apps:     map[string]bool{"top": true, "vi": true, "bash": true},
		Allowed:  func(user, app string) bool { return true },
		Policy:   selection.DefaultPolicy,
		RegionOf: func(ip netip.Addr) string { return benchRegions[int(ip.As4()[2])%len(benchRegions)] },
		Near:     map[string][]string{"eu": {"us", "ap"}, "us": {"eu", "ap"}, "ap": {"us", "eu"}},
	})
	on := make([][]control.SessionInfo, nServers)
	for i := range nSessions {
		s := i % nServers
		on[s] = append(on[s], control.SessionInfo{ID: benchSession(i), PID: 1000 + i, User: benchUser(i % nUsers),
			App: apps[i%len(apps)], Server: benchServer(s), Gateway: "gw1", Started: *clock, State: control.StateAttached})
	}
	for i := range nServers {
		b.linkUp(benchServer(i), +1)
		b.serverReport(benchServer(i), control.ServerReport{Load: float64(i%7) / 10, MaxSessions: servers[benchServer(i)].MaxSessions,
			Apps: apps, Sessions: on[i]})
	}
	b.linkUp("gw1", +1)
	b.gatewayReport("gw1", control.GatewayReport{Sessions: nSessions, Capacity: 0})
	return b
}

func benchServer(i int) string  { return fmt.Sprintf("s%04d", i) }
func benchUser(i int) string    { return fmt.Sprintf("u%04d", i) }
func benchSession(i int) string { return fmt.Sprintf("sess-%08d", i) }

// BenchmarkBrokerPlace10k places sessions at 100 a second (the clock moves
// 10ms an op) among 10,000 running ones, 5 per user, on 50 to 10,000
// servers: each op is one Place from gw1, the placed session reported
// started and the oldest running one reported ended, so the cluster stays
// at 10,000.
func BenchmarkBrokerPlace10k(b *testing.B) {
	const nSessions, nUsers = 10_000, 2_000
	for _, nServers := range []int{50, 200, 1000, 10_000} {
		b.Run(fmt.Sprintf("servers=%d", nServers), func(b *testing.B) {
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			placeLoop(b, benchBroker(b, nServers, nUsers, nSessions, &clock), &clock, nUsers, nSessions)
		})
	}
}

// BenchmarkBrokerPlaceHeavyUsers is BenchmarkBrokerPlace10k on 10,000
// servers with 5 users, each running 2,000 sessions on as many servers:
// a decision costs what a user's servers cost, not a scan of them.
func BenchmarkBrokerPlaceHeavyUsers(b *testing.B) {
	const nSessions, nUsers, nServers = 10_000, 5, 10_000
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	placeLoop(b, benchBroker(b, nServers, nUsers, nSessions, &clock), &clock, nUsers, nSessions)
}

// BenchmarkBrokerPlaceStore is BenchmarkBrokerPlace10k on 1000 servers
// without a Store and with a brokerstate.File written by Keep, as the
// daemon runs it: each op's session start and end are queued and
// written in batches.
func BenchmarkBrokerPlaceStore(b *testing.B) {
	const nSessions, nUsers, nServers = 10_000, 2_000, 1000
	for _, store := range []string{"none", "file"} {
		b.Run("store="+store, func(b *testing.B) {
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			br := benchBroker(b, nServers, nUsers, nSessions, &clock)
			if store == "file" {
				f, err := brokerstate.OpenFile(filepath.Join(b.TempDir(), brokerstate.FileName), br.Logger)
				if err != nil {
					b.Fatal(err)
				}
				br.Store = f
				ctx, cancel := context.WithCancel(context.Background())
				kept := make(chan struct{})
				go func() { defer close(kept); br.Keep(ctx) }()
				defer func() { cancel(); <-kept; f.Close() }()
			}
			placeLoop(b, br, &clock, nUsers, nSessions)
		})
	}
}

// placeLoop places a session, reports it started and the oldest ended,
// once per op, moving *clock 10ms.
func placeLoop(b *testing.B, br *Broker, clock *time.Time, nUsers, nSessions int) {
	ctx := context.Background()
	apps := []string{"top", "vi", "bash"}
	oldest, next := 0, nSessions
	b.ReportAllocs()
	for b.Loop() {
		*clock = clock.Add(10 * time.Millisecond)
		user := next % nUsers
		req := control.PlaceRequest{User: benchUser(user), App: apps[next%len(apps)], Gateway: "gw1",
			ClientAddr: fmt.Sprintf("10.1.%d.%d:40000", user%250, next%250)}
		pl, err := br.Place(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		br.sessionStarted(control.SessionInfo{ID: benchSession(next), PID: next, User: req.User, App: req.App,
			Server: pl.Server, Gateway: "gw1", Started: *clock, State: control.StateAttached})
		br.sessionEnded(control.SessionEnded{ID: benchSession(oldest)})
		oldest++
		next++
	}
}

// BenchmarkBrokerServerReport is one server's report of 200 unchanged
// sessions as it reaches the broker: JSON decoding and the update, with
// 10,000 sessions known over 50 servers.
func BenchmarkBrokerServerReport(b *testing.B) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	br := benchBroker(b, 50, 2_000, 10_000, &clock)
	h := br.handlerFor(benchServer(7))
	body, err := json.Marshal(control.ServerReport{Load: 0.3, MaxSessions: 610, Apps: []string{"top", "vi", "bash"},
		Sessions: sessionsKnownOn(br, benchServer(7))})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		clock = clock.Add(10 * time.Millisecond)
		if _, err := h(ctx, control.MethodServerReport, body); err != nil {
			b.Fatal(err)
		}
	}
}

// sessionsKnownOn lists the sessions b knows on server: what that server
// would report.
func sessionsKnownOn(b *Broker, server string) []control.SessionInfo {
	var out []control.SessionInfo
	for _, s := range b.Status().Sessions {
		if s.Server == server {
			out = append(out, s)
		}
	}
	return out
}
