package selection

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// srv is a healthy server in region offering shell and db, with sessions of
// max in use.
func srv(name, region string, sessions, max int) Server {
	return Server{Name: name, Region: region, Healthy: true, Apps: []string{"shell", "db"}, Sessions: sessions, Max: max}
}

func with(s Server, f func(*Server)) Server { f(&s); return s }

func TestPlace(t *testing.T) {
	eu := Request{User: "ann", App: "db", ClientRegion: "eu", Near: []string{"us", "ap"}}
	back := func(r Request, placed ...Placed) Request { r.Existing = placed; return r }
	tests := []struct {
		name    string
		policy  Policy
		req     Request
		servers []Server
		want    string
		reason  string // substring of Decision.Reason
	}{
		// Each criterion alone.
		{"least utilised wins", DefaultPolicy, eu, []Server{srv("a", "eu", 30, 100), srv("b", "eu", 20, 100)}, "b", "b: score"},
		{"utilisation is a ratio of Max", DefaultPolicy, eu, []Server{srv("big", "eu", 40, 200), srv("small", "eu", 15, 50)}, "big", "40/200 sessions"},
		{"cpu load counts", DefaultPolicy, eu, []Server{
			with(srv("hot", "eu", 10, 100), func(s *Server) { s.Load = 0.9 }), srv("cool", "eu", 30, 100)}, "cool", ""},
		{"unlimited server uses cpu load only", DefaultPolicy, eu, []Server{
			with(srv("inf", "eu", 500, 0), func(s *Server) { s.Load = 0.1 }), srv("cap", "eu", 20, 100)}, "inf", "500/unlimited sessions, cpu 0.10"},
		{"unhealthy excluded", DefaultPolicy, eu, []Server{
			with(srv("sick", "eu", 0, 100), func(s *Server) { s.Healthy = false }), srv("ok", "eu", 90, 100)}, "ok", "1 unhealthy (sick)"},
		{"draining excluded", DefaultPolicy, eu, []Server{
			with(srv("drain", "eu", 0, 100), func(s *Server) { s.Draining = true }), srv("ok", "eu", 90, 100)}, "ok", "1 draining (drain)"},
		{"full excluded", DefaultPolicy, eu, []Server{srv("full", "eu", 10, 10), srv("ok", "us", 90, 100)}, "ok", "1 full (full)"},
		{"app not offered excluded", DefaultPolicy, eu, []Server{
			with(srv("web", "eu", 0, 100), func(s *Server) { s.Apps = []string{"shell"} }), srv("ok", "ap", 90, 100)}, "ok", "ok: score"},
		{"same region beats remote at equal load", DefaultPolicy, eu, []Server{srv("sa", "sa", 10, 100), srv("eu", "eu", 10, 100)}, "eu", "same region eu"},
		{"near beats remote at equal load", DefaultPolicy, eu, []Server{srv("sa", "sa", 10, 100), srv("us", "us", 10, 100)}, "us", "near region us"},
		{"near list order: first near beats second", DefaultPolicy, eu, []Server{srv("ap", "ap", 10, 100), srv("us", "us", 10, 100)}, "us", ""},
		{"near list order: second near beats remote", DefaultPolicy, eu, []Server{srv("sa", "sa", 10, 100), srv("ap", "ap", 10, 100)}, "ap", ""},
		{"near list order is the request's", DefaultPolicy, with2(eu, []string{"ap", "us"}), []Server{srv("us", "us", 10, 100), srv("ap", "ap", 10, 100)}, "ap", ""},
		{"unknown client region: locality ignored", DefaultPolicy, with2(eu, nil, ""), []Server{srv("eu", "eu", 30, 100), srv("sa", "sa", 20, 100)}, "sa", "client region unknown"},
		{"affinity groups a returning user", DefaultPolicy, back(eu, Placed{"mine", "shell"}), []Server{srv("other", "eu", 40, 100), srv("mine", "eu", 41, 100)}, "mine", "user has a session here"},
		{"affinity off with AffinityNone", Policy{}, back(eu, Placed{"mine", "shell"}), []Server{srv("other", "eu", 40, 100), srv("mine", "eu", 41, 100)}, "other", "affinity 0.000 (off)"},
		{"user+app affinity ignores other apps", Policy{Affinity: AffinityUserApp}, back(eu, Placed{"mine", "shell"}), []Server{srv("other", "eu", 40, 100), srv("mine", "eu", 41, 100)}, "other", ""},
		{"user+app affinity follows the same app", Policy{Affinity: AffinityUserApp}, back(eu, Placed{"mine", "db"}), []Server{srv("other", "eu", 40, 100), srv("mine", "eu", 41, 100)}, "mine", "user runs db here"},

		// Criteria in conflict.
		{"local not heavily loaded beats idle remote", DefaultPolicy, eu, []Server{srv("sa", "sa", 0, 100), srv("eu", "eu", 50, 100)}, "eu", ""},
		{"full region spills to idle remote", DefaultPolicy, eu, []Server{srv("eu1", "eu", 100, 100), srv("eu2", "eu", 50, 50), srv("sa", "sa", 0, 100)}, "sa", "of 3 servers: 2 full (eu1, eu2)"},
		{"nearly full region spills to near", DefaultPolicy, eu, []Server{srv("eu", "eu", 95, 100), srv("us", "us", 60, 100)}, "us", ""},
		{"nearly full region: near before remote", DefaultPolicy, eu, []Server{srv("eu", "eu", 97, 100), srv("us", "us", 55, 100), srv("sa", "sa", 50, 100)}, "us", ""},
		{"cpu-overloaded local spills", DefaultPolicy, eu, []Server{with(srv("eu", "eu", 10, 100), func(s *Server) { s.Load = 1.5 }), srv("us", "us", 40, 100)}, "us", ""},
		{"overload wins over affinity", DefaultPolicy, back(eu, Placed{"mine", "shell"}), []Server{srv("mine", "eu", 90, 100), srv("other", "eu", 30, 100)}, "other", ""},
		{"affinity never overrides capacity", DefaultPolicy, back(eu, Placed{"mine", "shell"}), []Server{srv("mine", "eu", 100, 100), srv("other", "eu", 99, 100)}, "other", "1 full (mine)"},
		{"affinity does not pull a user out of their region", DefaultPolicy, back(eu, Placed{"away", "db"}), []Server{srv("away", "us", 40, 100), srv("home", "eu", 40, 100)}, "home", ""},
		{"affinity to an unhealthy server is moot", DefaultPolicy, back(eu, Placed{"mine", "db"}), []Server{with(srv("mine", "eu", 0, 100), func(s *Server) { s.Healthy = false }), srv("other", "eu", 60, 100)}, "other", "1 unhealthy (mine)"},
		{"a server far past its cores loses to a busy near one", DefaultPolicy, eu, []Server{
			with(srv("eu", "eu", 10, 100), func(s *Server) { s.Load = 13 }), with(srv("us", "us", 60, 100), func(s *Server) { s.Load = 0.7 })}, "us", ""},
		{"overload is not capped: the less overloaded wins", DefaultPolicy, eu, []Server{
			with(srv("eu1", "eu", 10, 100), func(s *Server) { s.Load = 3 }), with(srv("eu2", "eu", 10, 100), func(s *Server) { s.Load = 2 })}, "eu2", ""},
		{"an unreadable load is busier than any overload", DefaultPolicy, eu, []Server{
			with(srv("eu1", "eu", 10, 100), func(s *Server) { s.Load = math.NaN() }), with(srv("eu2", "eu", 10, 100), func(s *Server) { s.Load = 50 })}, "eu2", ""},
		{"an unreadable load still takes a session if nothing else can", DefaultPolicy, eu, []Server{
			with(srv("eu1", "eu", 10, 100), func(s *Server) { s.Load = math.NaN() })}, "eu1", ""},
		{"past the fill level a region gives way to a near one with headroom", DefaultPolicy, eu,
			filled(60, srv("eu", "eu", 85, 100), srv("us", "us", 60, 100)), "us", ""},
		{"the reason says when the chosen server is past the fill level", DefaultPolicy, eu, filled(60, srv("eu", "eu", 85, 100)), "eu", "85/100 sessions, cpu 0.00, past the fill level 0.65)"},
		{"below the fill level locality wins", DefaultPolicy, eu, filled(70, srv("eu", "eu", 69, 100), srv("us", "us", 50, 100)), "eu", ""},
		{"the session placed counts", DefaultPolicy, eu, filled(70, srv("eu", "eu", 70, 100), srv("us", "us", 50, 100)), "us", ""},
		{"a small server is as full as it would be", DefaultPolicy, eu, []Server{srv("small", "eu", 18, 20), srv("big", "eu", 183, 200)}, "big", ""},
		{"the fill level is at most SpillAt", Policy{SpillAt: 0.6}, eu, filled(70, srv("eu", "eu", 65, 100), srv("us", "us", 50, 100)), "us", ""},
		{"the fill level follows the mean", DefaultPolicy, eu, filled(70, srv("eu", "eu", 65, 100), srv("us", "us", 50, 100)), "eu", ""},
		{"locality wins on a quiet cluster", DefaultPolicy, eu, filled(10, srv("eu", "eu", 55, 100), srv("sa", "sa", 0, 100)), "eu", ""},
		{"the fill level ignores draining servers", DefaultPolicy, eu,
			append(filled(70, srv("eu", "eu", 69, 100), srv("us", "us", 50, 100)), with(srv("d", "eu", 0, 10000), func(s *Server) { s.Draining = true })), "eu", ""},
		{"weights change the answer: load only", Policy{Weights: Weights{Load: 1}}, eu, []Server{srv("eu", "eu", 50, 100), srv("sa", "sa", 0, 100)}, "sa", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.servers)
			d, err := tt.policy.Place(tt.req, tt.servers)
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			if d.Server != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got %s (%s)\nwant %s with reason containing %q", d.Server, d.Reason, tt.want, tt.reason)
			}
			if strings.ContainsAny(d.Reason, "\n\r") {
				t.Fatalf("reason is not one line: %q", d.Reason)
			}
			for i := range before {
				if !equalServer(before[i], tt.servers[i]) {
					t.Fatalf("Place modified servers[%d]: %+v -> %+v", i, before[i], tt.servers[i])
				}
			}
		})
	}
}

