package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// readExample returns the repository's config.toml.example.
func readExample(tb testing.TB) string {
	tb.Helper()
	data, err := os.ReadFile("../config.toml.example")
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// marked removes the § markers from src and returns the text and the
// line:col of each marker, in order.
func marked(src string) (string, []string) {
	var at []string
	var b strings.Builder
	line, col := 1, 1
	for _, r := range src {
		switch {
		case r == '§':
			at = append(at, fmt.Sprintf("%d:%d", line, col))
			continue
		case r == '\n':
			line, col = line+1, 1
		default:
			col += len(string(r))
		}
		b.WriteRune(r)
	}
	return b.String(), at
}

// problemsOf returns the problems in err, failing if err is not an *Error.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return cerr.Problems
}

// checkProblems parses src (with § markers) and checks it yields one
// problem per want, each at the next marker, or at no position once the
// markers run out, with a message containing the want.
func checkProblems(t *testing.T, src string, wants ...string) {
	t.Helper()
	text, at := marked(src)
	c, err := Parse("test.toml", []byte(text))
	probs := problemsOf(t, err)
	if len(probs) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(wants), err)
	}
	if c != nil {
		t.Errorf("Parse returned a Config along with problems")
	}
	// Problems without a position sort first; markers follow.
	unplaced := len(wants) - len(at)
	for i, p := range probs {
		want := "0:0"
		if i >= unplaced {
			want = at[i-unplaced]
		}
		if got := fmt.Sprintf("%d:%d", p.Line, p.Col); got != want {
			t.Errorf("problem %q at %s, want %s", p.Msg, got, want)
		}
		if !strings.Contains(p.Msg, wants[i]) {
			t.Errorf("problem %q does not contain %q", p.Msg, wants[i])
		}
		if p.File != "test.toml" {
			t.Errorf("problem file %q", p.File)
		}
	}
}

