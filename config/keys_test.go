package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestEnsureKeyCreatesOnceThenReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "keys", "s1")
	first, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.PublicKey().Type(); got != ssh.KeyAlgoED25519 {
		t.Errorf("key type %s, want ed25519", got)
	}
	modes := map[string]os.FileMode{
		path:                             0o600,
		path + ".pub":                    0o644,
		filepath.Dir(path):               0o700 | os.ModeDir,
		filepath.Dir(filepath.Dir(path)): 0o700 | os.ModeDir,
	}
	for p, want := range modes {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	priv, _ := os.ReadFile(path)
	if !bytes.HasPrefix(priv, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("private key is not in OpenSSH format:\n%s", priv)
	}
	pubLine, _ := os.ReadFile(path + ".pub")
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil || !bytes.Equal(pub.Marshal(), first.PublicKey().Marshal()) {
		t.Errorf(".pub = %q (%v), not the key's public half", pubLine, err)
	}

	second, err := EnsureKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.PublicKey().Marshal(), second.PublicKey().Marshal()) {
		t.Error("second EnsureKey returned a different key")
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, priv) {
		t.Error("second EnsureKey rewrote the key file")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 2 {
		t.Errorf("key directory holds %d files, want 2 (no temporaries left)", len(entries))
	}

	// A lost .pub is written again from the key.
	os.Remove(path + ".pub")
	if _, err := EnsureKey(path); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path + ".pub"); !bytes.Equal(again, pubLine) {
		t.Errorf(".pub rewritten as %q, want %q", again, pubLine)
	}
}

func TestEnsureKeyNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("EnsureKey on garbage = %v, want an error naming the file", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "not a key" {
		t.Errorf("file overwritten: %q", data)
	}
	if _, err := os.Stat(path + ".pub"); !os.IsNotExist(err) {
		t.Errorf(".pub written for a bad key: %v", err)
	}
}

func TestNodeKey(t *testing.T) {
	state := t.TempDir()
	c, err := Parse("t", []byte(`state_dir = "`+state+`"
[broker]
public_key = "`+key1+`"
`+gw+srv+app))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NodeKey("broker")
	if err != nil || ssh.FingerprintSHA256(pub) != fingerprint(t, key1) {
		t.Errorf("NodeKey(broker) = %v, %v", pub, err)
	}
	if _, err := c.NodeKey("s1"); err == nil || !strings.Contains(err.Error(), "s1.pub") {
		t.Errorf("NodeKey(s1) without a file = %v, want an error naming s1.pub", err)
	}
	if got, want := c.NodeSignerPath("s1"), filepath.Join(state, "keys", "s1"); got != want {
		t.Errorf("NodeSignerPath = %q, want %q", got, want)
	}
	signer, err := EnsureKey(c.NodeSignerPath("s1"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err = c.NodeKey("s1")
	if err != nil || !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) {
		t.Errorf("NodeKey(s1) = %v, %v; want the key EnsureKey wrote", pub, err)
	}
	if _, err := c.NodeKey("nobody"); err == nil || !strings.Contains(err.Error(), "unknown node") {
		t.Errorf("NodeKey(nobody) = %v", err)
	}
}

func fingerprint(t *testing.T, line string) string {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(pub)
}

func TestUserKeys(t *testing.T) {
	key3, key4 := newKeyLine(t), newKeyLine(t)
	cases := []struct {
		name    string
		file    string // contents of keys/demo.pub; "-" for no file
		users   string
		want    map[string]string // fingerprint → user
		wantErr string
	}{
		{"file and inline",
			"# demo's keys\n\n" + key3 + "\n  \n" + `restrict,command="x" ` + key4 + "\n",
			"[user.demo]\nkeys_file = \"keys/demo.pub\"\n[user.alice]\nkeys = [\"" + key1 + "\"]\n",
			map[string]string{fingerprint(t, key3): "demo", fingerprint(t, key4): "demo", fingerprint(t, key1): "alice"}, ""},
		{"same key inline and in file", key1 + "\n",
			"[user.demo]\nkeys_file = \"keys/demo.pub\"\nkeys = [\"" + key1 + "\"]\n",
			map[string]string{fingerprint(t, key1): "demo"}, ""},
		{"missing file", "-", "[user.demo]\nkeys_file = \"keys/demo.pub\"\n", nil, "demo.pub"},
		{"bad line", key3 + "\nssh-ed25519 AAAA\n", "[user.demo]\nkeys_file = \"keys/demo.pub\"\n", nil, "demo.pub:2:"},
		{"key of two users", key1 + "\n",
			"[user.demo]\nkeys_file = \"keys/demo.pub\"\n[user.alice]\nkeys = [\"" + key1 + "\"]\n",
			nil, `belongs to both "alice" and "demo"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			if tc.file != "-" {
				os.MkdirAll(filepath.Join(state, "keys"), 0o700)
				if err := os.WriteFile(filepath.Join(state, "keys", "demo.pub"), []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Parse("t", []byte("state_dir = \""+state+"\"\n"+base+tc.users))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.UserKeys()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("UserKeys = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			byFP := map[string]string{}
			for id, user := range got {
				pub, err := ssh.ParsePublicKey([]byte(id))
				if err != nil {
					t.Fatal(err)
				}
				byFP[ssh.FingerprintSHA256(pub)] = user
			}
			if len(byFP) != len(tc.want) {
				t.Errorf("got %d keys, want %d: %v", len(byFP), len(tc.want), byFP)
			}
			for f, user := range tc.want {
				if byFP[f] != user {
					t.Errorf("key %s → %q, want %q", f, byFP[f], user)
				}
			}
		})
	}
}

// newKeyLine writes a fresh key with EnsureKey and returns its public half.
func newKeyLine(t *testing.T) string {
	t.Helper()
	signer, err := EnsureKey(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}
