package config

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
)

// UserCAKeys returns the trusted user CA keys: trusted_user_ca_keys and
// the keys in trusted_user_ca_keys_file (relative to StateDir).
func (c *Config) UserCAKeys() ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for i, line := range c.Auth.TrustedUserCAKeys {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("config: auth: trusted_user_ca_keys[%d]: %w", i, err)
		}
		keys = append(keys, pub)
	}
	if c.Auth.TrustedUserCAKeysFile == "" {
		return keys, nil
	}
	path := c.Resolve(c.Auth.TrustedUserCAKeysFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: auth: trusted_user_ca_keys_file: %w", err)
	}
	more, err := parseKeyLines(path, data)
	if err != nil {
		return nil, fmt.Errorf("config: auth: trusted_user_ca_keys_file %w", err)
	}
	return append(keys, more...), nil
}

// RevokedFingerprints returns the SHA256 fingerprints ("SHA256:...") of
// the revoked keys, whether listed as keys or as fingerprints.
func (c *Config) RevokedFingerprints() (map[string]bool, error) {
	out := map[string]bool{}
	for i, entry := range c.Auth.RevokedKeys {
		fp, err := revokedFingerprint(entry)
		if err != nil {
			return nil, fmt.Errorf("config: auth: revoked_keys[%d]: %w", i, err)
		}
		out[fp] = true
	}
	return out, nil
}

// revokedFingerprint parses one revoked_keys entry.
func revokedFingerprint(entry string) (string, error) {
	entry = strings.TrimSpace(entry)
	if fp, ok := strings.CutPrefix(entry, "SHA256:"); ok {
		if b, err := base64.RawStdEncoding.DecodeString(fp); err != nil || len(b) != 32 {
			return "", errors.New(`invalid fingerprint: want "SHA256:" and 43 base64 characters, as ssh-keygen -l prints`)
		}
		return entry, nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(entry))
	if err != nil {
		return "", fmt.Errorf("neither an authorized_keys line nor a SHA256 fingerprint: %w", err)
	}
	return ssh.FingerprintSHA256(pub), nil
}

// CheckPassword reports whether password matches hash, a bcrypt or
// argon2id PHC string, in time independent of where they differ. A
// malformed hash matches nothing. After an argon2id check of 8 MiB or
// more it returns the memory to the OS (debug.FreeOSMemory), so that a
// burst of checks does not leave the process holding their buffers.
func CheckPassword(hash, password string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		p, err := parseArgon2id(hash)
		if err != nil {
			return false
		}
		got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
		releaseArgon2(p)
		return subtle.ConstantTimeCompare(got, p.key) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// checkPasswordHash reports what is wrong with a password_hash, if anything.
func checkPasswordHash(hash string) error {
	if strings.HasPrefix(hash, "$argon2id$") {
		_, err := parseArgon2id(hash)
		return err
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf(`neither bcrypt ("$2a$", "$2b$", "$2y$") nor argon2id ("$argon2id$v=19$m=...,t=...,p=...$SALT$HASH"): %v`, err)
	}
	return nil
}

// argon2Params is a parsed argon2id PHC string.
type argon2Params struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parseArgon2id parses "$argon2id$v=19$m=65536,t=3,p=4$SALT$HASH", with
// salt and hash in unpadded standard base64.
func parseArgon2id(s string) (argon2Params, error) {
	var p argon2Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return p, errors.New(`argon2id hash must look like "$argon2id$v=19$m=65536,t=3,p=4$SALT$HASH"`)
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return p, fmt.Errorf("argon2id parameter %q: want a positive number", kv)
		}
		switch k {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > 255 {
				return p, fmt.Errorf("argon2id parameter %q: at most 255", kv)
			}
			p.threads = uint8(n)
		default:
			return p, fmt.Errorf("argon2id: unknown parameter %q", kv)
		}
	}
	if p.memory == 0 || p.time == 0 || p.threads == 0 {
		return p, errors.New("argon2id: m, t and p are all required")
	}
	if p.memory > 4<<20 {
		return p, errors.New("argon2id: m above 4194304 KiB (4 GiB)")
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return p, errors.New("argon2id: salt must be unpadded base64 of at least 8 bytes")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 {
		return p, errors.New("argon2id: hash must be unpadded base64 of at least 16 bytes")
	}
	return p, nil
}
