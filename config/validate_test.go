package config

import (
	"net/netip"
	"strings"
	"testing"
)

// Two public keys whose private halves were thrown away.
const (
	key1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOrSOKezoeuVQXcpqnKUOW/PrZOGc/rJFbqRdGuVG8Qh one"
	key2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJTA7bSHQFlpgRV6hJqdx6ApjszKcSPkB4KwJCQ4taVw two"
)

// Pieces of a sound config; each case adds one fault.
const (
	gw  = "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n"
	srv = "[server.s1]\nlisten = \"127.0.0.1:7101\"\n"
	app = "[app.top]\nargv = [\"top\"]\n"
)

func TestValidateRules(t *testing.T) {
	cases := []struct {
		name string
		src  string // § marks where the one problem must be; none: no position
		want string
	}{
		{"state_dir empty", "§state_dir = \"\"\n" + base, "state_dir: must not be empty"},
		{"broker listen empty", "[broker]\n§listen = \"\"\n" + base, "broker.listen: is required"},
		{"broker admin bad", "[broker]\n§admin = \"localhost\"\n" + base, `broker.admin: invalid address "localhost"`},
		{"report_interval zero", "[broker]\n§report_interval = \"0s\"\n" + base, "broker.report_interval: must be positive"},
		{"report_interval negative", "[broker]\n§report_interval = \"-5s\"\n" + base, "must be positive"},
		{"broker public_key bad", "[broker]\n§public_key = \"ssh-ed25519 nope\"\n" + base, "broker.public_key: invalid public key"},
		{"no gateway", srv + app, "no gateway"},
		{"no server", gw + app, "no server"},
		{"gateway name invalid", base + "§[gateway.\"g w\"]\nlisten = \"127.0.0.1:2223\"\n", `gateway."g w": invalid name`},
		{"gateway name empty", base + "§[gateway.\"\"]\nlisten = \"127.0.0.1:2223\"\n", `gateway."": invalid name`},
		{"server name leading dash", base + "§[server.-s]\nlisten = \"127.0.0.1:7102\"\n", "server.-s: invalid name"},
		{"app name leading dot", base + "§[app.\".x\"]\nargv = [\"x\"]\n", `app.".x": invalid name`},
		{"user name invalid", base + "§[user.\"a/b\"]\n", `user."a/b": invalid name`},
		{"group name invalid", base + "§[group.\"*\"]\n", `group."*": invalid name`},
		{"gateway named broker", base + "§[gateway.broker]\nlisten = \"127.0.0.1:2223\"\n", `"broker" is already taken by [broker]`},
		{"server named broker", base + "§[server.broker]\nlisten = \"127.0.0.1:7102\"\n", `"broker" is already taken by [broker]`},
		{"server and gateway share a name", base + "§[server.gw1]\nlisten = \"127.0.0.1:7102\"\n", `server.gw1: node name "gw1" is already taken by [gateway.gw1]`},
		{"gateway listen missing", base + "§[gateway.gw2]\ncapacity = 5\n", "gateway.gw2.listen: is required"},
		{"gateway listen bad", base + "[gateway.gw2]\n§listen = \"2223\"\n", `gateway.gw2.listen: invalid address "2223"`},
		{"gateway port bad", base + "[gateway.gw2]\n§listen = \"127.0.0.1:ssh\"\n", "port must be a number"},
		{"gateway port too big", base + "[gateway.gw2]\n§listen = \"127.0.0.1:70000\"\n", "port must be a number"},
		{"gateway address bad", base + "[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\n§address = \"gw2\"\n", "gateway.gw2.address: invalid address"},
		{"gateway capacity negative", base + "[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\n§capacity = -1\n", "gateway.gw2.capacity: must not be negative"},
		{"gateway public_key bad", base + "[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\n§public_key = \"x\"\n", "gateway.gw2.public_key: invalid public key"},
		{"server listen missing", base + "§[server.s2]\nmax_sessions = 3\n", "server.s2.listen: is required"},
		{"server listen bad", base + "[server.s2]\n§listen = \"[::1]\"\n", "server.s2.listen: invalid address"},
		{"server max_sessions negative", base + "[server.s2]\nlisten = \"127.0.0.1:7102\"\n§max_sessions = -3\n", "server.s2.max_sessions: must not be negative"},
		{"server unknown app", base + "[server.s2]\nlisten = \"127.0.0.1:7102\"\n§apps = [\"top\", \"vim\"]\n", `server.s2.apps: unknown app "vim"`},
		{"server star", base + "[server.s2]\nlisten = \"127.0.0.1:7102\"\n§apps = [\"*\"]\n", `"*" is not allowed here`},
		{"server public_key bad", base + "[server.s2]\nlisten = \"127.0.0.1:7102\"\n§public_key = \"" + key1[:40] + "\"\n", "server.s2.public_key: invalid public key"},
		{"listen address shared", base + "[server.s2]\n§listen = \"127.0.0.1:7101\"\n", `server.s2.listen: address "127.0.0.1:7101" is already used by server.s1.listen`},
		{"listen address shared with broker", "[broker]\nadmin_tcp = \"127.0.0.1:7001\"\nadmin_token = \"0123456789abcdef\"\n" + base + "[gateway.gw2]\n§listen = \"127.0.0.1:7001\"\n", "already used by broker.admin_tcp"},
		{"admin TCP without token", "[broker]\n§admin = \"127.0.0.1:7001\"\n" + base, `broker.admin: "127.0.0.1:7001" is a TCP address, which any local user can reach: set admin_token`},
		{"admin_tcp without token", "[broker]\n§admin_tcp = \"127.0.0.1:7001\"\n" + base, "broker.admin_tcp: requires admin_token"},
		{"admin_tcp bad", "[broker]\nadmin_token = \"0123456789abcdef\"\n§admin_tcp = \"7001\"\n" + base, `broker.admin_tcp: invalid address "7001"`},
		{"admin_token short", "[broker]\nadmin_tcp = \"127.0.0.1:7001\"\n§admin_token = \"secret\"\n" + base, "broker.admin_token: too short"},
		{"admin socket empty", "[broker]\n§admin = \"unix:\"\n" + base, `broker.admin: "unix:" needs a socket path`},
		{"admin socket too long", "[broker]\n§admin = \"unix:/" + strings.Repeat("d", 100) + "/admin.sock\"\n" + base, "too long for a Unix socket"},
		{"admin_group bad", "[broker]\n§admin_group = \"a b\"\n" + base, `broker.admin_group: invalid group name "a b"`},
		{"admin_names bad", "[broker]\nadmin_tcp = \"127.0.0.1:7001\"\nadmin_token = \"0123456789abcdef\"\n§admin_names = [\"evil.example:80\"]\n" + base, `broker.admin_names: invalid host name "evil.example:80"`},
		{"app argv missing", base + "§[app.x]\ndescription = \"x\"\n", "app.x.argv: is required"},
		{"app argv empty list", base + "[app.x]\n§argv = []\n", "app.x.argv: is required"},
		{"app argv[0] empty", base + "[app.x]\n§argv = [\"\", \"-l\"]\n", "app.x.argv: argv[0] is empty"},
		{"app env name bad", base + "[app.x]\nargv = [\"x\"]\nenv = { OK = \"1\", §\"A=B\" = \"x\" }\n", `app.x.env."A=B": invalid environment variable name`},
		{"app grace negative", base + "[app.x]\nargv = [\"x\"]\n§grace = \"-1s\"\n", "app.x.grace: must not be negative"},
		{"app named resume", base + "§[app.resume]\nargv = [\"x\"]\n", `app.resume: "resume" is reserved`},
		{"app named sessions", base + "§[app.sessions]\nargv = [\"x\"]\n", `app.sessions: "sessions" is reserved`},
		{"app root without allow_root", base + "[app.x]\nargv = [\"x\"]\n§user = \"root\"\n", `app.x.user: "root" needs allow_root = true`},
		{"user unknown group", base + "[user.u]\n§groups = [\"g\"]\n", `user.u.groups: unknown group "g"`},
		{"user unknown app", base + "[user.u]\n§apps = [\"*\", \"vim\"]\n", `user.u.apps: unknown app "vim"`},
		{"group unknown app", base + "[group.g]\n§apps = [\"top\", \"vim\"]\n", `group.g.apps: unknown app "vim"`},
		{"user key bad", base + "[user.u]\n§keys = [\"" + key1 + "\", \"ssh-rsa AAAA\"]\n", "user.u.keys: keys[1]: invalid public key"},
		{"user key empty", base + "[user.u]\n§keys = [\"\"]\n", "user.u.keys: keys[0]: invalid public key"},
		{"key of two users", base + "[user.a]\nkeys = [\"" + key1 + "\"]\n[user.b]\n§keys = [\"" + key2 + "\", \"" + key1 + "\"]\n", `user.b.keys: keys[1]: key SHA256:`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, tc.src, tc.want)
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	cases := []struct{ name, src string }{
		{"minimal", base},
		{"star and references", base + "[group.g]\napps = [\"*\"]\n[user.u]\ngroups = [\"g\"]\napps = [\"top\", \"*\"]\nkeys = [\"" + key1 + "\"]\n"},
		{"same key twice for one user", base + "[user.u]\nkeys = [\"" + key1 + "\", \"" + key1 + "\"]\n"},
		{"root allowed", base + "[app.x]\nargv = [\"x\"]\nuser = \"root\"\nallow_root = true\n"},
		{"wildcard listens may repeat", base + "[gateway.gw2]\nlisten = \"0.0.0.0:2222\"\naddress = \"gw2.example.com:2222\"\n[gateway.gw3]\nlisten = \"0.0.0.0:2222\"\naddress = \"gw3.example.com:2222\"\n[server.s2]\nlisten = \":7101\"\n[server.s3]\nlisten = \":7101\"\n"},
		{"node keys", base + "[broker]\npublic_key = \"" + key1 + "\"\n[gateway.gw2]\nlisten = \"[::1]:22\"\npublic_key = \"" + key2 + "\"\n"},
		{"names with dots and dashes", base + "[server.\"s-2.x_y\"]\nlisten = \"127.0.0.1:7102\"\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse("t", []byte(tc.src)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := &Config{
		StateDir: "/s",
		Broker:   Broker{Listen: "127.0.0.1:7000", Admin: DefaultAdmin, ReportInterval: 1},
		Gateways: map[string]Gateway{"g": {Listen: "127.0.0.1:22"}},
		Servers:  map[string]Server{"s": {Listen: "127.0.0.1:7101", Apps: []string{"x"}}},
	}
	err := c.Validate()
	want := `server.s.apps: unknown app "x"` // no file, no position
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %q", err, want)
	}
	c.Apps = map[string]App{"x": {Argv: []string{"x"}}}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	c.Path = "c.toml"
	c.Servers["s"] = Server{}
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "c.toml: server.s.listen: is required") {
		t.Errorf("Validate = %v", err)
	}
}

