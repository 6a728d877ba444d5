package config

import (
	"github.com/BurntSushi/toml"
)

// A limit key of the file is one that bounds a count or a size: a
// gateway's capacity and its protections against abuse, a server's
// max_sessions, the audit trail's and a recording's max_size. Every one
// follows one rule: left out, it is the default config.toml.example
// shows; 0 means no limit; a negative number is refused. A gateway's
// capacity and a server's max_sessions may be switched off; the others
// may not, so the file cannot set them to 0 (zeroLimits), rather than 0
// meaning their default. (In a Config built in code, where a key left
// out and a key set to 0 look the same, 0 is the default for those.)
//
// The resource limits of [limits] are not counted here: they are the
// kernel's, where 0 is zero (core = 0: no core dumps) and "unlimited" is
// no limit.

// mustLimit are the limit keys of each gateway that cannot be switched
// off.
var mustLimit = []string{
	"max_auth_tries", "auth_fail_limit", "max_conns_per_source",
	"max_sessions_per_user", "max_channels_per_conn", "alive_count_max",
}

// zeroLimits reports each limit key that cannot be switched off and that
// the file sets to 0.
func zeroLimits(c *Config, md toml.MetaData) []Problem {
	var probs []Problem
	refuse := func(k toml.Key, v int64) {
		if v != 0 || !md.IsDefined(k...) {
			return
		}
		line, col := c.pos.find(k)
		probs = append(probs, Problem{File: c.Path, Line: line, Col: col,
			Msg: k.String() + ": 0 would mean no limit, which this key does not allow: leave it out for the default, or set 1 or more"})
	}
	for _, name := range sortedKeys(c.Gateways) {
		g := c.Gateways[name]
		values := []int{g.MaxAuthTries, g.AuthFailLimit, g.MaxConnsPerSource,
			g.MaxSessionsPerUser, g.MaxChannelsPerConn, g.AliveCountMax}
		for i, key := range mustLimit {
			refuse(toml.Key{"gateway", name, key}, int64(values[i]))
		}
	}
	refuse(toml.Key{"audit", "max_size"}, int64(c.Audit.MaxSize))
	refuse(toml.Key{"recording", "max_size"}, c.Recording.MaxSize)
	return probs
}
