// Package userdir is the gateway's user directory: it answers, from one
// loaded config, who owns a key, which CAs and certificate principals are
// trusted, which keys are revoked, whether a password matches, and each
// app's idle timeout. A Directory never changes; a config reload builds a
// new one (sshgate.Server.SetDirectory).
//
// It implements sshgate's Directory, CertAuthority, Revocations,
// Passwords and AppLimits.
package userdir

import (
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/config"
)

// Directory answers the gateway's identity questions from one config.
type Directory struct {
	keys       map[string]string // marshalled key → user
	users      map[string]bool
	apps       map[string]bool
	cas        map[string]bool   // marshalled trusted user CA keys
	principals map[string]string // certificate principal → user
	revoked    map[string]bool   // SHA256 fingerprints
	passwords  map[string]string // user → password hash
	dummy      string            // checked for users without a hash: costs as much as the costliest one
	idle       map[string]appIdle
}

type appIdle struct {
	limit  time.Duration
	detach bool
}

// New builds the directory of cfg: its users' keys (reading keys_file),
// trusted CAs, revoked keys, password hashes and apps. A file that cannot
// be read or parsed is an error: a reload keeps the directory it has.
func New(cfg *config.Config) (*Directory, error) {
	keys, err := cfg.UserKeys()
	if err != nil {
		return nil, err
	}
	cas, err := cfg.UserCAKeys()
	if err != nil {
		return nil, err
	}
	revoked, err := cfg.RevokedFingerprints()
	if err != nil {
		return nil, err
	}
	d := &Directory{keys: keys, users: map[string]bool{}, apps: map[string]bool{}, cas: map[string]bool{},
		principals: map[string]string{}, revoked: revoked, passwords: map[string]string{}, idle: map[string]appIdle{}}
	for _, ca := range cas {
		d.cas[string(ca.Marshal())] = true
	}
	for name, u := range cfg.Users {
		d.users[name] = true
		for _, p := range u.UserPrincipals(name) {
			d.principals[p] = name
		}
		if u.PasswordHash != "" {
			d.passwords[name] = u.PasswordHash
		}
	}
	if anyPasswordAuth(cfg) { // the dummy costs one hash: only where passwords are offered
		if d.dummy, err = dummyHash(d.passwords); err != nil {
			return nil, err
		}
	}
	for name, a := range cfg.Apps {
		d.apps[name] = true
		d.idle[name] = appIdle{limit: a.IdleTimeout, detach: a.GracePeriod() > 0}
	}
	return d, nil
}

// dummyHash is a hash of a random password as costly as the costliest of
// passwords' hashes.
func dummyHash(passwords map[string]string) (string, error) {
	hashes := make([]string, 0, len(passwords))
	for _, h := range passwords {
		hashes = append(hashes, h)
	}
	return config.DummyHash(hashes)
}

// anyPasswordAuth reports whether some gateway offers passwords.
func anyPasswordAuth(cfg *config.Config) bool {
	for _, g := range cfg.Gateways {
		if g.PasswordAuth {
			return true
		}
	}
	return false
}

// UserForKey returns the user owning k (sshgate.Directory).
func (d *Directory) UserForKey(k ssh.PublicKey) (string, bool) {
	u, ok := d.keys[string(k.Marshal())]
	return u, ok
}

// IsUser reports whether name is a user (sshgate.Directory).
func (d *Directory) IsUser(name string) bool { return d.users[name] }

// IsApp reports whether name is an app (sshgate.Directory).
func (d *Directory) IsApp(name string) bool { return d.apps[name] }

// IsUserAuthority reports whether ca is a trusted user CA (sshgate.CertAuthority).
func (d *Directory) IsUserAuthority(ca ssh.PublicKey) bool { return d.cas[string(ca.Marshal())] }

// UserForPrincipal maps a certificate principal to its user (sshgate.CertAuthority).
func (d *Directory) UserForPrincipal(p string) (string, bool) {
	u, ok := d.principals[p]
	return u, ok
}

// IsRevoked reports whether key is listed in revoked_keys (sshgate.Revocations).
func (d *Directory) IsRevoked(key ssh.PublicKey) bool { return d.revoked[ssh.FingerprintSHA256(key)] }

// CheckPassword checks user's password (sshgate.Passwords); a user
// without a hash, or no user at all, costs a comparison against the dummy
// hash, as costly as the costliest configured one, all the same.
func (d *Directory) CheckPassword(user, password string) bool {
	hash, ok := d.passwords[user]
	if !ok {
		config.CheckPassword(d.dummy, password)
		return false
	}
	return config.CheckPassword(hash, password)
}

// IdleTimeout is app's idle_timeout, and whether it has a grace period
// (sshgate.AppLimits).
func (d *Directory) IdleTimeout(app string) (time.Duration, bool) {
	a := d.idle[app]
	return a.limit, a.detach
}
