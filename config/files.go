package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/ssh"
)

// FileProblems reads the files the config names, which Validate does not,
// and returns what is wrong with them, each at the key naming the file,
// in file order. Problems: a keys_file or trusted_user_ca_keys_file that
// cannot be read or holds a malformed line (a gateway would not start), a
// user key held by two users across keys and keys_file, two nodes with the
// same public key (inline or in keys/NAME.pub). Warnings: a node with
// neither public_key nor keys/NAME.pub, which no other node admits until
// that node's first start writes the file.
func (c *Config) FileProblems() (problems, warnings []Problem) {
	f := &fileChecker{c: c}
	f.userKeys()
	f.caFile()
	f.nodeKeys()
	sortProblems(f.probs)
	sortProblems(f.warns)
	return f.probs, f.warns
}

// fileChecker gathers FileProblems.
type fileChecker struct {
	c            *Config
	probs, warns []Problem
}

func (f *fileChecker) add(to *[]Problem, k toml.Key, format string, args ...any) {
	line, col := f.c.pos.find(k)
	msg := k.String() + ": " + fmt.Sprintf(format, args...)
	*to = append(*to, Problem{File: f.c.Path, Line: line, Col: col, Msg: msg})
}

// userKeys checks each keys_file, and that no key belongs to two users.
// Inline keys held twice are Validate's.
func (f *fileChecker) userKeys() {
	owner := map[string]string{} // marshalled key → user
	for _, name := range sortedKeys(f.c.Users) {
		u, k := f.c.Users[name], toml.Key{"user", name, "keys_file"}
		for _, line := range u.Keys {
			if pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
				owner[string(pub.Marshal())] = name
			}
		}
		if u.KeysFile == "" {
			continue
		}
		path := f.c.Resolve(u.KeysFile)
		keys, err := readKeyFile(path)
		if err != nil {
			f.add(&f.probs, k, "%v", err)
			continue
		}
		for _, pub := range keys {
			id := string(pub.Marshal())
			if other, ok := owner[id]; ok && other != name {
				f.add(&f.probs, k, "%s: key %s also belongs to user %q", path, ssh.FingerprintSHA256(pub), other)
				continue
			}
			owner[id] = name
		}
	}
}

// caFile checks trusted_user_ca_keys_file.
func (f *fileChecker) caFile() {
	if f.c.Auth.TrustedUserCAKeysFile == "" {
		return
	}
	if _, err := readKeyFile(f.c.Resolve(f.c.Auth.TrustedUserCAKeysFile)); err != nil {
		f.add(&f.probs, toml.Key{"auth", "trusted_user_ca_keys_file"}, "%v", err)
	}
}

// readKeyFile reads an authorized_keys file.
func readKeyFile(path string) ([]ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist", path)
	}
	if err != nil {
		return nil, err
	}
	return parseKeyLines(path, data)
}

// nodeKeys checks that no two nodes share a public key, and warns of
// nodes whose key is nowhere yet.
func (f *fileChecker) nodeKeys() {
	owner := map[string]string{} // marshalled key → node
	for _, name := range f.c.nodeOrder() {
		k := f.c.nodeTable(name)
		inline, _ := f.c.nodePublicKey(name)
		pub, err := f.c.NodeKey(name)
		switch {
		case inline == "" && errors.Is(err, fs.ErrNotExist):
			f.add(&f.warns, k, "warning: no public_key and no %s yet: other nodes refuse this one until its first start writes it",
				f.c.Resolve("keys/"+name+".pub"))
			continue
		case err != nil && inline != "":
			continue // an invalid inline key is Validate's
		case err != nil:
			f.add(&f.probs, k, "%v", err)
			continue
		}
		id := string(pub.Marshal())
		if other, ok := owner[id]; ok {
			f.add(&f.probs, k, "node %s has the same public key as node %s (%s): each node needs its own key",
				name, other, ssh.FingerprintSHA256(pub))
			continue
		}
		owner[id] = name
	}
}

// nodeOrder lists every node, brokers first, then gateways, then servers.
func (c *Config) nodeOrder() []string {
	names := c.BrokerNames()
	names = append(names, sortedKeys(c.Gateways)...)
	return append(names, sortedKeys(c.Servers)...)
}

// nodeTable is the table that defines node name.
func (c *Config) nodeTable(name string) toml.Key {
	if name == DefaultBroker {
		return toml.Key{"broker"}
	}
	if _, ok := c.Brokers[name]; ok {
		return toml.Key{"brokers", name}
	}
	if _, ok := c.Gateways[name]; ok {
		return toml.Key{"gateway", name}
	}
	return toml.Key{"server", name}
}
