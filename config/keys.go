package config

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// NodeKey returns the public key of node name (a broker, a gateway or a
// server): its public_key if set, else the file keys/NAME.pub in StateDir.
func (c *Config) NodeKey(name string) (ssh.PublicKey, error) {
	inline, ok := c.nodePublicKey(name)
	if !ok {
		return nil, fmt.Errorf("config: node key: unknown node %q", name)
	}
	if inline != "" {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(inline))
		if err != nil {
			return nil, fmt.Errorf("config: node key %s: public_key: %w", name, err)
		}
		return pub, nil
	}
	path := c.Resolve("keys/" + name + ".pub")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: node key %s: %w", name, err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("config: node key %s: %s: %w", name, path, err)
	}
	return pub, nil
}

// nodePublicKey returns the public_key of node name, and whether the node
// exists.
func (c *Config) nodePublicKey(name string) (string, bool) {
	if name == DefaultBroker {
		return c.Broker.PublicKey, true
	}
	if b, ok := c.Brokers[name]; ok {
		return b.PublicKey, true
	}
	if g, ok := c.Gateways[name]; ok {
		return g.PublicKey, true
	}
	if s, ok := c.Servers[name]; ok {
		return s.PublicKey, true
	}
	return "", false
}

// NodeSignerPath returns the file holding node name's private key,
// keys/NAME in StateDir; EnsureKey loads or creates it.
func (c *Config) NodeSignerPath(name string) string {
	return c.Resolve("keys/" + name)
}

// EnsureKey loads the OpenSSH private key at path. If there is no such
// file it generates an ed25519 key and writes it (mode 0600, parent
// directories 0700), with its public half in authorized_keys format at
// path+".pub" (0644). It never overwrites a file: when two processes race,
// both end up with the key of the one that wrote first. A missing .pub next
// to an existing key is written too.
func EnsureKey(path string) (ssh.Signer, error) {
	signer, _, err := EnsureKeyCreated(path)
	return signer, err
}

// EnsureKeyCreated is EnsureKey, also reporting whether this call created
// the key, for the caller to log.
func EnsureKeyCreated(path string) (ssh.Signer, bool, error) {
	signer, err := loadKey(path)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		signer, created, err = generateKey(path)
	}
	if err != nil {
		return nil, false, err
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := createFile(path+".pub", pub, 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, false, fmt.Errorf("config: ensure key: %w", err)
	}
	return signer, created, nil
}

func loadKey(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: load key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("config: load key %s: %w", path, err)
	}
	return signer, nil
}

func generateKey(path string) (ssh.Signer, bool, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("config: generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "switchyard "+filepath.Base(path))
	if err != nil {
		return nil, false, fmt.Errorf("config: generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("config: generate key: %w", err)
	}
	err = createFile(path, pem.EncodeToMemory(block), 0o600)
	if errors.Is(err, fs.ErrExist) {
		signer, err := loadKey(path) // another process won the race
		return signer, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("config: generate key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	return signer, err == nil, err
}

// createFile writes data to a new file at path, failing with fs.ErrExist if
// there is one. The file appears whole: it is written aside, then linked.
func createFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	return writeExclusive(path, data, perm) // a file system without hard links
}

// writeExclusive writes data to a new file at path, failing with
// fs.ErrExist if there is one.
func writeExclusive(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// UserKeys maps each user public key, as string(key.Marshal()), to its
// user, from the users' keys and keys_file (an authorized_keys file,
// relative to StateDir). A missing or malformed keys_file, or a key held
// by two users, is an error.
func (c *Config) UserKeys() (map[string]string, error) {
	owners := map[string]string{}
	add := func(user string, pub ssh.PublicKey) error {
		id := string(pub.Marshal())
		if other, ok := owners[id]; ok && other != user {
			return fmt.Errorf("config: user keys: key %s belongs to both %q and %q",
				ssh.FingerprintSHA256(pub), other, user)
		}
		owners[id] = user
		return nil
	}
	for _, name := range sortedKeys(c.Users) {
		u := c.Users[name]
		keys, err := c.userKeys(name, u)
		if err != nil {
			return nil, err
		}
		for _, pub := range keys {
			if err := add(name, pub); err != nil {
				return nil, err
			}
		}
	}
	return owners, nil
}

// userKeys parses one user's inline keys and keys_file.
func (c *Config) userKeys(name string, u User) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for i, line := range u.Keys {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("config: user %s: keys[%d]: %w", name, i, err)
		}
		keys = append(keys, pub)
	}
	if u.KeysFile == "" {
		return keys, nil
	}
	path := c.Resolve(u.KeysFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: user %s: keys_file: %w", name, err)
	}
	more, err := parseKeyLines(path, data)
	if err != nil {
		return nil, fmt.Errorf("config: user %s: keys_file %w", name, err)
	}
	return append(keys, more...), nil
}

// parseKeyLines parses an authorized_keys file's data, skipping blank
// lines and comments; errors name path and the line.
func parseKeyLines(path string, data []byte) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		keys = append(keys, pub)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}
