package daemon

import (
	"net"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"

	"switchyard/config"
)

// The demo's known_hosts matches each gateway as OpenSSH looks it up: by
// bare host on port 22, by [host]:port on any other.
func TestKnownHostsMatchesEveryPort(t *testing.T) {
	cfg := &config.Config{StateDir: t.TempDir(), Gateways: map[string]config.Gateway{
		"gw1": {Address: "127.0.0.1:22", HostKey: "keys/gw1_host"},
		"gw2": {Address: "127.0.0.1:2223", HostKey: "keys/gw2_host"},
	}}
	if err := writeKnownHosts(cfg); err != nil {
		t.Fatal(err)
	}
	check, err := knownhosts.New(cfg.Resolve("known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gw1", "gw2"} {
		g := cfg.Gateways[name]
		signer, err := config.EnsureKey(cfg.Resolve(g.HostKey))
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := net.ResolveTCPAddr("tcp", g.Address)
		if err := check(g.Address, addr, signer.PublicKey()); err != nil {
			t.Errorf("%s at %s: %v", name, g.Address, err)
		}
	}
}
