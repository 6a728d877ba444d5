package e2e

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
)

// signCert signs a user certificate for key with ca: principal alice,
// valid from a minute ago for five minutes unless edit changes it.
func signCert(t *testing.T, ca, key ssh.Signer, edit func(*ssh.Certificate)) ssh.Signer {
	t.Helper()
	now := time.Now()
	cert := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.UserCert, KeyId: "e2e", ValidPrincipals: []string{"alice"},
		ValidAfter: uint64(now.Add(-time.Minute).Unix()), ValidBefore: uint64(now.Add(5 * time.Minute).Unix())}
	if edit != nil {
		edit(cert)
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runEcho runs `echo hello` on client and returns its output, stderr and status.
func runEcho(t *testing.T, client *ssh.Client) (string, string, int) {
	t.Helper()
	r := Open(t, client, "echo hello", "", 0, 0)
	status, _ := r.Wait()
	out, errOut := r.Output()
	return out, errOut, status
}

func TestCertificates(t *testing.T) {
	ca, untrusted := sshtest.NewSigner(t), sshtest.NewSigner(t)
	revokedKey, revokedByFP := sshtest.NewSigner(t), sshtest.NewSigner(t)
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"},
		Extra: "[auth]\ntrusted_user_ca_keys = [\"" + authorized(ca) + "\"]\n" +
			"revoked_keys = [\"" + authorized(revokedKey) + "\", \"" + ssh.FingerprintSHA256(revokedByFP.PublicKey()) + "\"]\n",
		UserConfig: map[string]string{"alice": "principals = [\"alice@corp\"]\n"}})
	good := signCert(t, ca, sshtest.NewSigner(t), func(cert *ssh.Certificate) {
		cert.ValidPrincipals = []string{"alice@corp"}
		cert.CriticalOptions = map[string]string{"source-address": "127.0.0.0/8,::1/128"}
	})
	for _, login := range []string{"alice", "echo"} {
		client, err := c.Dial("gw1", login, good)
		if err != nil {
			t.Fatalf("certificate as %s: %v", login, err)
		}
		if out, _, status := runEcho(t, client); out != "hello\n" || status != 0 {
			t.Fatalf("as %s: %q status %d", login, out, status)
		}
		client.Close()
	}
	c.WaitLog("session started", "user=alice", "app=echo")
	refused := map[string]ssh.Signer{
		"expired": signCert(t, ca, sshtest.NewSigner(t), func(cert *ssh.Certificate) {
			cert.ValidPrincipals = []string{"alice@corp"}
			cert.ValidBefore = uint64(time.Now().Add(-time.Second).Unix())
		}),
		"wrong principal (the user's name, not a principal of hers)": signCert(t, ca, sshtest.NewSigner(t), nil),
		"bob's principal for alice":                                  signCert(t, ca, sshtest.NewSigner(t), func(cert *ssh.Certificate) { cert.ValidPrincipals = []string{"bob"} }),
		"untrusted CA":                                               signCert(t, untrusted, sshtest.NewSigner(t), func(cert *ssh.Certificate) { cert.ValidPrincipals = []string{"alice@corp"} }),
		"revoked key":                                                signCert(t, ca, revokedKey, func(cert *ssh.Certificate) { cert.ValidPrincipals = []string{"alice@corp"} }),
		"revoked by fingerprint":                                     signCert(t, ca, revokedByFP, func(cert *ssh.Certificate) { cert.ValidPrincipals = []string{"alice@corp"} }),
		"source-address": signCert(t, ca, sshtest.NewSigner(t), func(cert *ssh.Certificate) {
			cert.ValidPrincipals = []string{"alice@corp"}
			cert.CriticalOptions = map[string]string{"source-address": "192.0.2.0/24"}
		}),
		"force-command": signCert(t, ca, sshtest.NewSigner(t), func(cert *ssh.Certificate) {
			cert.ValidPrincipals = []string{"alice@corp"}
			cert.CriticalOptions = map[string]string{"force-command": "echo hi"}
		}),
	}
	for name, signer := range refused {
		if client, err := c.Dial("gw1", "alice", signer); err == nil {
			client.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	if client, err := c.Dial("gw1", "alice", revokedKey); err == nil {
		client.Close()
		t.Error("revoked key accepted as a plain key")
	}
}

// TestCertificateStockSSH signs a key with ssh-keygen and logs in with
// the stock ssh client.
func TestCertificateStockSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed")
	}
	dir := shortTempDir(t)
	keygen := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	ca, key := filepath.Join(dir, "ca"), filepath.Join(dir, "key")
	keygen("-q", "-t", "ed25519", "-N", "", "-f", ca)
	keygen("-q", "-t", "ed25519", "-N", "", "-f", key)
	keygen("-q", "-s", ca, "-I", "alice-laptop", "-n", "alice", "-V", "-1m:+5m", key+".pub")
	caPub, err := os.ReadFile(ca + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"},
		Extra: "[auth]\ntrusted_user_ca_keys = [\"" + strings.TrimSpace(string(caPub)) + "\"]\n"})
	o := GatewayOpenSSH(t, c, "gw1")
	out, errOut, code := o.Run(t, nil, key, "-o", "CertificateFile="+key+"-cert.pub", o.At("alice"), "echo", "via-cert")
	if code != 0 || string(out) != "via-cert\n" {
		t.Fatalf("ssh with certificate: code %d out %q err %q", code, out, errOut)
	}
	keygen("-q", "-s", ca, "-I", "expired", "-n", "alice", "-V", "20200101:20200102", key+".pub")
	if _, errOut, code := o.Run(t, nil, key, "-o", "CertificateFile="+key+"-cert.pub", o.At("alice"), "echo", "x"); code != 255 {
		t.Fatalf("expired certificate: code %d, want 255 (%s)", code, errOut)
	}
}

