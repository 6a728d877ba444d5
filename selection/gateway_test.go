package selection

import (
	"errors"
	"strings"
	"testing"
)

func gw(name, region string, sessions, capacity int, reach ...string) Gateway {
	if reach == nil {
		reach = []string{"s1", "s2"}
	}
	return Gateway{Name: name, Region: region, Healthy: true, Reach: reach, Sessions: sessions, Capacity: capacity}
}

func TestPickGateway(t *testing.T) {
	req := GatewayRequest{Requesting: "g1", Server: "s1", ClientRegion: "eu", Near: []string{"us"}}
	tests := []struct {
		name   string
		req    GatewayRequest
		gws    []Gateway
		want   string
		reason string
	}{
		{"requesting gateway wins ties", req, []Gateway{gw("g0", "eu", 10, 100), gw("g1", "eu", 10, 100), gw("g2", "eu", 10, 100)}, "g1", "g1: stay on the requesting gateway"},
		{"requesting gateway kept within the margin", req, []Gateway{gw("g1", "eu", 15, 100), gw("g2", "eu", 10, 100)}, "g1", "best other g2 scores 1.500, within the redirect margin 0.100"},
		{"redirect to a much less loaded gateway", req, []Gateway{gw("g1", "eu", 80, 100), gw("g2", "eu", 10, 100)}, "g2", "g2: redirect from g1"},
		{"redirect to the client's region", req, []Gateway{gw("g1", "ap", 0, 100), gw("g2", "eu", 20, 100)}, "g2", "g1 scores 1.000, more than 0.100 worse"},
		{"near gateway beats remote", GatewayRequest{Server: "s1", ClientRegion: "eu", Near: []string{"us"}}, []Gateway{gw("ap", "ap", 0, 100), gw("us", "us", 0, 100)}, "us", "us: chosen"},
		{"unreachable server excluded", req, []Gateway{gw("g1", "eu", 0, 100, "s2"), gw("g2", "us", 50, 100)}, "g2", "g1 is not reaching the server; 1 of 2 gateways eligible; excluded 1: 1 not reaching the server (g1)"},
		{"over capacity excluded", req, []Gateway{gw("g1", "eu", 100, 100), gw("g2", "eu", 99, 100)}, "g2", "g1 is full"},
		{"unhealthy requesting gateway", req, []Gateway{{Name: "g1", Region: "eu", Reach: []string{"s1"}}, gw("g2", "us", 0, 10)}, "g2", "g1 is unhealthy"},
		{"unknown requesting gateway", GatewayRequest{Requesting: "gx", Server: "s1"}, []Gateway{gw("g2", "us", 0, 10)}, "g2", "gx is unknown"},
		{"unlimited capacity", req, []Gateway{gw("g1", "eu", 1000, 0), gw("g2", "eu", 1, 100)}, "g1", "1000/unlimited sessions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DefaultPolicy.PickGateway(tt.req, tt.gws)
			if err != nil {
				t.Fatal(err)
			}
			if d.Server != tt.want || !strings.Contains(d.Reason, tt.reason) || strings.Contains(d.Reason, "\n") {
				t.Fatalf("got %s (%s)\nwant %s with reason containing %q", d.Server, d.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestPickGatewayTiesAmongOthers(t *testing.T) {
	// The requesting gateway cannot serve; the others are equal: the choice
	// depends on the seed only, and spreads.
	gws := []Gateway{{Name: "g0", Region: "eu", Reach: []string{"s1"}}, gw("a", "eu", 5, 10), gw("b", "eu", 5, 10), gw("c", "eu", 5, 10)}
	count := map[string]int{}
	for seed := range uint64(3000) {
		req := GatewayRequest{Requesting: "g0", Server: "s1", ClientRegion: "eu", Seed: seed}
		d1, _ := DefaultPolicy.PickGateway(req, gws)
		d2, _ := DefaultPolicy.PickGateway(req, gws)
		if d1 != d2 {
			t.Fatalf("seed %d: %v then %v", seed, d1, d2)
		}
		count[d1.Server]++
	}
	for _, name := range []string{"a", "b", "c"} {
		if n := count[name]; n < 850 || n > 1150 {
			t.Fatalf("ties are biased: %v", count)
		}
	}
}

func TestPickGatewayErrors(t *testing.T) {
	tests := []struct {
		name string
		gws  []Gateway
		want string
	}{
		{"none known", nil, "no gateway available: no gateways are known"},
		{"none reaches", []Gateway{gw("g1", "eu", 0, 9, "s2")}, "no gateway reaches server s1"},
		{"all full", []Gateway{gw("g1", "eu", 9, 9), gw("g2", "eu", 5, 5), gw("g3", "eu", 0, 9, "s2")}, "all 2 gateways reaching server s1 are full"},
		{"all unhealthy", []Gateway{{Name: "g1", Reach: []string{"s1"}}}, "all 1 gateways reaching server s1 are unhealthy"},
		{"mixed", []Gateway{{Name: "g1", Reach: []string{"s1"}}, gw("g2", "eu", 5, 5)}, "none of the 2 gateways reaching server s1 can carry it: 1 unhealthy (g1), 1 full (g2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DefaultPolicy.PickGateway(GatewayRequest{Requesting: "g1", Server: "s1", ClientRegion: "eu"}, tt.gws)
			if !errors.Is(err, ErrNoGateway) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want ErrNoGateway containing %q", err, tt.want)
			}
		})
	}
}
