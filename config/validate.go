package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/ssh"
)

// nameRE is what node, app, user and group names may look like.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks c and returns an *Error listing every problem, each at
// the file:line:col of the key at fault when c came from Load or Parse
// (a missing key is reported at its table's header). It returns nil when
// c is sound. Validate reads no files: keys_file is read by UserKeys.
func (c *Config) Validate() error {
	return newError(c.problems())
}

func (c *Config) problems() []Problem {
	v := &checker{c: c, nodes: map[string]string{"broker": "[broker]"}, addrs: map[string]string{}, keys: map[string]string{}}
	if c.StateDir == "" {
		v.addf(toml.Key{"state_dir"}, "must not be empty")
	}
	v.broker()
	v.gateways()
	v.servers()
	v.brokerNodes()
	v.network()
	v.apps()
	v.resourceLimits()
	v.users()
	v.groups()
	v.regions()
	v.policy()
	v.auth()
	v.etcd()
	v.recording()
	v.audit()
	return v.probs
}

// checker gathers the problems of one Config.
type checker struct {
	c     *Config
	probs []Problem
	nodes map[string]string // node name → the table that claimed it
	addrs map[string]string // listen address → the key that claimed it
	keys  map[string]string // marshalled node public_key → the key that set it
}

// addf records a problem at key k, or at its table if k is not in the
// file, prefixing the message with k.
func (v *checker) addf(k toml.Key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(k) > 0 {
		msg = k.String() + ": " + msg
	}
	line, col := v.c.pos.find(k)
	v.probs = append(v.probs, Problem{File: v.c.Path, Line: line, Col: col, Msg: msg})
}

func (v *checker) broker() {
	b := v.c.Broker
	v.address(toml.Key{"broker", "listen"}, b.Listen, true)
	v.adminChecks()
	if b.ReportInterval <= 0 {
		v.addf(toml.Key{"broker", "report_interval"}, "must be positive, like \"2s\"")
	}
	if b.Reservation < 0 {
		v.addf(toml.Key{"broker", "reservation"}, "must not be negative: \"30s\" holds a pre-launched app 30 seconds")
	}
	v.publicKey(toml.Key{"broker", "public_key"}, b.PublicKey)
}

func (v *checker) gateways() {
	if len(v.c.Gateways) == 0 {
		v.addf(nil, "no gateway: add a [gateway.NAME] table with listen = \"host:port\"")
	}
	for _, name := range sortedKeys(v.c.Gateways) {
		g, k := v.c.Gateways[name], toml.Key{"gateway", name}
		v.node(k)
		v.address(sub(k, "listen"), g.Listen, true)
		if g.Address != g.Listen {
			v.address(sub(k, "address"), g.Address, false)
		}
		if g.Capacity < 0 {
			v.addf(sub(k, "capacity"), "must not be negative: 0 means no limit, left out 1000")
		}
		if g.AliveInterval < 0 {
			v.addf(sub(k, "alive_interval"), "must not be negative")
		}
		if g.AliveCountMax < 0 {
			v.addf(sub(k, "alive_count_max"), "must not be negative")
		}
		v.publicKey(sub(k, "public_key"), g.PublicKey)
		v.nodeAdmin(sub(k, "admin"), g.Admin)
		v.limits(k, g)
	}
}

// limits checks a gateway's limits: none may be negative (left out, each
// is its default; see zerolimits.go for 0).
func (v *checker) limits(k toml.Key, g Gateway) {
	neg := []struct {
		key string
		bad bool
	}{
		{"handshake_timeout", g.HandshakeTimeout < 0}, {"max_auth_tries", g.MaxAuthTries < 0},
		{"auth_fail_limit", g.AuthFailLimit < 0}, {"auth_fail_window", g.AuthFailWindow < 0},
		{"max_conns_per_source", g.MaxConnsPerSource < 0}, {"max_sessions_per_user", g.MaxSessionsPerUser < 0},
		{"max_channels_per_conn", g.MaxChannelsPerConn < 0}, {"upgrade_drain", g.UpgradeDrain < 0},
	}
	for _, n := range neg {
		if n.bad {
			v.addf(sub(k, n.key), "must not be negative: leave it out for the default")
		}
	}
}

// auth checks the [auth] table's keys and the users' principals and
// password hashes.
func (v *checker) auth() {
	for i, line := range v.c.Auth.TrustedUserCAKeys {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil {
			v.addf(toml.Key{"auth", "trusted_user_ca_keys"}, "[%d]: invalid public key: %v", i, err)
		}
	}
	for i, entry := range v.c.Auth.RevokedKeys {
		if _, err := revokedFingerprint(entry); err != nil {
			v.addf(toml.Key{"auth", "revoked_keys"}, "[%d]: %v", i, err)
		}
	}
	owner := map[string]string{} // principal → user
	for _, name := range sortedKeys(v.c.Users) {
		u, k := v.c.Users[name], toml.Key{"user", name}
		if u.PasswordHash != "" {
			if err := checkPasswordHash(u.PasswordHash); err != nil {
				v.addf(sub(k, "password_hash"), "%v", err)
			}
		}
		for _, p := range u.UserPrincipals(name) {
			if p == "" {
				v.addf(sub(k, "principals"), "empty principal")
			} else if other, ok := owner[p]; ok {
				v.addf(sub(k, "principals"), "principal %q also logs in as user %q", p, other)
			} else {
				owner[p] = name
			}
		}
	}
	for _, name := range sortedKeys(v.c.Apps) {
		if v.c.Apps[name].IdleTimeout < 0 {
			v.addf(toml.Key{"app", name, "idle_timeout"}, `must not be negative: 0 or unset never ends an idle session`)
		}
		if c := v.c.Apps[name].CPU; c < 0 || c != c {
			v.addf(toml.Key{"app", name, "cpu"}, `must not be negative: 0 or unset lets appd learn it`)
		}
	}
}

