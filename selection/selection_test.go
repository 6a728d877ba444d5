package selection

import (
	"errors"
	"strings"
	"testing"
)

func TestLeastSessions(t *testing.T) {
	all := []string{"top", "cat"}
	tests := []struct {
		name    string
		servers []Server
		want    string // "" means ErrNoServer
		reason  string // substring of the reason or error
	}{
		{"fewest sessions wins", []Server{
			{Name: "s1", Healthy: true, Apps: all, Sessions: 3, Max: 10},
			{Name: "s2", Healthy: true, Apps: all, Sessions: 1, Max: 10},
		}, "s2", "fewest sessions (1/10)"},
		{"unhealthy excluded", []Server{
			{Name: "s1", Healthy: false, Apps: all},
			{Name: "s2", Healthy: true, Apps: all, Sessions: 5},
		}, "s2", "s1 unhealthy"},
		{"draining excluded", []Server{
			{Name: "s1", Healthy: true, Draining: true, Apps: all},
			{Name: "s2", Healthy: true, Apps: all, Sessions: 5},
		}, "s2", "s1 draining"},
		{"app not offered", []Server{
			{Name: "s1", Healthy: true, Apps: []string{"cat"}},
			{Name: "s2", Healthy: true, Apps: all, Sessions: 5},
		}, "s2", "s1 does not offer top"},
		{"full excluded", []Server{
			{Name: "s1", Healthy: true, Apps: all, Sessions: 2, Max: 2},
			{Name: "s2", Healthy: true, Apps: all, Sessions: 5, Max: 9},
		}, "s2", "s1 full (2/2)"},
		{"nothing eligible", []Server{
			{Name: "s1", Healthy: false, Apps: all},
			{Name: "s2", Healthy: true, Apps: []string{"cat"}},
		}, "", "s1 unhealthy, s2 does not offer top"},
		{"no servers", nil, "", "no servers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := LeastSessions(Request{User: "alice", App: "top"}, tt.servers)
			if tt.want == "" {
				if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("got %v, %v; want ErrNoServer mentioning %q", d, err, tt.reason)
				}
				return
			}
			if err != nil || d.Server != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got %+v, %v; want %s with reason containing %q", d, err, tt.want, tt.reason)
			}
		})
	}
}

func TestTiesAreDeterministicAndSpread(t *testing.T) {
	servers := []Server{{Name: "s1", Healthy: true, Apps: []string{"a"}}, {Name: "s2", Healthy: true, Apps: []string{"a"}}}
	count := map[string]int{}
	for seed := range uint64(1000) {
		d1, _ := LeastSessions(Request{App: "a", Seed: seed}, servers)
		d2, _ := LeastSessions(Request{App: "a", Seed: seed}, servers)
		if d1 != d2 {
			t.Fatalf("seed %d: %v then %v", seed, d1, d2)
		}
		count[d1.Server]++
	}
	if count["s1"] < 400 || count["s2"] < 400 {
		t.Fatalf("ties are biased: %v", count)
	}
}

func BenchmarkLeastSessions10k(b *testing.B) {
	servers := make([]Server, 10000)
	for i := range servers {
		servers[i] = Server{Name: "s" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)), Healthy: i%7 != 0, Apps: []string{"top", "cat"}, Sessions: i % 50, Max: 100}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := LeastSessions(Request{App: "cat", Seed: uint64(i)}, servers); err != nil {
			b.Fatal(err)
		}
	}
}
