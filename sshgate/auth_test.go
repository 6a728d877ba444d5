package sshgate

import (
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
)

func TestAuthRightKey(t *testing.T) {
	e := newEnv(t)
	r := e.run(e.mustDial("alice", e.alice), "htop", runOpts{})
	if r.status != 0 || r.stdout != "app=htop user=alice args=\n" {
		t.Fatalf("got %+v", r)
	}
}

func TestAuthWrongKeyRefused(t *testing.T) {
	e := newEnv(t)
	stranger := sshtest.NewSigner(t)
	if _, err := e.dial("alice", stranger); err == nil {
		t.Fatal("unknown key accepted")
	}
	logs := e.logs.String()
	for _, want := range []string{"auth refused", "login=alice", gossh.FingerprintSHA256(stranger.PublicKey()), "client=127.0.0.1:"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestAuthOtherUsersLoginRefused(t *testing.T) {
	e := newEnv(t)
	if _, err := e.dial("bob", e.alice); err == nil {
		t.Fatal("alice's key logged in as bob")
	}
}

func TestAuthUnknownLoginRefused(t *testing.T) {
	e := newEnv(t)
	if _, err := e.dial("nobody", e.alice); err == nil {
		t.Fatal("login that is neither user nor app accepted")
	}
}

func TestAuthOnlyPublicKeyAdvertised(t *testing.T) {
	e := newEnv(t)
	var allowed, tried []string
	stop := errors.New("stop")
	cfg := e.clientConfig("alice")
	cfg.AuthCallback = func(c *gossh.ClientAuthContext) (gossh.AuthMethod, error) {
		allowed, tried = c.AllowedMethods, c.TriedMethods
		return nil, stop
	}
	_, err := e.dialConfig(cfg)
	if !errors.Is(err, stop) {
		t.Fatalf("dial: %v, want the callback's error", err)
	}
	if !slices.Equal(tried, []string{"none"}) {
		t.Errorf("tried %v, want [none] refused", tried)
	}
	if !slices.Equal(allowed, []string{"publickey"}) {
		t.Errorf("advertised %v, want [publickey]", allowed)
	}
}

// TestAuthOfferedKeyDoesNotBecomeIdentity is CVE-2024-45337: the client
// offers bob's key (accepted, never proven), then signs with alice's. The
// session must be alice's.
func TestAuthOfferedKeyDoesNotBecomeIdentity(t *testing.T) {
	e := newEnv(t)
	bobOffer := &failSigner{pub: e.bob.PublicKey(), tried: make(chan struct{})}
	step := 0
	cfg := e.clientConfig("htop")
	cfg.AuthCallback = func(*gossh.ClientAuthContext) (gossh.AuthMethod, error) {
		step++
		switch step {
		case 1:
			return gossh.PublicKeys(bobOffer), nil
		case 2:
			return gossh.PublicKeys(e.alice), nil
		}
		return nil, errors.New("no more methods")
	}
	c, err := e.dialConfig(cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	select {
	case <-bobOffer.tried:
	default:
		t.Fatal("the server never accepted bob's offered key; the test proves nothing")
	}
	r := e.run(c, "", runOpts{})
	if got := recv(t, e.placer.reqs, "place").User; got != "alice" {
		t.Fatalf("session placed for %q, want alice", got)
	}
	if r.stdout != "app=htop user=alice args=\n" {
		t.Fatalf("got %+v", r)
	}
}

func TestAuthModernAlgorithmsOnly(t *testing.T) {
	e := newEnv(t)
	cfg := e.clientConfig("alice", gossh.PublicKeys(e.alice))
	cfg.Ciphers = []string{gossh.CipherAES128CTR}
	if _, err := e.dialConfig(cfg); err == nil {
		t.Error("aes128-ctr accepted")
	}
	cfg = e.clientConfig("alice", gossh.PublicKeys(e.alice))
	cfg.KeyExchanges = []string{gossh.KeyExchangeECDHP256}
	if _, err := e.dialConfig(cfg); err == nil {
		t.Error("ecdh-sha2-nistp256 accepted")
	}
	cfg = e.clientConfig("alice", gossh.PublicKeys(e.alice))
	cfg.Ciphers = []string{gossh.CipherAES256CTR}
	cfg.MACs = []string{gossh.HMACSHA256}
	if _, err := e.dialConfig(cfg); err == nil {
		t.Error("aes256-ctr with hmac-sha2-256 accepted")
	}
	for _, kex := range []string{"curve25519-sha256@libssh.org", gossh.KeyExchangeCurve25519, gossh.KeyExchangeMLKEM768X25519} {
		cfg = e.clientConfig("alice", gossh.PublicKeys(e.alice))
		cfg.KeyExchanges = []string{kex}
		if _, err := e.dialConfig(cfg); err != nil {
			t.Errorf("%s refused: %v", kex, err)
		}
	}
}

func TestHandshakeTimeout(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.HandshakeTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(waitFor))
	_, err = io.Copy(io.Discard, conn) // the server's banner, then its close
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("idle unauthenticated connection still open")
	}
}

func TestSetDirectorySwaps(t *testing.T) {
	e := newEnv(t)
	carol := sshtest.NewSigner(t)
	e.srv.SetDirectory(&fakeDir{
		keys:  map[string]string{string(carol.PublicKey().Marshal()): "carol"},
		users: map[string]bool{"carol": true},
	})
	if _, err := e.dial("alice", e.alice); err == nil {
		t.Error("alice still accepted after the directory dropped her")
	}
	e.mustDial("carol", carol)
}