func (v *checker) servers() {
	if len(v.c.Servers) == 0 {
		v.addf(nil, "no server: add a [server.NAME] table with listen = \"host:port\"")
	}
	for _, name := range sortedKeys(v.c.Servers) {
		s, k := v.c.Servers[name], toml.Key{"server", name}
		v.node(k)
		v.address(sub(k, "listen"), s.Listen, true)
		if s.MaxSessions < 0 {
			v.addf(sub(k, "max_sessions"), "must not be negative: 0 means no limit, left out 100")
		}
		if s.Handover < 0 {
			v.addf(sub(k, "handover"), "must not be negative (how long the keeper holds the apps of an appd that went away; 30s if left out)")
		}
		for _, app := range s.Apps {
			if app == "*" {
				v.addf(sub(k, "apps"), `"*" is not allowed here: leave apps out to offer every app`)
			} else if _, ok := v.c.Apps[app]; !ok {
				v.addf(sub(k, "apps"), "unknown app %q", app)
			}
		}
		v.publicKey(sub(k, "public_key"), s.PublicKey)
		v.nodeAdmin(sub(k, "admin"), s.Admin)
	}
}

func (v *checker) apps() {
	for _, name := range sortedKeys(v.c.Apps) {
		a, k := v.c.Apps[name], toml.Key{"app", name}
		v.name(k)
		if slices.Contains(ReservedApps, name) {
			v.addf(k, "%q is reserved for the gateway's own command: choose another name", name)
		}
		if a.Grace != nil && *a.Grace < 0 {
			v.addf(sub(k, "grace"), `must not be negative: "0s" hangs up at once, "10m" keeps a dropped session 10 minutes`)
		}
		switch {
		case len(a.Argv) == 0:
			v.addf(sub(k, "argv"), "is required: the program and its fixed arguments")
		case a.Argv[0] == "":
			v.addf(sub(k, "argv"), "argv[0] is empty: name the program")
		}
		for _, env := range sortedKeys(a.Env) {
			if env == "" || strings.ContainsAny(env, "=\x00") {
				v.addf(sub(k, "env", env), "invalid environment variable name")
			}
		}
		if a.User == "root" && !a.AllowRoot {
			v.addf(sub(k, "user"), `"root" needs allow_root = true`)
		}
	}
}

func (v *checker) users() {
	owner := map[string]string{} // marshalled key → user
	for _, name := range sortedKeys(v.c.Users) {
		u, k := v.c.Users[name], toml.Key{"user", name}
		v.name(k)
		for _, g := range u.Groups {
			if _, ok := v.c.Groups[g]; !ok {
				v.addf(sub(k, "groups"), "unknown group %q", g)
			}
		}
		v.appRefs(sub(k, "apps"), u.Apps)
		for i, line := range u.Keys {
			pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				v.addf(sub(k, "keys"), "keys[%d]: invalid public key: %v", i, err)
				continue
			}
			id := string(pub.Marshal())
			if other, ok := owner[id]; ok && other != name {
				v.addf(sub(k, "keys"), "keys[%d]: key %s also belongs to user %q",
					i, ssh.FingerprintSHA256(pub), other)
				continue
			}
			owner[id] = name
		}
	}
}

func (v *checker) groups() {
	for _, name := range sortedKeys(v.c.Groups) {
		k := toml.Key{"group", name}
		v.name(k)
		v.appRefs(sub(k, "apps"), v.c.Groups[name].Apps)
	}
}

// appRefs checks that each of apps names an app, or is "*".
func (v *checker) appRefs(k toml.Key, apps []string) {
	for _, app := range apps {
		if _, ok := v.c.Apps[app]; !ok && app != "*" {
			v.addf(k, "unknown app %q", app)
		}
	}
}

// name checks the last part of table key k is a usable name.
func (v *checker) name(k toml.Key) {
	if !nameRE.MatchString(k[len(k)-1]) {
		v.addf(k, "invalid name: use letters, digits, '-', '_' and '.', starting with a letter or digit")
	}
}

// node checks a gateway's or server's name, which must be unique among
// all nodes, the broker included.
func (v *checker) node(k toml.Key) {
	v.name(k)
	name := k[len(k)-1]
	if prev, ok := v.nodes[name]; ok {
		v.addf(k, "node name %q is already taken by %s", name, prev)
		return
	}
	v.nodes[name] = "[" + k.String() + "]"
}

// address checks a host:port value. A listen address with a specific host
// may be claimed by one key only.
func (v *checker) address(k toml.Key, addr string, listen bool) {
	if addr == "" {
		if listen {
			v.addf(k, "is required: host:port")
		}
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.addf(k, "invalid address %q: %v", addr, err)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.addf(k, "invalid address %q: port must be a number from 0 to 65535", addr)
		return
	}
	if !listen || host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		return
	}
	if prev, ok := v.addrs[addr]; ok {
		v.addf(k, "address %q is already used by %s", addr, prev)
		return
	}
	v.addrs[addr] = k.String()
}

// publicKey checks a node key in authorized_keys format, if set, and
// that no other node has it: the key names the node to its peers.
func (v *checker) publicKey(k toml.Key, s string) {
	if s == "" {
		return
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		v.addf(k, "invalid public key: %v", err)
		return
	}
	id := string(pub.Marshal())
	if prev, ok := v.keys[id]; ok {
		v.addf(k, "is the same key as %s: each node needs its own key", prev)
		return
	}
	v.keys[id] = k.String()
}

// sub returns the key k.parts..., leaving k unchanged.
func sub(k toml.Key, parts ...string) toml.Key {
	return append(k[:len(k):len(k)], parts...)
}
