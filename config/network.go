package config

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// network checks what the gateways reach and how they redirect: reach
// names servers, redirect is known, every server is reached by some
// gateway, a gateway users may be redirected to has an address they can
// use, and every gateway a relaying gateway may need has an internal
// listener.
func (v *checker) network() {
	for _, name := range sortedKeys(v.c.Gateways) {
		g, k := v.c.Gateways[name], toml.Key{"gateway", name}
		for _, s := range g.Reach {
			if s == "*" {
				v.addf(sub(k, "reach"), `"*" is not allowed here: leave reach out to reach every server`)
			} else if _, ok := v.c.Servers[s]; !ok {
				v.addf(sub(k, "reach"), "unknown server %q", s)
			}
		}
		if g.Redirect != "" && g.Redirect != RedirectHint && g.Redirect != RedirectRelay {
			v.addf(sub(k, "redirect"), "must be %q or %q, not %q", RedirectHint, RedirectRelay, g.Redirect)
		}
		if g.Internal != "" {
			v.address(sub(k, "internal"), g.Internal, true)
		}
		if v.hintsTo(name) && unspecifiedHost(g.Address) {
			v.addf(sub(k, "address"), "clients redirected to %s are told this address, and %q names no host: set address = \"host:port\"",
				name, g.Address)
		}
	}
	for _, s := range sortedKeys(v.c.Servers) {
		if len(v.c.Gateways) > 0 && len(v.reaching(s, "")) == 0 {
			v.addf(toml.Key{"server", s}, "no gateway reaches server %s: add it to some gateway's reach", s)
		}
	}
	v.relays()
}

// relays checks that each gateway a relaying gateway may carry sessions
// through has an internal listener: every gateway reaching a server the
// relaying one does not reach.
func (v *checker) relays() {
	needs := map[string][]string{} // gateway → why it needs internal
	for _, r := range sortedKeys(v.c.Gateways) {
		if v.c.Gateways[r].Redirect != RedirectRelay {
			continue
		}
		for _, s := range sortedKeys(v.c.Servers) {
			if v.c.Gateways[r].Reaches(s) {
				continue
			}
			for _, g := range v.reaching(s, r) {
				if v.c.Gateways[g].Internal == "" {
					needs[g] = append(needs[g], fmt.Sprintf("%s for server %s", r, s))
				}
			}
		}
	}
	for _, g := range sortedKeys(needs) {
		why := slices.Compact(needs[g])
		v.addf(toml.Key{"gateway", g, "internal"}, "is required: gateway %s relays sessions through it (redirect = %q): set internal = \"host:port\"",
			strings.Join(why, ", "), RedirectRelay)
	}
}

// hintsTo reports whether some other gateway may send clients to name
// with a hint: it is not in relay mode.
func (v *checker) hintsTo(name string) bool {
	for other, g := range v.c.Gateways {
		if other != name && g.Redirect != RedirectRelay {
			return true
		}
	}
	return false
}

// reaching lists, sorted, the gateways other than except that reach server.
func (v *checker) reaching(server, except string) []string {
	var out []string
	for _, g := range sortedKeys(v.c.Gateways) {
		if g != except && v.c.Gateways[g].Reaches(server) {
			out = append(out, g)
		}
	}
	return out
}

// unspecifiedHost reports whether addr's host is empty or 0.0.0.0 / ::,
// which a client cannot connect to. A malformed addr is reported elsewhere.
func unspecifiedHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}
