package config

import (
	"testing"
	"time"
)

// twoNets has gw1 reaching s1 and gw2 reaching s2.
const twoNets = `[gateway.gw1]
listen = "127.0.0.1:2222"
reach = ["s1"]
[gateway.gw2]
listen = "127.0.0.1:2223"
reach = ["s2"]
[server.s1]
listen = "127.0.0.1:7101"
[server.s2]
listen = "127.0.0.1:7102"
[app.top]
argv = ["top"]
`

func TestValidateNetwork(t *testing.T) {
	cases := []struct {
		name string
		src  string // § marks where the one problem must be
		want string
	}{
		{"reservation negative", "[broker]\n§reservation = \"-1s\"\n" + base, "broker.reservation: must not be negative"},
		{"reach unknown server", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n§reach = [\"s1\", \"s9\"]\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n[app.top]\nargv = [\"top\"]\n",
			`gateway.gw1.reach: unknown server "s9"`},
		{"reach star", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n§reach = [\"s1\", \"*\"]\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n[app.top]\nargv = [\"top\"]\n",
			`"*" is not allowed here: leave reach out`},
		{"redirect unknown", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n§redirect = \"bounce\"\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n[app.top]\nargv = [\"top\"]\n",
			`gateway.gw1.redirect: must be "hint" or "relay", not "bounce"`},
		{"internal bad", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n§internal = \"7201\"\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n[app.top]\nargv = [\"top\"]\n",
			`gateway.gw1.internal: invalid address "7201"`},
		{"internal shared", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n§internal = \"127.0.0.1:7101\"\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n[app.top]\nargv = [\"top\"]\n",
			`already used by`},
		{"server nobody reaches", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\nreach = [\"s1\"]\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n§[server.s2]\nlisten = \"127.0.0.1:7102\"\n[app.top]\nargv = [\"top\"]\n",
			"no gateway reaches server s2"},
		{"relay needs internal", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\nreach = [\"s1\"]\nredirect = \"relay\"\n§[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n[server.s2]\nlisten = \"127.0.0.1:7102\"\n[app.top]\nargv = [\"top\"]\n",
			`gateway.gw2.internal: is required: gateway gw1 for server s2 relays sessions through it (redirect = "relay")`},
		{"redirect target without host", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n§[gateway.gw2]\nlisten = \"0.0.0.0:2223\"\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n[app.top]\nargv = [\"top\"]\n",
			`gateway.gw2.address: clients redirected to gw2 are told this address, and "0.0.0.0:2223" names no host`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, tc.src, tc.want)
		})
	}
}

func TestValidateNetworkAccepts(t *testing.T) {
	cases := []struct{ name, src string }{
		{"disjoint networks, hints", twoNets},
		{"relay through a gateway with internal", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\nreach = [\"s1\"]\ninternal = \"127.0.0.1:7201\"\n" +
			"[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\nreach = [\"s2\"]\nredirect = \"relay\"\n" +
			"[server.s1]\nlisten = \"127.0.0.1:7101\"\n[server.s2]\nlisten = \"127.0.0.1:7102\"\n[app.top]\nargv = [\"top\"]\n"},
		{"relaying gateways only: no address needed", "[gateway.gw1]\nlisten = \"0.0.0.0:2222\"\nredirect = \"relay\"\n[gateway.gw2]\nlisten = \"0.0.0.0:2223\"\nredirect = \"relay\"\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n[app.top]\nargv = [\"top\"]\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if c.Broker.Reservation != 30*time.Second {
				t.Errorf("default reservation %v", c.Broker.Reservation)
			}
			for name, g := range c.Gateways {
				if g.Redirect != RedirectHint && g.Redirect != RedirectRelay {
					t.Errorf("gateway %s redirect %q after defaults", name, g.Redirect)
				}
			}
		})
	}
	c, err := Parse("t", []byte(twoNets))
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Gateways["gw1"]; !g.Reaches("s1") || g.Reaches("s2") {
		t.Errorf("gw1 reach %v", g.Reach)
	}
	if g := (Gateway{}); !g.Reaches("anything") {
		t.Error("a gateway without reach reaches every server")
	}
}
