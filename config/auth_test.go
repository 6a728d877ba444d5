package config

import (
	"encoding/base64"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

func TestValidateAuthRules(t *testing.T) {
	gw2 := base + "[gateway.gw2]\nlisten = \"127.0.0.1:2223\"\n"
	cases := []struct{ name, src, want string }{
		{"handshake_timeout negative", gw2 + "§handshake_timeout = \"-1s\"\n", "gateway.gw2.handshake_timeout: must not be negative"},
		{"max_auth_tries negative", gw2 + "§max_auth_tries = -1\n", "gateway.gw2.max_auth_tries: must not be negative"},
		{"auth_fail_limit negative", gw2 + "§auth_fail_limit = -1\n", "gateway.gw2.auth_fail_limit: must not be negative"},
		{"auth_fail_window negative", gw2 + "§auth_fail_window = \"-1m\"\n", "gateway.gw2.auth_fail_window: must not be negative"},
		{"max_conns_per_source negative", gw2 + "§max_conns_per_source = -1\n", "gateway.gw2.max_conns_per_source: must not be negative"},
		{"max_sessions_per_user negative", gw2 + "§max_sessions_per_user = -1\n", "gateway.gw2.max_sessions_per_user: must not be negative"},
		{"max_channels_per_conn negative", gw2 + "§max_channels_per_conn = -1\n", "gateway.gw2.max_channels_per_conn: must not be negative"},
		{"idle_timeout negative", base + "[app.x]\nargv = [\"x\"]\n§idle_timeout = \"-1s\"\n", "app.x.idle_timeout: must not be negative"},
		{"CA key bad", base + "[auth]\n§trusted_user_ca_keys = [\"ssh-ed25519 nope\"]\n", "auth.trusted_user_ca_keys: [0]: invalid public key"},
		{"revoked entry bad", base + "[auth]\n§revoked_keys = [\"SHA256:short\"]\n", "auth.revoked_keys: [0]: invalid fingerprint"},
		{"revoked entry junk", base + "[auth]\n§revoked_keys = [\"junk\"]\n", "auth.revoked_keys: [0]: neither an authorized_keys line"},
		{"password hash bad", base + "[user.u]\n§password_hash = \"secret\"\n", "user.u.password_hash: neither bcrypt"},
		{"argon2 hash bad", base + "[user.u]\n§password_hash = \"$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n", "user.u.password_hash: argon2id parameter"},
		{"principal of two users", base + "[user.a]\nprincipals = [\"p\"]\n[user.b]\n§principals = [\"p\"]\n", `user.b.principals: principal "p" also logs in as user "a"`},
		{"principal is another user's name", base + "[user.a]\n[user.b]\n§principals = [\"a\"]\n", `principal "a" also logs in as user "a"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkProblems(t, tc.src, tc.want) })
	}
}

func TestValidateAuthAccepts(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	src := "[gateway.gw1]\nlisten = \"127.0.0.1:2222\"\npassword_auth = true\nhandshake_timeout = \"5s\"\nmax_auth_tries = 3\n" +
		"auth_fail_limit = 5\nauth_fail_window = \"10m\"\nmax_conns_per_source = 4\nmax_sessions_per_user = 2\nmax_channels_per_conn = 3\n" +
		"[server.s1]\nlisten = \"127.0.0.1:7101\"\n[app.top]\nargv = [\"top\"]\nidle_timeout = \"30m\"\n" +
		"[auth]\ntrusted_user_ca_keys = [\"" + key1 + "\"]\nrevoked_keys = [\"" + key2 + "\", \"" + fingerprint(t, key1) + "\"]\n" +
		"[user.u]\nprincipals = [\"u@corp\", \"u\"]\npassword_hash = \"" + string(hash) + "\"\n"
	c, err := Parse("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gateways["gw1"]
	if !g.PasswordAuth || g.MaxSessionsPerUser != 2 || g.AuthFailWindow.Minutes() != 10 || c.Apps["top"].IdleTimeout.Minutes() != 30 {
		t.Errorf("gateway %+v", g)
	}
	cas, err := c.UserCAKeys()
	if err != nil || len(cas) != 1 {
		t.Errorf("UserCAKeys = %v, %v", cas, err)
	}
	rev, err := c.RevokedFingerprints()
	if err != nil || len(rev) != 2 || !rev[fingerprint(t, key1)] || !rev[fingerprint(t, key2)] {
		t.Errorf("RevokedFingerprints = %v, %v", rev, err)
	}
}

func TestCheckPassword(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	salt := []byte("saltsaltsalt")
	key := argon2.IDKey([]byte("right"), salt, 1, 64, 1, 32)
	a2 := "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	for _, hash := range []string{string(bc), a2} {
		if err := checkPasswordHash(hash); err != nil {
			t.Errorf("checkPasswordHash(%q): %v", hash, err)
		}
		if !CheckPassword(hash, "right") {
			t.Errorf("%.10s: right password refused", hash)
		}
		for _, wrong := range []string{"wrong", "", "right "} {
			if CheckPassword(hash, wrong) {
				t.Errorf("%.10s: %q accepted", hash, wrong)
			}
		}
	}
	for _, bad := range []string{"", "right", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$", "$argon2i$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)} {
		if CheckPassword(bad, "right") {
			t.Errorf("malformed hash %q matched", bad)
		}
	}
}

func TestDummyHash(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString([]byte("saltsaltsalt"))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	cheap := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	dear := "$argon2id$v=19$m=128,t=2,p=2$" + salt + "$" + key
	bc, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost+1)
	cases := []struct {
		name   string
		hashes []string
		want   string // prefix of the dummy
	}{
		{"costliest argon2id wins over bcrypt", []string{string(bc), cheap, dear, "junk"}, "$argon2id$v=19$m=128,t=2,p=2$"},
		{"bcrypt at the highest cost", []string{string(bc)}, "$2a$10$"},
		{"nothing configured: bcrypt default", nil, "$2a$10$"},
	}
	for _, tc := range cases {
		got, err := DummyHash(tc.hashes)
		if err != nil || len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
			t.Errorf("%s: DummyHash = %q, %v; want prefix %q", tc.name, got, err, tc.want)
			continue
		}
		if err := checkPasswordHash(got); err != nil {
			t.Errorf("%s: dummy %q malformed: %v", tc.name, got, err)
		}
	}
	high, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.DefaultCost+1)
	if got, _ := DummyHash([]string{string(high)}); got[:7] != "$2a$11$" {
		t.Errorf("bcrypt cost 11 configured: dummy %q", got)
	}
}
