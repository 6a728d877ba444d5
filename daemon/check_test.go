package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkRun runs `NAME check ARGS...` as the binary would and returns its
// exit status, stdout and stderr.
func checkRun(t *testing.T, name string, run RunFunc, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"check"}, args...), Env{Stdout: &stdout, Stderr: &stderr})
	code := Exit(name, err, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// `check -node NAME` checks what that node will use on this host, and
// every problem comes out as file:line:col with exit status 1: an app's
// missing or non-executable program, a run-as user who does not exist, a
// missing keys file, a host key that cannot be created; the same file is
// ok for a node that uses none of it.
func TestCheckNode(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`state_dir = %q

[gateway.gw1]
listen = "127.0.0.1:2222"
host_key = %q

[gateway.gw2]
listen = "127.0.0.1:2223"

[server.s1]
listen = "127.0.0.1:7101"
apps = ["cat", "ghost", "data", "stranger"]

[server.s2]
listen = "127.0.0.1:7102"
apps = ["cat"]

[app.cat]
argv = ["cat"]
user = "nobody"
[app.ghost]
argv = ["/nonexistent/prog"]
user = "nobody"
[app.data]
argv = ["/etc/passwd"]
user = "nobody"
[app.stranger]
argv = ["cat"]
user = "no-such-user-here"
`, state, filepath.Join(notDir, "hk"))
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := checkRun(t, "appd", Appd, "-config", path, "-node", "s1")
	want := []string{
		path + `:22:1: app.ghost.argv: program "/nonexistent/prog"`,
		path + `:25:1: app.data.argv: program "/etc/passwd" is not executable by user "nobody"`,
		path + `:29:1: app.stranger.user: app "stranger": run-as user "no-such-user-here" does not exist on this server`,
	}
	if code != 1 || !containsInOrder(stderr, want) {
		t.Fatalf("appd check -node s1: exit %d, stderr:\n%s\nwant, in order:\n%s", code, stderr, strings.Join(want, "\n"))
	}
	if strings.Contains(stderr, "app.cat") {
		t.Errorf("a sound app is reported:\n%s", stderr)
	}

	code, stdout, stderr := checkRun(t, "appd", Appd, "-config", path, "-node", "s2")
	if code != 0 || !strings.Contains(stdout, path+": ok") {
		t.Fatalf("appd check -node s2: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	code, _, stderr = checkRun(t, "slave", Slave, "-config", path, "-node", "gw1")
	if code != 1 || !strings.Contains(stderr, path+":5:1: gateway.gw1.host_key: "+filepath.Join(notDir, "hk")+" does not exist and cannot be created") {
		t.Fatalf("slave check -node gw1: exit %d, stderr:\n%s", code, stderr)
	}
	if code, _, stderr := checkRun(t, "slave", Slave, "-config", path, "-node", "gw2"); code != 0 {
		t.Fatalf("slave check -node gw2: exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = checkRun(t, "broker", Broker, "-config", path, "-node", "broker", "-state", filepath.Join(notDir, "state"))
	if code != 1 || !strings.Contains(stderr, path+":1:1: state_dir: the broker keeps its state here: ") {
		t.Fatalf("broker check -node broker with a state dir under a file: exit %d, stderr:\n%s", code, stderr)
	}
	if code, _, stderr := checkRun(t, "broker", Broker, "-config", path, "-node", "nobody"); code != 2 {
		t.Fatalf("check -node of no node: exit %d, stderr:\n%s", code, stderr)
	}
}

// Plain check reads the files the config names, and reports every
// problem of the file at once, in file order, with exit status 1.
func TestCheckReportsEverything(t *testing.T) {
	dir := t.TempDir()
	src := fmt.Sprintf(`state_dir = %q
[broker]
report_interval = 2

[gateway.gw1]
listen = "127.0.0.1:2222"
alive_interval = "soon"

[server.s1]
listen = "127.0.0.1:7101"

[app.cat]
argv = ["cat"]

[user.u]
keys_file = "keys/u.pub"
`, dir)
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := checkRun(t, "broker", Broker, "-config", path)
	// The wrong values and the missing keys file, in one run, in file
	// order, the same every time.
	want := []string{
		path + `:3:1: broker.report_interval: a bare 2 is not a duration: a duration needs a unit, e.g. "2s"`,
		path + `:7:1: gateway.gw1.alive_interval: invalid duration: "soon"`,
		path + ":16:1: user.u.keys_file: " + filepath.Join(dir, "keys", "u.pub") + " does not exist",
	}
	if code != 1 || !containsInOrder(stderr, want) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if !strings.HasPrefix(line, path+":") {
			t.Fatalf("a line that does not start with the file's position: %q", line)
		}
	}
	for range 5 {
		if _, _, again := checkRun(t, "broker", Broker, "-config", path); again != stderr {
			t.Fatalf("a second run differs:\n%s\nthen:\n%s", stderr, again)
		}
	}
}

// containsInOrder reports whether s holds each of want, in that order.
func containsInOrder(s string, want []string) bool {
	for _, w := range want {
		i := strings.Index(s, w)
		if i < 0 {
			return false
		}
		s = s[i+len(w):]
	}
	return true
}
