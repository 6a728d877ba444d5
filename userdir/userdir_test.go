package userdir

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/ssh"

	"switchyard/config"
	"switchyard/internal/sshtest"
)

// cluster writes a config file of one gateway (offering passwords when
// passwords is set), users alice (an inline key, a certificate principal,
// a password) and bob (a keys_file, a revoked key), and apps top (idle
// timeout, default grace) and report (no grace), and loads it.
type cluster struct {
	dir                           string
	alice, bob, bobOld, ca, stray ssh.PublicKey
	aliceHash                     string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{dir: t.TempDir()}
	for _, k := range []*ssh.PublicKey{&c.alice, &c.bob, &c.bobOld, &c.ca, &c.stray} {
		*k = sshtest.NewSigner(t).PublicKey()
	}
	c.aliceHash = argon2Hash("right horse")
	keysFile := authorized(c.bob) + "# old laptop\n" + authorized(c.bobOld)
	if err := os.WriteFile(filepath.Join(c.dir, "bob.keys"), []byte(keysFile), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// aliceParams are the argon2id parameters of alice's hash: cheap, so
// that the test is quick, and unlike any default.
const aliceParams = "m=64,t=2,p=1"

// argon2Hash hashes password with aliceParams, as a PHC string.
func argon2Hash(password string) string {
	salt := []byte("saltsaltsalt")
	key := argon2.IDKey([]byte(password), salt, 2, 64, 1, 32)
	return "$argon2id$v=19$" + aliceParams + "$" + base64.RawStdEncoding.EncodeToString(salt) + "$" +
		base64.RawStdEncoding.EncodeToString(key)
}

func authorized(k ssh.PublicKey) string { return string(ssh.MarshalAuthorizedKey(k)) }

func quoted(k ssh.PublicKey) string { return `"` + strings.TrimSpace(authorized(k)) + `"` }

func (c *cluster) load(t *testing.T, passwords bool) *config.Config {
	t.Helper()
	src := `state_dir = "` + c.dir + `"

[gateway.gw1]
listen = "127.0.0.1:2222"
password_auth = ` + map[bool]string{true: "true", false: "false"}[passwords] + `

[server.s1]
listen = "127.0.0.1:7101"

[app.top]
argv = ["top"]
idle_timeout = "30m"

[app.report]
argv = ["report"]
grace = "0s"

[auth]
trusted_user_ca_keys = [` + quoted(c.ca) + `]
revoked_keys = [` + quoted(c.bobOld) + `]

[user.alice]
keys = [` + quoted(c.alice) + `]
principals = ["alice@corp"]
password_hash = "` + c.aliceHash + `"

[user.bob]
keys_file = "bob.keys"
`
	path := filepath.Join(c.dir, "config.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDirectoryAnswersFromTheConfig(t *testing.T) {
	c := newCluster(t)
	d, err := New(c.load(t, true))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  ssh.PublicKey
		want string
	}{{c.alice, "alice"}, {c.bob, "bob"}, {c.bobOld, "bob"}, {c.stray, ""}, {c.ca, ""}} {
		if u, ok := d.UserForKey(tc.key); u != tc.want || ok != (tc.want != "") {
			t.Errorf("UserForKey(%s) = %q, %v; want %q", ssh.FingerprintSHA256(tc.key), u, ok, tc.want)
		}
	}
	if !d.IsUser("alice") || !d.IsUser("bob") || d.IsUser("top") || d.IsUser("carol") {
		t.Error("IsUser answers wrong")
	}
	if !d.IsApp("top") || !d.IsApp("report") || d.IsApp("alice") || d.IsApp("resume") {
		t.Error("IsApp answers wrong")
	}
	if !d.IsUserAuthority(c.ca) || d.IsUserAuthority(c.alice) {
		t.Error("IsUserAuthority answers wrong")
	}
	for p, want := range map[string]string{"alice@corp": "alice", "alice": "", "bob": "bob", "carol": ""} {
		if u, ok := d.UserForPrincipal(p); u != want || ok != (want != "") {
			t.Errorf("UserForPrincipal(%q) = %q, %v; want %q", p, u, ok, want)
		}
	}
	if !d.IsRevoked(c.bobOld) || d.IsRevoked(c.bob) || d.IsRevoked(c.alice) {
		t.Error("IsRevoked answers wrong")
	}
	for app, want := range map[string]struct {
		idle   time.Duration
		detach bool
	}{"top": {30 * time.Minute, true}, "report": {0, false}, "nope": {0, false}} {
		if idle, detach := d.IdleTimeout(app); idle != want.idle || detach != want.detach {
			t.Errorf("IdleTimeout(%s) = %v, %v; want %v, %v", app, idle, detach, want.idle, want.detach)
		}
	}
}

// Passwords: alice's hash decides for her; bob, who has none, and an
// unknown user are refused after a check of the dummy hash, which costs
// what alice's does. Without a gateway offering passwords no dummy is
// computed (it costs a hash at every load).
func TestDirectoryPasswords(t *testing.T) {
	c := newCluster(t)
	d, err := New(c.load(t, true))
	if err != nil {
		t.Fatal(err)
	}
	if !d.CheckPassword("alice", "right horse") || d.CheckPassword("alice", "wrong horse") {
		t.Error("alice's password not checked against her hash")
	}
	if d.CheckPassword("bob", "") || d.CheckPassword("carol", "right horse") {
		t.Error("a user without a hash logged in")
	}
	if !strings.HasPrefix(d.dummy, "$argon2id$v=19$"+aliceParams+"$") || d.dummy == c.aliceHash {
		t.Errorf("dummy hash %q, want a new one with alice's parameters %s", d.dummy, aliceParams)
	}
	d, err = New(c.load(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if d.dummy != "" {
		t.Error("a dummy hash computed where no gateway offers passwords")
	}
	if d.CheckPassword("carol", "") {
		t.Error("an unknown user logged in with an empty password")
	}
}

// A keys_file that cannot be read fails the load, so that a reload keeps
// the directory it has rather than locking bob out.
func TestDirectoryRefusesAnUnreadableKeysFile(t *testing.T) {
	c := newCluster(t)
	cfg := c.load(t, false)
	if err := os.Remove(filepath.Join(c.dir, "bob.keys")); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "keys_file") {
		t.Fatalf("New without bob's keys_file: %v", err)
	}
}
