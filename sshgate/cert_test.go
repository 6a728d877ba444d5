package sshgate

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
)

// certFor signs a user certificate for key's public half with ca, valid
// from an hour ago for an hour unless edit changes it.
func certFor(t *testing.T, ca, key gossh.Signer, edit func(*gossh.Certificate)) gossh.Signer {
	t.Helper()
	now := time.Now()
	cert := &gossh.Certificate{
		Key: key.PublicKey(), CertType: gossh.UserCert, KeyId: "test", ValidPrincipals: []string{"alice"},
		ValidAfter: uint64(now.Add(-time.Hour).Unix()), ValidBefore: uint64(now.Add(time.Hour).Unix()),
	}
	if edit != nil {
		edit(cert)
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCertLogsInAsPrincipalsUser(t *testing.T) {
	e := newEnv(t)
	d := e.withAuthDir()
	ca := sshtest.NewSigner(t)
	d.cas[string(ca.PublicKey().Marshal())] = true
	d.principals = map[string]string{"alice@corp": "alice"}
	cert := certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) {
		c.ValidPrincipals = []string{"alice@corp"}
		c.CriticalOptions = map[string]string{"source-address": "127.0.0.1/32,::1/128"}
	})
	for _, login := range []string{"alice", "htop"} {
		r := e.run(e.mustDial(login, cert), "htop", runOpts{})
		if r.stdout != "app=htop user=alice args=\n" {
			t.Fatalf("login %s: %+v", login, r)
		}
	}
	if _, err := e.dial("bob", cert); err == nil {
		t.Error("alice's certificate logged in as bob")
	}
}

func TestCertRefused(t *testing.T) {
	e := newEnv(t)
	d := e.withAuthDir()
	ca, untrusted, revokedCA := sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t)
	for _, k := range []gossh.Signer{ca, revokedCA} {
		d.cas[string(k.PublicKey().Marshal())] = true
	}
	revokedKey := sshtest.NewSigner(t)
	d.revoked[string(revokedKey.PublicKey().Marshal())] = true
	d.revoked[string(revokedCA.PublicKey().Marshal())] = true
	past := uint64(time.Now().Add(-2 * time.Hour).Unix())
	var srcs []string
	for _, tc := range []struct {
		name, reason string
		signer       gossh.Signer
	}{
		{"expired", "cert has expired", certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) { c.ValidBefore = past + 1 })},
		{"not yet valid", "not yet valid", certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) { c.ValidAfter = uint64(time.Now().Add(time.Hour).Unix()) })},
		{"wrong principal", "no principal", certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) { c.ValidPrincipals = []string{"bob"} })},
		{"untrusted CA", "untrusted CA", certFor(t, untrusted, sshtest.NewSigner(t), nil)},
		{"revoked key", "revoked", certFor(t, ca, revokedKey, nil)},
		{"revoked CA", "revoked", certFor(t, revokedCA, sshtest.NewSigner(t), nil)},
		{"source-address", "source-address", certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "10.1.2.3/32"}
		})},
		{"force-command", "unsupported critical option", certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) {
			c.CriticalOptions = map[string]string{"force-command": "htop"}
		})},
		{"host certificate", "not a user certificate", certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) { c.CertType = gossh.HostCert })},
	} {
		src := fmt.Sprintf("127.0.0.%d", 10+len(srcs)) // each its own source: refusals are logged a few per source
		srcs = append(srcs, src)
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.dialFrom(src, "alice", tc.signer)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.name != "source-address" && !strings.Contains(e.logs.String(), tc.reason) {
				t.Errorf("log lacks %q", tc.reason)
			}
		})
	}
	if _, err := e.dial("alice", revokedKey); err == nil {
		t.Error("revoked key accepted as a plain key")
	}
}

func TestCertValidityUsesClock(t *testing.T) {
	then := time.Now().Add(-24 * time.Hour)
	e := newEnv(t, func(s *Server) { s.Clock = func() time.Time { return then } })
	d := e.withAuthDir()
	ca := sshtest.NewSigner(t)
	d.cas[string(ca.PublicKey().Marshal())] = true
	old := certFor(t, ca, sshtest.NewSigner(t), func(c *gossh.Certificate) {
		c.ValidAfter, c.ValidBefore = uint64(then.Add(-time.Minute).Unix()), uint64(then.Add(time.Minute).Unix())
	})
	e.mustDial("alice", old)
	if _, err := e.dial("alice", certFor(t, ca, sshtest.NewSigner(t), nil)); err == nil {
		t.Error("a certificate valid only from the clock's future was accepted")
	}
}

func TestCertWithoutCertAuthorityRefused(t *testing.T) {
	e := newEnv(t)
	ca := sshtest.NewSigner(t)
	if _, err := e.dial("alice", certFor(t, ca, e.alice, nil)); err == nil {
		t.Fatal("certificate accepted by a Directory without CertAuthority")
	}
}
