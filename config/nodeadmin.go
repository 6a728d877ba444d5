package config

import (
	"net"

	"github.com/BurntSushi/toml"
)

// nodeAdmin checks a gateway's or a server's admin address at k, if set:
// a listen address on loopback, since it serves without a token.
func (v *checker) nodeAdmin(k toml.Key, addr string) {
	if addr == "" {
		return
	}
	n := len(v.probs)
	v.address(k, addr, true)
	if len(v.probs) > n {
		return
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		v.addf(k, "%q is not a loopback address: a node's admin serves metrics without a token, so only 127.0.0.1:PORT, [::1]:PORT or localhost:PORT", addr)
	}
}
