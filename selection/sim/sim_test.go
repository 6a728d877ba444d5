package sim

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// small is a workload that runs in a fraction of a second.
func small(seed uint64) Config {
	return Config{Seed: seed, Servers: 50, Sessions: 60000, Duration: 3 * time.Hour}
}

// claims is what the policy must deliver against the baselines on one
// workload family, over several seeds so that one lucky workload cannot
// pass it: balance within slack of least-connections (the best
// balancer), no more servers 95% full than least-connections, fewer
// servers past their cores than every baseline (or none where no
// baseline has any), and clearly more sessions local and beside the
// user's others than any baseline.
func claims(t *testing.T, workload string, slack float64, seeds ...uint64) {
	for _, seed := range seeds {
		c := small(seed)
		c.Workload = workload
		s, err := Run(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d\n%s", seed, s.Markdown())
		ours, lc := s.Results[0], s.Results[3]
		if !strings.HasPrefix(lc.Policy, "least-connections") {
			t.Fatalf("results out of order: %s", lc.Policy)
		}
		if ours.Imbalance > (1+slack)*lc.Imbalance {
			t.Errorf("%s seed %d: imbalance %.3f, more than %.0f%% above least-connections' %.3f", workload, seed, ours.Imbalance, 100*slack, lc.Imbalance)
		}
		if ours.Full > lc.Full {
			t.Errorf("%s seed %d: %.4f of servers 95%% full, least-connections %.4f", workload, seed, ours.Full, lc.Full)
		}
		for _, b := range s.Results[1:] {
			if ours.CPUOver >= b.CPUOver && (ours.CPUOver > 0 || b.CPUOver > 0) {
				t.Errorf("%s seed %d: %.4f of servers past their cores, %s %.4f", workload, seed, ours.CPUOver, b.Policy, b.CPUOver)
			}
			if ours.Local < b.Local+0.3 {
				t.Errorf("%s seed %d: local share %.3f not clearly above %s's %.3f", workload, seed, ours.Local, b.Policy, b.Local)
			}
			if ours.Affinity < b.Affinity+0.1 {
				t.Errorf("%s seed %d: affinity share %.3f not clearly above %s's %.3f", workload, seed, ours.Affinity, b.Policy, b.Affinity)
			}
		}
		for _, r := range s.Results {
			if r.MeanUtil < 0.6 || r.MeanUtil > 0.8 {
				t.Errorf("%s seed %d: %s mean utilisation %.3f outside the 60-80%% the workload aims at", workload, seed, r.Policy, r.MeanUtil)
			}
			if r.Placed == 0 || r.Returning == 0 || r.NoRoom > 0 {
				t.Errorf("%s seed %d: %s placed %d, returning %d, no room %d", workload, seed, r.Policy, r.Placed, r.Returning, r.NoRoom)
			}
		}
	}
}

// TestClaims checks the claims on the planned family: balance within 5%
// of least-connections.
func TestClaims(t *testing.T) { claims(t, WorkloadPlanned, 0.05, 1, 2, 3) }

// TestClaimsSkewed checks the claims on the skewed family: balance within
// 10% of least-connections.
func TestClaimsSkewed(t *testing.T) { claims(t, WorkloadSkewed, 0.10, 1, 2, 3, 4) }

// TestSkewedWorkload checks that the skewed family has what it promises:
// a region short of capacity by 15 points or more of demand, servers of
// different densities, apps on some servers only, a flash crowd between
// two reports, servers dying and draining, users with hundreds of
// sessions.
func TestSkewedWorkload(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		c := small(seed)
		c.Workload = WorkloadSkewed
		c = c.withDefaults()
		w := newWorkload(c)
		capacity := make([]float64, len(w.regions))
		density := map[float64]bool{}
		offered := map[string]int{}
		for _, s := range w.servers {
			capacity[s.region] += float64(s.max) / float64(w.capacity)
			density[math.Round(float64(s.max)/s.cpus)] = true
			for _, a := range s.apps {
				offered[a]++
			}
		}
		demand := observedShares(c, w.sessions, len(w.regions))
		gap := 0.0
		for g := range w.regions {
			gap = max(gap, demand[g]-capacity[g])
		}
		if gap < 0.15 {
			t.Errorf("seed %d: demand %v, capacity %v: no region 15 points short", seed, demand, capacity)
		}
		if len(density) < 3 || offered["gpu"] >= len(w.servers)/2 || offered["shell"] != len(w.servers) {
			t.Errorf("seed %d: densities %v, apps offered %v", seed, density, offered)
		}
		// The flash crowd: the second with the most requests holds a
		// tenth of the capacity or more, and no report instant.
		most, from := 0, 0
		for i, j := 0, 0; j < len(w.sessions); j++ {
			for w.sessions[j].at-w.sessions[i].at >= time.Second {
				i++
			}
			if j-i+1 > most {
				most, from = j-i+1, i
			}
		}
		first, last := w.sessions[from].at, w.sessions[from+most-1].at
		if most < w.capacity/10 || first/c.Report != last/c.Report {
			t.Errorf("seed %d: %d requests from %v to %v", seed, most, first, last)
		}
		kinds := map[eventKind]int{}
		for _, e := range w.events {
			kinds[e.kind]++
		}
		if kinds[die] == 0 || kinds[drain] == 0 || kinds[revive] != kinds[die] || kinds[resume] != kinds[drain] {
			t.Errorf("seed %d: events %v", seed, kinds)
		}
		held := map[int32]int{}
		for _, s := range w.sessions {
			if s.life == c.Duration {
				held[s.user]++
			}
		}
		if len(held) < powerUsers {
			t.Errorf("seed %d: users holding sessions all along: %v", seed, held)
		}
		for u, n := range held {
			if n < 100 {
				t.Errorf("seed %d: user %d holds only %d sessions", seed, u, n)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	c := small(7)
	c.Sessions, c.Servers = 5000, 12
	a, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Run(c)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same config, different results:\n%s\n%s", a.Markdown(), b.Markdown())
	}
	c.Seed++
	if d, _ := Run(c); reflect.DeepEqual(a.Results, d.Results) {
		t.Fatal("another seed gave the same results")
	}
}

// TestOverload checks rejections are counted when demand exceeds capacity.
func TestOverload(t *testing.T) {
	c := small(1)
	c.Sessions, c.Utilisation = 60000, 1.3
	s, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Results {
		if r.NoRoom == 0 || r.NoServer != 0 || r.Placed+r.NoRoom != r.Requests {
			t.Errorf("%s: requests %d, placed %d, no room %d, no server %d", r.Policy, r.Requests, r.Placed, r.NoRoom, r.NoServer)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Servers: 2}, {Warmup: 5 * time.Hour}, {Provision: "guess"}, {Utilisation: -1}} {
		if _, err := Run(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// TestCPUAtCoresIsNotOver checks the CPU sum a server is judged by: 3
// sessions at 0.5 CPU and 10 at 0.05 on 2 cores use exactly their cores
// (a float sum of the same comes out past them), and every CPU a session
// of either family uses is its exact count of thousandths.
func TestCPUAtCoresIsNotOver(t *testing.T) {
	if sum := 3*milli(0.5) + 10*milli(0.05); sum != 2000 {
		t.Fatalf("3 at 0.5 and 10 at 0.05 sum to %d thousandths, want 2000", sum)
	}
	for _, c := range []struct {
		cpu  float32
		want int64
	}{{0.03, 30}, {0.05, 50}, {0.1, 100}, {0.4, 400}, {0.5, 500}, {0.8, 800}} {
		if got := milli(c.cpu); got != c.want {
			t.Errorf("milli(%v) = %d, want %d", c.cpu, got, c.want)
		}
	}
}