func TestParseExample(t *testing.T) {
	c, err := Parse("config.toml.example", []byte(readExample(t)))
	if err != nil {
		t.Fatalf("example has problems:\n%v", err)
	}
	allApps := []string{"bash", "cat", "echo", "htop", "top", "vi"}
	checks := []struct {
		name      string
		got, want any
	}{
		{"state_dir", c.StateDir, "/var/lib/switchyard"},
		{"broker", c.Broker, Broker{Listen: "127.0.0.1:7000", Admin: DefaultAdmin, ReportInterval: 2 * time.Second, Reservation: 30 * time.Second}},
		{"gw1", c.Gateways["gw1"], Gateway{Listen: "127.0.0.1:2222", Address: "127.0.0.1:2222", HostKey: "keys/gw1_host", Capacity: 1000, Region: "local",
			Reach: []string{"s1", "s2"}, Redirect: RedirectHint, Internal: "127.0.0.1:7201"}},
		{"gw2", c.Gateways["gw2"], Gateway{Listen: "127.0.0.1:2223", Address: "127.0.0.1:2223", HostKey: "keys/gw2_host", Capacity: 1000, Region: "local",
			Reach: []string{"s2"}, Redirect: RedirectHint}},
		{"s1", c.Servers["s1"], Server{Listen: "127.0.0.1:7101", MaxSessions: 100, Apps: allApps, Region: "local"}},
		{"s2", c.Servers["s2"], Server{Listen: "127.0.0.1:7102", MaxSessions: 100, Apps: allApps, Region: "local"}},
		{"regions", c.Regions, map[string]Region{"local": {CIDRs: []string{"127.0.0.0/8", "::1/128"}}}},
		{"policy", c.Policy, Policy{Affinity: "user"}},
		{"bash", c.Apps["bash"].Argv, []string{"bash", "-l"}},
		{"echo", c.Apps["echo"].AllowArgs, true},
		{"demo", c.Users["demo"], User{KeysFile: "keys/demo.pub", Groups: []string{"staff"}}},
		{"path", c.Path, "config.toml.example"},
		{"nodes", c.NodeNames(), []string{"broker", "gw1", "gw2", "s1", "s2"}},
		{"demo apps", c.AppsFor("demo"), allApps},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	for name, app := range c.Apps {
		if app.Description == "" || app.User != "nobody" {
			t.Errorf("app %s: description %q, user %q", name, app.Description, app.User)
		}
	}
}

// TestExampleCommentedUser checks the example's commented-out user is
// valid once uncommented.
func TestExampleCommentedUser(t *testing.T) {
	ex := readExample(t)
	i := strings.Index(ex, "# [user.alice]")
	if i < 0 {
		t.Fatal("the example lost its commented-out user")
	}
	src := ex[:i] + strings.ReplaceAll(ex[i:], "\n# ", "\n")[2:]
	c, err := Parse("example", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Users["alice"].Keys) != 1 || !reflect.DeepEqual(c.AppsFor("alice"), []string{"htop", "top"}) {
		t.Errorf("alice = %+v", c.Users["alice"])
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(readExample(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path {
		t.Errorf("Path = %q, want %q", c.Path, path)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[server.s1]\nmax_sessions = \"ten\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if want := bad + ":2:1: server.s1.max_sessions: incompatible types"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load(bad) = %v, want a line %q", err, want)
	}

	_, err = Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestParseDefaultsKeepExplicitValues(t *testing.T) {
	src := `state_dir = "/srv/sy"
[broker]
listen = "10.0.0.1:7000"
report_interval = "500ms"
[gateway.g]
listen = "0.0.0.0:22"
address = "gw.example.com:22"
capacity = 5
host_key = "/etc/sy/host"
[server.s]
listen = "10.0.0.2:7101"
max_sessions = 7
apps = ["a"]
[app.a]
argv = ["a"]
[app.b]
argv = ["b"]
`
	c, err := Parse("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		StateDir: "/srv/sy",
		Broker:   Broker{Listen: "10.0.0.1:7000", Admin: DefaultAdmin, ReportInterval: 500 * time.Millisecond, Reservation: 30 * time.Second},
		Gateways: map[string]Gateway{"g": {Listen: "0.0.0.0:22", Address: "gw.example.com:22", HostKey: "/etc/sy/host", Capacity: 5, Redirect: RedirectHint}},
		Servers:  map[string]Server{"s": {Listen: "10.0.0.2:7101", MaxSessions: 7, Apps: []string{"a"}}},
		Apps:     map[string]App{"a": {Argv: []string{"a"}}, "b": {Argv: []string{"b"}}},
		Policy:   Policy{Affinity: "user"},
		Path:     "t",
		Hash:     hashOf([]byte(src)),
		pos:      c.pos,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

// base is a minimal sound config the tests add to.
const base = `[gateway.gw1]
listen = "127.0.0.1:2222"

[server.s1]
listen = "127.0.0.1:7101"

[app.top]
argv = ["top"]
`

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name  string
		src   string
		wants []string
	}{
		{"unknown key", base + "[server.s2]\nlisten = \"127.0.0.1:7102\"\n§listn = \"x\"\n",
			[]string{"unknown key server.s2.listn (did you mean listen?)"}},
		{"unknown key far from any", "§zzzzzz = 1\n" + base,
			[]string{"unknown key zzzzzz (known keys: state_dir, broker, brokers, gateway, server, app, user, group, region, policy, auth, etcd, recording, audit, limits)"}},
		{"unknown table reported once", base + "§[apps.x]\nargv = [\"x\"]\n[apps.y]\n",
			[]string{"unknown key apps (did you mean app?)"}},
		{"unknown inline key", base + "[user.u]\nkeys = []\n[group.g]\napps = []\n§members = [\"u\"]\n",
			[]string{"unknown key group.g.members"}},
		{"wrong type", base + "[server.s2]\nlisten = \"127.0.0.1:7102\"\n§max_sessions = \"ten\"\n",
			[]string{"server.s2.max_sessions: incompatible types: TOML value has type string; destination has type integer"}},
		{"wrong type for a list", base + "[app.x]\n  §argv = \"x\"\n", []string{"app.x.argv: incompatible types"}},
		{"bad duration", base + "[broker]\n§report_interval = \"soon\"\n", []string{`broker.report_interval: invalid duration: "soon": want a number and a unit`}},
		{"unclosed header", base + "[server.s2§\nlisten = \"127.0.0.1:7102\"\n", []string{"expected '.' or ']'"}},
		{"missing value", base + "[server.s2]\nlisten =§\n", []string{"expected value"}},
		{"bad escape", "a = \"§\\q\"\n", []string{"invalid escape"}},
		{"after a byte order mark", "\ufeffa = 1\nb = 1§ = 2\n", []string{"expected a top-level item to end"}},
		{"duplicate key", base + "[app.x]\nargv = [\"x\"]\n§argv = [\"y\"]\n", []string{"already been defined"}},
		{"duplicate table", base + "[§server.s1]\nlisten = \"127.0.0.1:7102\"\n", []string{"already been defined"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, tc.src, tc.wants...)
		})
	}
}

func TestParseReportsEverythingAtOnce(t *testing.T) {
	src := `state_dir = "/tmp/x"
[broker]
§report_interval = "0s"

§[gateway.broker]
listen = "127.0.0.1:2222"
§capcity = 3

[server.s1]
§listen = "127.0.0.1"
§apps = ["top", "htop"]

§[app.top]
description = "no argv"

[user.alice]
§groups = ["nobody"]
`
	checkProblems(t, src,
		"broker.report_interval: must be positive",
		`gateway.broker: node name "broker" is already taken by [broker]`,
		"unknown key gateway.broker.capcity (did you mean capacity?)",
		`server.s1.listen: invalid address "127.0.0.1"`,
		`server.s1.apps: unknown app "htop"`,
		"app.top.argv: is required",
		`user.alice.groups: unknown group "nobody"`,
	)
}

func FuzzParse(f *testing.F) {
	example := readExample(f)
	f.Add(example)
	f.Add(example[:len(example)/2])
	f.Add(strings.Replace(example, "[server.s2]", "[server.s1]", 1))
	f.Add(strings.Replace(example, "max_sessions = 100", "max_sessions = \"ten\"", 1))
	f.Add(strings.Replace(example, `argv = ["top"]`, `argv = ["top"`, 1))
	f.Add(strings.Replace(example, `"2s"`, `"-2s"`, 1))
	f.Add(base + "[user.u]\nkeys = [\"ssh-ed25519 AAAA\"]\ngroups = [\"g\"]\n[app.'x y']\nenv = {\"=\" = \"\"}\n")
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse("fuzz.toml", []byte(src))
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one", c, err)
		}
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("error %v is not a non-empty *Error", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
	})
}

// A wrong type must not hide the file's other problems.
func TestWrongTypesDoNotHideOtherProblems(t *testing.T) {
	src := "[broker]\nlisen = \"x\"\n[gateway.g]\nlisten = \"127.0.0.1:2222\"\ncapacity = \"many\"\n" +
		"[server.s]\nlisten = \"127.0.0.1:7101\"\nmax_sessions = \"ten\"\napps = [\"ghost\"]\n[app.top]\nargv = \"top\"\n"
	_, err := Parse("t.toml", []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		"t.toml:2:1: unknown key broker.lisen",
		"t.toml:5:1: gateway.g.capacity: incompatible types",
		"t.toml:8:1: server.s.max_sessions: incompatible types",
		"t.toml:9:1: server.s.apps: unknown app \"ghost\"",
		"t.toml:11:1: app.top.argv: incompatible types",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "argv: is required") {
		t.Errorf("a wrong-typed argv is also reported missing:\n%v", err)
	}
}