func TestRegionsAndPolicy(t *testing.T) {
	src := `
[gateway.g]
listen = "127.0.0.1:2222"
region = "mars"
[server.s]
listen = "127.0.0.1:7101"
region = "eu"
[app.a]
argv = ["a"]
[region.eu]
cidrs = ["10.1.0.0/16", "10.1.2.0/24x"]
near = ["us", "eu"]
[region.us]
cidrs = ["10.2.0.0/16"]
[policy]
affinity = "sometimes"
load_weight = -1
`
	_, err := Parse("t.toml", []byte(src))
	if err == nil {
		t.Fatal("bad regions and policy accepted")
	}
	for _, want := range []string{
		`t.toml:4:1: gateway.g.region: unknown region "mars"`,
		`t.toml:11:1: region.eu.cidrs: "10.1.2.0/24x" is not a CIDR`,
		`t.toml:12:1: region.eu.near: a region is not near itself`,
		`t.toml:16:1: policy.affinity: "sometimes" is not one of`,
		`t.toml:17:1: policy.load_weight: must not be negative`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	ok := strings.NewReplacer(`region = "mars"`, `region = "us"`, `, "10.1.2.0/24x"`, `, "10.1.2.0/24"`,
		`near = ["us", "eu"]`, `near = ["us"]`, `"sometimes"`, `"user+app"`, "load_weight = -1", "load_weight = 2").Replace(src)
	c, err := Parse("t.toml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{"10.1.2.3": "eu", "10.1.9.9": "eu", "10.2.0.1": "us", "192.0.2.1": "", "::ffff:10.2.0.1": "us"} {
		if got := c.RegionOf(netip.MustParseAddr(ip)); got != want {
			t.Errorf("RegionOf(%s) = %q, want %q", ip, got, want)
		}
	}
}

func TestWarningsAllowArgsOnShellLikeApps(t *testing.T) {
	src := gw + srv + `[app.env]
argv = ["/usr/bin/env"]
allow_args = true
[app.echo]
argv = ["echo"]
allow_args = true
[app.bash]
argv = ["bash", "-l"]
[app.py]
argv = ["python3"]
allow_args = true
`
	c, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Warnings()
	var got []string
	for _, w := range ws {
		got = append(got, w.String())
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "f.toml:7:1: app.env.allow_args: warning: env runs") ||
		!strings.HasPrefix(got[1], "f.toml:15:1: app.py.allow_args: warning: python3 runs") {
		t.Fatalf("warnings:\n%s", strings.Join(got, "\n"))
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("a warning is not an error: %v", err)
	}
}

// An empty region listed in a near list takes a place, halving the
// locality weight of the regions after it: check warns.
func TestWarningsEmptyNearRegion(t *testing.T) {
	src := gw + app + `[server.s1]
listen = "127.0.0.1:7101"
region = "eu"
[server.s2]
listen = "127.0.0.1:7102"
region = "us"
[region.eu]
cidrs = ["10.1.0.0/16"]
near = ["ap", "us"]
[region.us]
cidrs = ["10.2.0.0/16"]
near = ["eu", "ap"]
[region.ap]
cidrs = ["10.3.0.0/16"]
near = ["us"]
`
	c, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.String())
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], `f.toml:13:1: region.eu.near: warning: no server is in region "ap", yet it takes a place`) ||
		!strings.HasPrefix(got[1], `f.toml:16:1: region.us.near: warning: no server is in region "ap"; it is listed for nothing`) {
		t.Fatalf("warnings:\n%s", strings.Join(got, "\n"))
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("a warning is not an error: %v", err)
	}
}

