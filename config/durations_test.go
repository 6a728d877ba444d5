package config

import (
	"strings"
	"testing"
)

// A bare number where a duration is expected is refused with the reason,
// wherever the duration key is; zero included, and a float too.
func TestBareNumberIsNotADuration(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"report_interval", "[broker]\n§report_interval = 2\n" + base,
			`broker.report_interval: a bare 2 is not a duration: a duration needs a unit, e.g. "2s"`},
		{"zero", "[broker]\n§reservation = 0\n" + base, `broker.reservation: a bare 0 is not a duration`},
		{"pointer field", base + "[app.x]\nargv = [\"x\"]\n§grace = 600\n", `app.x.grace: a bare 600 is not a duration`},
		{"in a gateway", "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\n§alive_interval = 15\n[server.s1]\nlisten = \"127.0.0.1:7101\"\n",
			`gateway.gw1.alive_interval: a bare 15 is not a duration`},
		{"etcd", base + "[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\n§dial_timeout = 5\n", `etcd.dial_timeout: a bare 5`},
		{"float", "[broker]\n§report_interval = 1.5\n" + base,
			`broker.report_interval: not a duration: a duration needs a unit, in a string like "1.5s"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, tc.src, tc.want) })
	}
}

// A plain integer key is still an integer.
func TestIntegerKeysTakeNumbers(t *testing.T) {
	src := strings.Replace(base, "[server.s1]\n", "[server.s1]\nmax_sessions = 7\n", 1)
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Servers["s1"].MaxSessions != 7 {
		t.Fatalf("max_sessions = %d", c.Servers["s1"].MaxSessions)
	}
}

// Bad durations do not hide each other nor the other problems, and the
// same file gives the same list, in file order, every time: the toml
// decoder stops at the first bad value it meets, in map order.
func TestBadDurationsDoNotHideProblems(t *testing.T) {
	src := `[broker]
§report_interval = 2
§reservation = "3x"

[gateway.gw1]
listen = "127.0.0.1:2222"
§alive_interval = "zz"
§capacity = -1
§handshake_timeout = 1.5

[server.s1]
listen = "127.0.0.1:7101"
§max_sessions = "ten"
§apps = ["ghost"]

[app.top]
argv = ["top"]
§idle_timeout = "forever"

[policy]
§locality_weight = -1
§affinity_weight = -1
§load_weight = -1
`
	wants := []string{
		"broker.report_interval: a bare 2 is not a duration",
		`broker.reservation: invalid duration: "3x"`,
		`gateway.gw1.alive_interval: invalid duration: "zz"`,
		"gateway.gw1.capacity: must not be negative",
		"gateway.gw1.handshake_timeout: not a duration",
		"server.s1.max_sessions: incompatible types",
		`server.s1.apps: unknown app "ghost"`,
		`app.top.idle_timeout: invalid duration: "forever"`,
		"policy.locality_weight: must not be negative",
		"policy.affinity_weight: must not be negative",
		"policy.load_weight: must not be negative",
	}
	text, _ := marked(src)
	_, first := Parse("test.toml", []byte(text))
	for range 20 {
		checkProblems(t, src, wants...)
		if _, err := Parse("test.toml", []byte(text)); err.Error() != first.Error() {
			t.Fatalf("two runs differ:\n%v\n---\n%v", first, err)
		}
	}
}

// A bad value inside a multi-line array is blanked whole: the rest of the
// file is still checked.
func TestBadValueSpanningLines(t *testing.T) {
	src := base + "[app.x]\n§argv = [\n  \"a\",\n  2,\n]\n§grace = \"1y\"\n"
	checkProblems(t, src, "app.x.argv: incompatible types", `app.x.grace: invalid duration: "1y"`)
}
