package sim

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// small is a workload that runs in a fraction of a second.
func small(seed uint64) Config {
	return Config{Seed: seed, Servers: 50, Sessions: 60000, Duration: 3 * time.Hour}
}

// TestClaims checks what the policy must deliver against the baselines on
// the same workload: balance within 5% of least-connections (the best
// balancer), and clearly more sessions local and beside the user's others
// than any baseline. Three seeds, so one lucky workload cannot pass it.
func TestClaims(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		s, err := Run(small(seed))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d\n%s", seed, s.Markdown())
		ours, lc := s.Results[0], s.Results[3]
		if !strings.HasPrefix(lc.Policy, "least-connections") {
			t.Fatalf("results out of order: %s", lc.Policy)
		}
		if ours.Imbalance > 1.05*lc.Imbalance {
			t.Errorf("seed %d: imbalance %.3f, more than 5%% above least-connections' %.3f", seed, ours.Imbalance, lc.Imbalance)
		}
		for _, b := range s.Results[1:] {
			if ours.Local < b.Local+0.3 {
				t.Errorf("seed %d: local share %.3f not clearly above %s's %.3f", seed, ours.Local, b.Policy, b.Local)
			}
			if ours.Affinity < b.Affinity+0.3 {
				t.Errorf("seed %d: affinity share %.3f not clearly above %s's %.3f", seed, ours.Affinity, b.Policy, b.Affinity)
			}
		}
		for _, r := range s.Results {
			if r.MeanUtil < 0.6 || r.MeanUtil > 0.8 {
				t.Errorf("seed %d: %s mean utilisation %.3f outside the 60-80%% the workload aims at", seed, r.Policy, r.MeanUtil)
			}
			if r.Placed == 0 || r.Returning == 0 {
				t.Errorf("seed %d: %s placed %d, returning %d", seed, r.Policy, r.Placed, r.Returning)
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
