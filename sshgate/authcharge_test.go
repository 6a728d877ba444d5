package sshgate

import (
	"net"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// blockingDir is an authDir whose password checks wait for release.
type blockingDir struct {
	*authDir
	entered chan struct{}
	release chan struct{}
}

func (d *blockingDir) CheckPassword(user, pw string) bool {
	d.entered <- struct{}{}
	<-d.release
	return d.authDir.CheckPassword(user, pw)
}

// TestPasswordSlotWaitRefused: with the one password slot held, a second
// attempt waits PasswordWait and fails as a wrong password does: same
// error to the client, same log reason, counted as a failed login.
func TestPasswordSlotWaitRefused(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.PasswordAuth, s.MaxPasswordChecks, s.PasswordWait = true, 1, 200*time.Millisecond })
	d := &blockingDir{authDir: e.withAuthDir(), entered: make(chan struct{}, 2), release: make(chan struct{})}
	d.passwords["alice"] = "right"
	e.srv.SetDirectory(d)

	first := make(chan error, 1)
	go func() {
		_, err := e.dialConfig(e.clientConfig("alice", gossh.Password("right")))
		first <- err
	}()
	recv(t, d.entered, "the first check to take the slot")
	_, err := e.dialConfig(e.clientConfig("alice", gossh.Password("right")))
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("second attempt while the slot is held: %v, want refused", err)
	}
	select {
	case <-d.entered:
		t.Fatal("the waiter ran a check without a slot")
	default:
	}
	close(d.release)
	if err := recv(t, first, "the first login"); err != nil {
		t.Fatalf("the check holding the slot: %v", err)
	}
	if got := e.srv.AuthFailures(); got != 1 {
		t.Errorf("AuthFailures = %d, want 1 (the refused waiter)", got)
	}
	logs := e.logs.String()
	for _, want := range []string{`reason="wrong password or no such user"`, "password checks busy"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestRefusedOffersNotCharged: keys offered and refused before the right
// one cost the address nothing; a connection that never authenticates is
// charged once, however many keys it offered.
func TestRefusedOffersNotCharged(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.AuthFailLimit = 3 })
	var keys []gossh.Signer
	for range 5 {
		keys = append(keys, sshtest.NewSigner(t))
	}
	for i := range 10 {
		c, err := e.dialConfig(e.clientConfig("alice", gossh.PublicKeys(append(keys, e.alice)...)))
		if err != nil {
			t.Fatalf("login %d after 5 refused offers: %v", i, err)
		}
		c.Close()
	}
	if got := e.srv.AuthFailures(); got != 0 {
		t.Fatalf("AuthFailures = %d after successful logins, want 0", got)
	}
	if _, err := e.dialConfig(e.clientConfig("alice", gossh.PublicKeys(keys...))); err == nil {
		t.Fatal("strange keys accepted")
	}
	testutil.Eventually(t, waitFor, "the failed connection to be charged", func() bool { return e.srv.AuthFailures() == 1 })
	if _, ok := banner(t, e.addr); !ok {
		t.Fatal("address blocked after one failed connection (limit 3)")
	}
	if got := e.srv.AuthFailures(); got != 1 {
		t.Fatalf("AuthFailures = %d, want 1 for one connection offering 5 keys", got)
	}
}

// TestClosedBeforeAuthNotTimedOut: a client that hangs up at once is
// logged as closed, never as timed out; a silent one times out.
func TestClosedBeforeAuthNotTimedOut(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.HandshakeTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	testutil.Eventually(t, waitFor, "the close to be logged", func() bool { return strings.Contains(e.logs.String(), "closed before authenticating") })
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 7)}}
	silent, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	testutil.Eventually(t, waitFor, "the silent client to time out", func() bool { return strings.Contains(e.logs.String(), "handshake timed out") })
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "handshake timed out") && !strings.Contains(line, "127.0.0.7") {
			t.Errorf("a client that hung up logged as timed out: %s", line)
		}
	}
	if got := e.srv.AuthFailures(); got != 0 {
		t.Errorf("AuthFailures = %d for clients that never tried to log in", got)
	}
}