// filled returns servers after eight servers of 100 sessions in region
// ap, at pct of them, which offer no app anyone asks for: they set the
// cluster's mean fill.
func filled(pct int, servers ...Server) []Server {
	for i := range 8 {
		s := srv(fmt.Sprint("fill", i), "ap", pct, 100)
		s.Apps = []string{"none"}
		servers = append(servers, s)
	}
	return servers
}

// with2 returns r with the near list, and the client region if given.
func with2(r Request, near []string, client ...string) Request {
	r.Near = near
	if len(client) > 0 {
		r.ClientRegion = client[0]
	}
	return r
}

func equalServer(a, b Server) bool {
	return a.Name == b.Name && a.Region == b.Region && a.Healthy == b.Healthy && a.Draining == b.Draining &&
		slices.Equal(a.Apps, b.Apps) && a.Sessions == b.Sessions && a.Max == b.Max && (a.Load == b.Load || a.Load != a.Load && b.Load != b.Load)
}

func TestPlaceErrors(t *testing.T) {
	sick := func(s Server) Server { s.Healthy = false; return s }
	drain := func(s Server) Server { s.Draining = true; return s }
	shell := func(s Server) Server { s.Apps = []string{"shell"}; return s }
	tests := []struct {
		name    string
		servers []Server
		want    string
	}{
		{"no servers", nil, "no server available: no servers are known"},
		{"no server offers the app", []Server{shell(srv("a", "eu", 0, 9)), sick(shell(srv("b", "eu", 0, 9)))}, `no server available: no server offers app "db"`},
		{"all full", []Server{srv("a", "eu", 9, 9), srv("b", "us", 5, 5), srv("c", "us", 1, 1), shell(srv("d", "eu", 0, 9))}, `all 3 servers offering "db" are full`},
		{"all unhealthy", []Server{sick(srv("a", "eu", 0, 9)), sick(srv("b", "eu", 9, 9))}, `all 2 servers offering "db" are unhealthy`},
		{"the only one draining", []Server{drain(srv("a", "eu", 0, 9)), shell(srv("b", "eu", 0, 9))}, `the only server offering "db" (a) is draining`},
		{"mixed", []Server{sick(srv("a", "eu", 0, 9)), drain(srv("b", "eu", 0, 9)), srv("c", "eu", 9, 9), srv("d", "eu", 9, 9), srv("e", "eu", 9, 9)},
			`none of the 5 servers offering "db" can take it: 1 unhealthy (a), 1 draining (b), 3 full (c, d, ...)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DefaultPolicy.Place(Request{User: "ann", App: "db", ClientRegion: "eu"}, tt.servers)
			if !errors.Is(err, ErrNoServer) {
				t.Fatalf("got %+v, %v; want ErrNoServer", d, err)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q\nwant one line containing %q", err, tt.want)
			}
		})
	}
}

func TestReasonCountsAndNames(t *testing.T) {
	var servers []Server
	for i := range 10 {
		servers = append(servers, Server{Name: fmt.Sprintf("sick%d", i), Apps: []string{"db"}})
	}
	servers = append(servers, srv("d1", "eu", 0, 9), srv("full1", "eu", 9, 9), srv("ok", "eu", 3, 9))
	servers[10].Draining = true
	d, err := DefaultPolicy.Place(Request{App: "db", ClientRegion: "eu"}, servers)
	if err != nil {
		t.Fatal(err)
	}
	want := "ok: score 1.156 = locality 0.600 (same region eu) + affinity 0.000 + load 0.556 (3/9 sessions, cpu 0.00); " +
		"of 13 servers: 10 unhealthy (sick0, sick1, ...), 1 draining (d1), 1 full (full1)"
	if d.Reason != want {
		t.Fatalf("reason\n got %s\nwant %s", d.Reason, want)
	}
}

func TestTiesAreDeterministicAndSpread(t *testing.T) {
	// Four identical servers: every seed must give the same answer twice,
	// and across seeds each server must win about a quarter of the time,
	// whatever its name or position.
	servers := []Server{srv("a", "eu", 5, 10), srv("b", "eu", 5, 10), srv("zz", "eu", 5, 10), srv("m", "eu", 5, 10)}
	count := map[string]int{}
	for seed := range uint64(4000) {
		req := Request{App: "db", ClientRegion: "eu", Seed: seed}
		d1, _ := DefaultPolicy.Place(req, servers)
		d2, _ := DefaultPolicy.Place(req, servers)
		if d1 != d2 {
			t.Fatalf("seed %d: %v then %v", seed, d1, d2)
		}
		count[d1.Server]++
	}
	for _, s := range servers {
		if n := count[s.Name]; n < 850 || n > 1150 {
			t.Fatalf("ties are biased: %v", count)
		}
	}
	// Reversing the order does not change the choice for a given seed.
	rev := slices.Clone(servers)
	slices.Reverse(rev)
	for seed := range uint64(100) {
		req := Request{App: "db", Seed: seed}
		d1, _ := DefaultPolicy.Place(req, servers)
		d2, _ := DefaultPolicy.Place(req, rev)
		if d1.Server != d2.Server {
			t.Fatalf("seed %d: order changed the choice, %s vs %s", seed, d1.Server, d2.Server)
		}
	}
}

// TestTieHashSpreads checks the tie hash over names and seeds that are
// close, as the broker's are (server names that differ in a digit, seeds
// that count placements): each of 50 tied servers must win about one seed
// in 50, and the winner for one seed must say nothing of the next.
func TestTieHashSpreads(t *testing.T) {
	const servers, seeds = 50, 50000
	wins := make([]int, servers)
	same, last := 0, -1
	for seed := range uint64(seeds) {
		best, bestHash := -1, uint64(0)
		for i := range servers {
			if h := tieHashOf(fmt.Sprintf("srv-%05d", i), seed); best < 0 || h < bestHash {
				best, bestHash = i, h
			}
		}
		wins[best]++
		if best == last {
			same++
		}
		last = best
	}
	// 1,000 expected each, with a standard deviation of about 31.
	for i, n := range wins {
		if n < 850 || n > 1150 {
			t.Fatalf("srv-%05d wins %d of %d seeds: %v", i, n, seeds, wins)
		}
	}
	if same < 850 || same > 1150 {
		t.Fatalf("the same server wins two seeds in a row %d times of %d, want about %d", same, seeds, seeds/servers)
	}
}

// TestTieOfSameNames checks that servers of the same name, tied on the
// hash too, go to the first in the list, whatever the seed.
func TestTieOfSameNames(t *testing.T) {
	servers := []Server{srv("b", "eu", 5, 10), srv("a", "eu", 5, 10), srv("a", "eu", 5, 10), srv("a", "eu", 5, 10)}
	servers[2].Load, servers[3].Load = 0.01, 0.02 // below 5/10: no change to the score
	tab := NewTable(servers)
	for seed := range uint64(50) {
		req := Request{App: "db", ClientRegion: "eu", Seed: seed}
		want := "a"
		if tieHashOf("b", seed) < tieHashOf("a", seed) {
			want = "b"
		}
		d, err := DefaultPolicy.Place(req, servers)
		if err != nil || d.Server != want {
			t.Fatalf("seed %d: %+v, %v; want %s", seed, d, err, want)
		}
		if want == "a" && !strings.Contains(d.Reason, "5/10 sessions, cpu 0.00") {
			t.Fatalf("seed %d: chose a later a: %s", seed, d.Reason)
		}
		sameDecision(t, DefaultPolicy, req, servers, tab)
	}
}

// TestHerdSpreads places N sessions on one snapshot, adding each placement
// to the chosen server's Sessions as the broker does until the next report:
// equal servers must share them instead of all going to one.
func TestHerdSpreads(t *testing.T) {
	tests := []struct {
		name    string
		servers []Server
		n       int
		want    map[string]int // sessions added per server
	}{
		{"equal servers share evenly", []Server{srv("a", "eu", 10, 100), srv("b", "eu", 10, 100), srv("c", "eu", 10, 100), srv("d", "eu", 10, 100)}, 40,
			map[string]int{"a": 10, "b": 10, "c": 10, "d": 10}},
		{"bigger servers take more", []Server{srv("small", "eu", 0, 50), srv("big", "eu", 0, 150)}, 40,
			map[string]int{"small": 10, "big": 30}},
		{"the emptier server is filled up first", []Server{srv("a", "eu", 30, 100), srv("b", "eu", 10, 100)}, 30,
			map[string]int{"a": 5, "b": 25}},
		{"unlimited servers with equal load share by sessions", []Server{srv("a", "eu", 7, 0), srv("b", "eu", 7, 0), srv("c", "eu", 7, 0)}, 30,
			map[string]int{"a": 10, "b": 10, "c": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servers := slices.Clone(tt.servers)
			got := map[string]int{}
			for i := range tt.n {
				d, err := DefaultPolicy.Place(Request{User: fmt.Sprint("u", i), App: "db", ClientRegion: "eu", Seed: uint64(i)}, servers)
				if err != nil {
					t.Fatal(err)
				}
				got[d.Server]++
				for j := range servers {
					if servers[j].Name == d.Server {
						servers[j].Sessions++
					}
				}
			}
			for name, want := range tt.want {
				if d := got[name] - want; d < -1 || d > 1 {
					t.Fatalf("placements %v, want %v (within one)", got, tt.want)
				}
			}
		})
	}
}

func TestParseAffinity(t *testing.T) {
	for _, a := range []Affinity{AffinityNone, AffinityUser, AffinityUserApp} {
		got, err := ParseAffinity(a.String())
		if err != nil || got != a {
			t.Fatalf("ParseAffinity(%q) = %v, %v", a.String(), got, err)
		}
	}
	if _, err := ParseAffinity("group"); err == nil || !strings.Contains(err.Error(), `unknown affinity "group"`) {
		t.Fatalf("ParseAffinity(group): %v", err)
	}
}

func TestWeights(t *testing.T) {
	if err := DefaultWeights.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Weights{Locality: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "locality weight -1") {
		t.Fatalf("negative weight: %v", err)
	}
	if (Policy{}).weights() != DefaultWeights {
		t.Fatal("the zero Policy does not use DefaultWeights")
	}
}

func TestLeastSessions(t *testing.T) {
	d, err := LeastSessions(Request{App: "db"}, []Server{srv("a", "eu", 3, 10), srv("b", "eu", 1, 10), srv("c", "eu", 10, 10)})
	if err != nil || d.Server != "b" || d.Reason != "b: fewest sessions (1/10); excluded 1: 1 full (c)" {
		t.Fatalf("got %+v, %v", d, err)
	}
	if _, err := LeastSessions(Request{App: "top"}, []Server{srv("a", "eu", 0, 1)}); !errors.Is(err, ErrNoServer) {
		t.Fatalf("got %v, want ErrNoServer", err)
	}
}