// capacity = 0 means no limit, as max_sessions = 0 does; left out, it
// is 1000.
func TestCapacityZeroIsNoLimit(t *testing.T) {
	src := gw + app + "[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\ncapacity = 0\n" +
		"[server.s1]\nlisten = \"127.0.0.1:7101\"\n"
	c, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Gateways["gw2"].Capacity; got != 0 {
		t.Errorf("capacity = 0 became %d", got)
	}
	for name, g := range c.Gateways {
		if name != "gw2" && g.Capacity != 1000 {
			t.Errorf("gateway %s: capacity left out is %d, want 1000", name, g.Capacity)
		}
	}
}

// A limit that cannot be switched off is refused at 0, which would
// otherwise have to mean its default; left out, or set, it is taken.
func TestZeroLimitsRefused(t *testing.T) {
	gw2 := base + "[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\n"
	for _, key := range mustLimit {
		checkProblems(t, gw2+"§"+key+" = 0\n",
			"gateway.gw2."+key+": 0 would mean no limit, which this key does not allow: leave it out for the default, or set 1 or more")
	}
	checkProblems(t, base+"[audit]\n§max_size = 0\n", "audit.max_size: 0 would mean no limit")
	checkProblems(t, base+"[recording]\n§max_size = 0\n", "recording.max_size: 0 would mean no limit")
	src := gw2 + "max_auth_tries = 1\nauth_fail_limit = 1\nmax_conns_per_source = 1\nmax_sessions_per_user = 1\n" +
		"max_channels_per_conn = 1\nalive_count_max = 1\n[audit]\nmax_size = 1\n[recording]\nmax_size = 1\n"
	if _, err := Parse("f.toml", []byte(src)); err != nil {
		t.Errorf("limits of 1 refused: %v", err)
	}
}

// max_sessions = 0 means no limit, as in appd, the broker and selection;
// left out, it is 100.
func TestMaxSessionsZeroIsNoLimit(t *testing.T) {
	src := gw + app + "[server.s1]\nlisten = \"127.0.0.1:7101\"\nmax_sessions = 0\n[server.s2]\nlisten = \"127.0.0.1:7102\"\n"
	c, err := Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Servers["s1"].MaxSessions; got != 0 {
		t.Errorf("max_sessions = 0 became %d", got)
	}
	if got := c.Servers["s2"].MaxSessions; got != 100 {
		t.Errorf("max_sessions left out is %d, want 100", got)
	}
}