func TestPasswords(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("open sesame"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCluster(t, ClusterOptions{Gateways: []string{"gw1", "gw2"}, Servers: []string{"s1"},
		GatewayConfig: map[string]string{"gw1": "password_auth = true\n"},
		UserConfig:    map[string]string{"alice": "password_hash = \"" + string(hash) + "\"\n"}})
	dial := func(gw, login, pw string) (*ssh.Client, error) {
		return ssh.Dial("tcp", c.GatewayAddr(gw), &ssh.ClientConfig{User: login, Auth: []ssh.AuthMethod{ssh.Password(pw)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	}
	client, err := dial("gw1", "alice", "open sesame")
	if err != nil {
		t.Fatalf("right password on gw1: %v", err)
	}
	if out, _, status := runEcho(t, client); out != "hello\n" || status != 0 {
		t.Fatalf("got %q, status %d", out, status)
	}
	client.Close()
	for _, tc := range []struct{ gw, login, pw string }{
		{"gw1", "alice", "open sesame!"}, {"gw1", "bob", "open sesame"}, {"gw1", "echo", "open sesame"}, {"gw2", "alice", "open sesame"},
	} {
		if client, err := dial(tc.gw, tc.login, tc.pw); err == nil {
			client.Close()
			t.Errorf("%s as %s with %q: accepted", tc.gw, tc.login, tc.pw)
		}
	}
	for gw, want := range map[string]string{"gw1": "password,publickey", "gw2": "publickey"} {
		if got := advertised(t, c.GatewayAddr(gw)); got != want {
			t.Errorf("%s advertises %s, want %s", gw, got, want)
		}
	}
	if logs := c.logText(); strings.Contains(logs, "open sesame") {
		t.Error("a password reached the logs")
	}
}

// advertised returns the methods a server at addr offers after "none".
func advertised(t *testing.T, addr string) string {
	t.Helper()
	var methods []string
	cfg := &ssh.ClientConfig{User: "alice", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		AuthCallback: func(a *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			methods = a.AllowedMethods
			return nil, errStop
		}}
	if _, err := ssh.Dial("tcp", addr, cfg); !errors.Is(err, errStop) {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return strings.Join(methods, ",")
}

var errStop = errors.New("stop")

// logText is every daemon's log so far.
func (c *Cluster) logText() string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.logs.String()
}
