package config

import (
	"fmt"
	"net/netip"

	"github.com/BurntSushi/toml"
)

// Region is a place clients and nodes are in.
type Region struct {
	CIDRs []string `toml:"cidrs"` // client networks in this region, e.g. "10.1.0.0/16"
	Near  []string `toml:"near"`  // other regions to prefer next, best first
}

// Policy tunes placement.
type Policy struct {
	// Affinity groups a user's sessions on one server while it has room:
	// "none", "user" (any app) or "user+app". Default "user".
	Affinity string `toml:"affinity"`
	// Weights of the placement score's parts; 0 means the default.
	LocalityWeight float64 `toml:"locality_weight"`
	AffinityWeight float64 `toml:"affinity_weight"`
	LoadWeight     float64 `toml:"load_weight"`
	// SpillAt is the highest fill level (share of a server's sessions or
	// cores) past which locality gives way to balance: the level in force
	// follows the cluster's mean fill up to it. 0 means the default, 0.8.
	SpillAt float64 `toml:"spill_at"`
}

// defaultAffinity is Policy.Affinity when the file leaves it empty.
const defaultAffinity = "user"

// RegionOf returns the region whose CIDRs contain ip, the most specific
// (longest prefix) if several do, or "" if none.
func (c *Config) RegionOf(ip netip.Addr) string {
	best, bestBits := "", -1
	ip = ip.Unmap()
	for _, name := range sortedKeys(c.Regions) {
		for _, s := range c.Regions[name].CIDRs {
			p, err := netip.ParsePrefix(s)
			if err == nil && p.Contains(ip) && p.Bits() > bestBits {
				best, bestBits = name, p.Bits()
			}
		}
	}
	return best
}

func (v *checker) regions() {
	for _, name := range sortedKeys(v.c.Regions) {
		r, k := v.c.Regions[name], toml.Key{"region", name}
		v.name(k)
		for _, s := range r.CIDRs {
			if _, err := netip.ParsePrefix(s); err != nil {
				v.addf(sub(k, "cidrs"), "%q is not a CIDR like \"10.1.0.0/16\"", s)
			}
		}
		for _, n := range r.Near {
			if _, ok := v.c.Regions[n]; !ok {
				v.addf(sub(k, "near"), "unknown region %q", n)
			} else if n == name {
				v.addf(sub(k, "near"), "a region is not near itself")
			}
		}
	}
	for _, name := range sortedKeys(v.c.Servers) {
		v.regionRef(toml.Key{"server", name, "region"}, v.c.Servers[name].Region)
	}
	for _, name := range sortedKeys(v.c.Gateways) {
		v.regionRef(toml.Key{"gateway", name, "region"}, v.c.Gateways[name].Region)
	}
}

func (v *checker) regionRef(k toml.Key, region string) {
	if region == "" {
		return
	}
	if _, ok := v.c.Regions[region]; !ok {
		v.addf(k, "unknown region %q (define it as [region.%s])", region, region)
	}
}

func (v *checker) policy() {
	p, k := v.c.Policy, toml.Key{"policy"}
	switch p.Affinity {
	case "", "none", "user", "user+app": // "" is filled with the default
	default:
		v.addf(sub(k, "affinity"), "%q is not one of \"none\", \"user\", \"user+app\"", p.Affinity)
	}
	for key, w := range map[string]float64{"locality_weight": p.LocalityWeight, "affinity_weight": p.AffinityWeight, "load_weight": p.LoadWeight} {
		if w < 0 {
			v.addf(sub(k, key), "must not be negative, got %s", fmt.Sprint(w))
		}
	}
	if p.SpillAt < 0 || p.SpillAt != p.SpillAt {
		v.addf(sub(k, "spill_at"), "must be a fill level above 0 (0.8 by default; 1 or more spills only once full), got %s", fmt.Sprint(p.SpillAt))
	}
}
