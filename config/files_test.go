package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FileProblems reports, at the key naming each file, a missing or
// malformed keys file, a key two users hold across keys and keys_file, two
// nodes with one public key (inline or in keys/NAME.pub); it warns of a
// node whose key is nowhere yet.
func TestFileProblems(t *testing.T) {
	state := t.TempDir()
	keys := filepath.Join(state, "keys")
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(keys, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(keys, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shared := newKeyLine(t)
	write("bob.pub", "# bob\n"+shared+"\n")
	write("carol.pub", "ssh-ed25519 AAAA\n")
	write("broker.pub", newKeyLine(t)+"\n")
	write("gw1.pub", key2+"\n") // the same as s1's inline key
	src := `state_dir = "` + state + `"
[gateway.gw1]
listen = "127.0.0.1:2222"

§[server.s1]
listen = "127.0.0.1:7101"
public_key = "` + key2 + `"

§[server.s2]
listen = "127.0.0.1:7102"

[app.top]
argv = ["top"]

[user.alice]
keys = ["` + shared + `"]
[user.bob]
§keys_file = "keys/bob.pub"
[user.carol]
§keys_file = "keys/carol.pub"
[user.dave]
§keys_file = "keys/nobody.pub"

[auth]
§trusted_user_ca_keys_file = "ca.pub"
`
	text, marks := marked(src)
	c, err := Parse("t.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	probs, warns := c.FileProblems()
	want := []struct{ at, msg string }{
		{marks[0], "server.s1: node s1 has the same public key as node gw1"},
		{marks[2], `user.bob.keys_file: ` + filepath.Join(keys, "bob.pub") + `: key SHA256:`},
		{marks[3], "user.carol.keys_file: " + filepath.Join(keys, "carol.pub") + ":1:"},
		{marks[4], "user.dave.keys_file: " + filepath.Join(keys, "nobody.pub") + " does not exist"},
		{marks[5], "auth.trusted_user_ca_keys_file: " + filepath.Join(state, "ca.pub") + " does not exist"},
	}
	if len(probs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(want), &Error{Problems: probs})
	}
	for i, w := range want {
		p := probs[i]
		if got := at(p); got != w.at || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d: %s %q, want %s %q", i, got, p.Msg, w.at, w.msg)
		}
	}
	if !strings.Contains(probs[1].Msg, `also belongs to user "alice"`) {
		t.Errorf("shared key: %q", probs[1].Msg)
	}
	if len(warns) != 1 || at(warns[0]) != marks[1] ||
		!strings.Contains(warns[0].Msg, "server.s2: warning: no public_key and no "+filepath.Join(keys, "s2.pub")) {
		t.Errorf("warnings: %v", warns)
	}
}

// Two nodes with the same inline public_key are refused without reading
// any file.
func TestSameInlineNodeKey(t *testing.T) {
	checkProblems(t, "[broker]\npublic_key = \""+key1+"\"\n"+base+"[server.s2]\nlisten = \"127.0.0.1:7102\"\n§public_key = \""+key1+"\"\n",
		"server.s2.public_key: is the same key as broker.public_key: each node needs its own key")
}

// at is where p is, as marked spells it.
func at(p Problem) string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }
