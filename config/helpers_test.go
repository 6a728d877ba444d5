package config

import (
	"reflect"
	"testing"
)

const access = `
[gateway.gw1]
listen = "127.0.0.1:2222"
[server.a]
listen = "127.0.0.1:7101"
apps = ["top", "vi"]
[server.b]
listen = "127.0.0.1:7102"
apps = ["vi"]
[server.c]
listen = "127.0.0.1:7103"
draining = true
[app.top]
argv = ["top"]
[app.vi]
argv = ["vi"]
[app.cat]
argv = ["cat"]
[group.all]
apps = ["*"]
[group.editors]
apps = ["vi"]
[user.root-ish]
groups = ["all"]
[user.ed]
groups = ["editors"]
apps = ["cat"]
[user.star]
apps = ["*"]
[user.none]
`

func TestAllowedAndAppsFor(t *testing.T) {
	c, err := Parse("t", []byte(access))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user string
		apps []string
	}{
		{"root-ish", []string{"cat", "top", "vi"}},
		{"ed", []string{"cat", "vi"}},
		{"star", []string{"cat", "top", "vi"}},
		{"none", nil},
		{"stranger", nil},
	}
	for _, tc := range cases {
		if got := c.AppsFor(tc.user); !reflect.DeepEqual(got, tc.apps) {
			t.Errorf("AppsFor(%s) = %v, want %v", tc.user, got, tc.apps)
		}
		for _, app := range []string{"top", "vi", "cat", "nope", "*"} {
			want := false
			for _, a := range tc.apps {
				want = want || a == app
			}
			if got := c.Allowed(tc.user, app); got != want {
				t.Errorf("Allowed(%s, %s) = %v, want %v", tc.user, app, got, want)
			}
		}
	}
}

func TestAllowedIgnoresMissingGroups(t *testing.T) {
	c := &Config{
		Apps:  map[string]App{"top": {Argv: []string{"top"}}},
		Users: map[string]User{"u": {Groups: []string{"gone"}}},
	}
	if c.Allowed("u", "top") {
		t.Error("Allowed through a group that does not exist")
	}
}

func TestServersOffering(t *testing.T) {
	c, err := Parse("t", []byte(access))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		app  string
		want []string
	}{
		{"top", []string{"a", "c"}},
		{"vi", []string{"a", "b", "c"}},
		{"cat", []string{"c"}},
		{"nope", nil},
	}
	for _, tc := range cases {
		if got := c.ServersOffering(tc.app); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ServersOffering(%s) = %v, want %v", tc.app, got, tc.want)
		}
	}
	built := &Config{Apps: map[string]App{"x": {}}, Servers: map[string]Server{"s": {}}}
	if got := built.ServersOffering("x"); !reflect.DeepEqual(got, []string{"s"}) {
		t.Errorf("server with no apps listed: ServersOffering = %v", got)
	}
}

func TestNodeNamesAndResolve(t *testing.T) {
	c, err := Parse("t", []byte(access))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.NodeNames(), []string{"a", "b", "broker", "c", "gw1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("NodeNames = %v, want %v", got, want)
	}
	cases := []struct{ in, want string }{
		{"keys/x", "/var/lib/switchyard/keys/x"},
		{"/etc/x", "/etc/x"},
		{"../x", "/var/lib/x"},
	}
	for _, tc := range cases {
		if got := c.Resolve(tc.in); got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
