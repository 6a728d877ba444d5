package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateEtcdRules(t *testing.T) {
	ep := "[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\n"
	cases := []struct{ name, src, want string }{
		{"table without endpoints", base + "§[etcd]\nprefix = \"/x/\"\n", "etcd.endpoints: is required"},
		{"endpoint not a URL", base + "[etcd]\n§endpoints = [\"http://[::1\"]\n", `etcd.endpoints: [0]: invalid URL`},
		{"endpoint scheme", base + "[etcd]\n§endpoints = [\"http://a:2379\", \"unix:///run/etcd.sock\"]\n", `etcd.endpoints: [1]: "unix:///run/etcd.sock": use an http:// or https:// URL`},
		{"endpoint bare host", base + "[etcd]\n§endpoints = [\"10.0.0.1:2379\"]\n", "use an http:// or https:// URL"},
		{"endpoint no host", base + "[etcd]\n§endpoints = [\"https://:2379\"]\nca = \"ca.pem\"\n", `[0]: "https://:2379": no host`},
		{"endpoint path", base + "[etcd]\n§endpoints = [\"http://a:2379/v3\"]\n", "only scheme://host:port"},
		{"https without ca", base + "§[etcd]\nendpoints = [\"https://a:2379\"]\n", "etcd.ca: is required with https endpoints"},
		{"cert without key", base + ep + "§cert = \"broker.pem\"\n", "etcd.cert: needs key"},
		{"key without cert", base + ep + "§key = \"broker.key\"\n", "etcd.key: needs cert"},
		{"username without password_file", base + ep + "§username = \"sy\"\n", "etcd.username: needs password_file"},
		{"password_file without username", base + ep + "§password_file = \"etcd.pw\"\n", "etcd.password_file: needs username"},
		{"prefix without leading slash", base + ep + "§prefix = \"sy/\"\n", `etcd.prefix: "sy/" must start and end with '/'`},
		{"prefix without trailing slash", base + ep + "§prefix = \"/sy\"\n", `etcd.prefix: "/sy" must start and end`},
		{"dial_timeout negative", base + ep + "§dial_timeout = \"-1s\"\n", "etcd.dial_timeout: must be positive"},
		{"lease_ttl too short", base + ep + "§lease_ttl = \"500ms\"\n", "etcd.lease_ttl: must be whole seconds, at least \"1s\""},
		{"lease_ttl fractional", base + ep + "§lease_ttl = \"2500ms\"\n", "etcd.lease_ttl: must be whole seconds"},
		{"lease_ttl negative", base + ep + "§lease_ttl = \"-3s\"\n", "etcd.lease_ttl: must be whole seconds"},
		{"unknown key", base + ep + "§password = \"x\"\n", "unknown key etcd.password (known keys: endpoints, ca,"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, tc.src, tc.want) })
	}
}

func TestEtcdDefaultsAndPassword(t *testing.T) {
	dir := t.TempDir()
	src := "state_dir = \"" + dir + "\"\n" + base +
		"[etcd]\nendpoints = [\"https://10.0.0.1:2379\", \"https://10.0.0.2:2379\"]\nca = \"etcd/ca.pem\"\n" +
		"cert = \"etcd/broker.pem\"\nkey = \"etcd/broker.key\"\nusername = \"sy\"\npassword_file = \"etcd/pw\"\n"
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Etcd
	if !e.Enabled() || e.Prefix != "/switchyard/" || e.DialTimeout != 2*time.Second || e.LeaseTTL != 3*time.Second {
		t.Errorf("defaults: %+v", e)
	}
	if _, err := c.EtcdPassword(); err == nil {
		t.Errorf("EtcdPassword of a missing file: no error")
	}
	if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "etcd", "pw")
	if err := os.WriteFile(pw, []byte("s3cret\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := c.EtcdPassword(); err != nil || got != "s3cret" {
		t.Errorf("EtcdPassword = %q, %v", got, err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings for a private password file: %v", w)
	}
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0].String(), "t.toml:") || !strings.Contains(w[0].Msg, "etcd.password_file: warning: ") {
		t.Errorf("warnings for a world-readable password file: %v", w)
	}

	// Without [etcd], nothing is filled in.
	c, err = Parse("t.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Etcd.Enabled() || c.Etcd.Prefix != "" {
		t.Errorf("no [etcd]: %+v", c.Etcd)
	}
}

// TestExampleCommentedEtcd checks the example's commented-out [etcd]
// table is valid once uncommented.
func TestExampleCommentedEtcd(t *testing.T) {
	ex := readExample(t)
	i := strings.Index(ex, "# [etcd]\n")
	if i < 0 {
		t.Fatal("the example lost its commented-out [etcd] table")
	}
	end := i + strings.Index(ex[i:], "\n\n")
	src := ex[:i] + strings.ReplaceAll("\n"+ex[i:end], "\n# ", "\n")[1:] + ex[end:]
	c, err := Parse("example", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Etcd
	if len(e.Endpoints) != 3 || e.CA == "" || e.Key == "" || e.PasswordFile == "" || e.LeaseTTL != 3*time.Second {
		t.Errorf("etcd = %+v", e)
	}
}
