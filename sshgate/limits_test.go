package sshgate

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// authDir is a fakeDir with certificates, revocations, passwords and
// idle timeouts.
type authDir struct {
	*fakeDir
	cas        map[string]bool   // marshalled CA keys
	principals map[string]string // principal → user
	revoked    map[string]bool   // marshalled keys
	passwords  map[string]string // user → plain password (the hash is config's business)
	idle       map[string]time.Duration
}

func (d *authDir) IsUserAuthority(ca gossh.PublicKey) bool { return d.cas[string(ca.Marshal())] }
func (d *authDir) UserForPrincipal(p string) (string, bool) {
	u, ok := d.principals[p]
	return u, ok
}
func (d *authDir) IsRevoked(k gossh.PublicKey) bool { return d.revoked[string(k.Marshal())] }
func (d *authDir) CheckPassword(user, pw string) bool {
	want, ok := d.passwords[user]
	return ok && want == pw
}
func (d *authDir) IdleTimeout(app string) (time.Duration, bool) { return d.idle[app], false }

// withAuthDir installs an authDir over e's fakeDir and returns it to fill.
func (e *env) withAuthDir() *authDir {
	d := &authDir{fakeDir: e.srv.Directory.(*fakeDir), cas: map[string]bool{}, principals: map[string]string{"alice": "alice", "bob": "bob"},
		revoked: map[string]bool{}, passwords: map[string]string{}, idle: map[string]time.Duration{}}
	e.srv.SetDirectory(d)
	return d
}

// startHang starts the fake appd's "hang" app on c and waits for its
// first line; the session stays open until the test closes it. It
// returns the session and its stderr.
func startHang(t *testing.T, c *gossh.Client) (*gossh.Session, io.Reader) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	out, _ := sess.StdoutPipe()
	stderr, _ := sess.StderrPipe()
	if err := sess.Start("hang"); err != nil {
		t.Fatal(err)
	}
	readLine(t, bufio.NewReader(out))
	return sess, stderr
}

// banner reports whether the server sent its SSH version on a raw
// connection to addr (false: closed before the handshake).
func banner(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(waitFor))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return conn, err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

func TestMaxConnsPerSource(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.MaxConnsPerSource = 2 })
	c1, ok1 := banner(t, e.addr)
	_, ok2 := banner(t, e.addr)
	if !ok1 || !ok2 {
		t.Fatal("the first two connections got no banner")
	}
	if _, ok := banner(t, e.addr); ok {
		t.Fatal("third connection from one address admitted")
	}
	if !strings.Contains(e.logs.String(), "too many connections from this address (2)") {
		t.Errorf("refusal not logged:\n%s", e.logs.String())
	}
	c1.Close()
	testutil.Eventually(t, waitFor, "a slot to free up", func() bool { _, ok := banner(t, e.addr); return ok })
}

func TestAuthFailThrottle(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	e := newEnv(t, func(s *Server) { s.AuthFailLimit, s.AuthFailWindow, s.Clock = 3, time.Minute, clock })
	stranger := sshtest.NewSigner(t)
	for range 3 {
		if _, err := e.dial("alice", stranger); err == nil {
			t.Fatal("stranger accepted")
		}
	}
	// A connection is charged when it closes, just after the client
	// gives up.
	testutil.Eventually(t, waitFor, "the address to be blocked", func() bool { _, ok := banner(t, e.addr); return !ok })
	if _, err := e.dial("alice", e.alice); err == nil {
		t.Fatal("blocked address still admitted")
	}
	if _, ok := banner(t, e.addr); ok {
		t.Fatal("blocked address got a banner")
	}
	logs := e.logs.String()
	for _, want := range []string{"too many failed logins", "connection refused"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	now.Add(int64(time.Minute))
	e.mustDial("alice", e.alice)
}

// TestMaxAuthTries: x/crypto does not count the first MaxAuthTries keys a
// client only offers (queries), so 2×MaxAuthTries unknown keys hit it.
func TestMaxAuthTries(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.MaxAuthTries = 2 })
	_, err := e.dialConfig(e.clientConfig("alice", gossh.PublicKeys(sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t), e.alice)))
	if err == nil || !strings.Contains(err.Error(), "too many authentication failures") {
		t.Fatalf("dial: %v, want too many authentication failures", err)
	}
}

func TestMaxChannelsPerConn(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.MaxChannelsPerConn = 1 })
	c := e.mustDial("alice", e.alice)
	startHang(t, c)
	_, err := c.NewSession()
	var oce *gossh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != gossh.ResourceShortage || oce.Message != "switchyard: too many sessions on this connection (1)" {
		t.Fatalf("second session: %v", err)
	}
}

func TestMaxSessionsPerUser(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.MaxSessionsPerUser = 1 })
	startHang(t, e.mustDial("alice", e.alice))
	r := e.run(e.mustDial("alice", e.alice), "htop", runOpts{})
	if r.status != 69 || r.stderr != "switchyard: too many sessions for user alice (1)\n" {
		t.Fatalf("got %+v", r)
	}
	if r := e.run(e.mustDial("bob", e.bob), "htop", runOpts{}); r.status != 0 {
		t.Fatalf("bob: %+v", r)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	e.withAuthDir().idle["hang"] = 300 * time.Millisecond
	sess, _ := startHang(t, e.mustDial("alice", e.alice))
	errc := make(chan error, 1)
	go func() { errc <- sess.Wait() }()
	err := recv(t, errc, "idle session end")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 69 {
		t.Fatalf("wait: %v, want exit 69", err)
	}
	if ended := recv(t, e.placer.ended, "session ended"); ended.Reason != "idle timeout" {
		t.Errorf("ended %+v", ended)
	}
}

func TestIdleTimeoutLine(t *testing.T) {
	e := newEnv(t)
	e.withAuthDir().idle["hang"] = 300 * time.Millisecond
	c := e.mustDial("alice", e.alice)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stderr, _ := sess.StderrPipe()
	if err := sess.Start("hang"); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(stderr)
	if string(b) != "switchyard: idle for 300ms; session ended\n" {
		t.Fatalf("stderr %q", b)
	}
}

func TestPasswordAuth(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.PasswordAuth = true })
	e.withAuthDir().passwords["alice"] = "correct horse"
	var allowed []string
	stop := errors.New("stop")
	cfg := e.clientConfig("alice")
	cfg.AuthCallback = func(c *gossh.ClientAuthContext) (gossh.AuthMethod, error) {
		allowed = c.AllowedMethods
		return nil, stop
	}
	e.dialConfig(cfg)
	if !slices.Contains(allowed, "password") || !slices.Contains(allowed, "publickey") {
		t.Errorf("advertised %v, want publickey and password", allowed)
	}
	c, err := e.dialConfig(e.clientConfig("alice", gossh.Password("correct horse")))
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if r := e.run(c, "htop", runOpts{}); r.stdout != "app=htop user=alice args=\n" {
		t.Fatalf("got %+v", r)
	}
	for _, tc := range []struct{ login, pw string }{{"alice", "wrong"}, {"bob", "correct horse"}, {"htop", "correct horse"}, {"alice", ""}} {
		if _, err := e.dialConfig(e.clientConfig(tc.login, gossh.Password(tc.pw))); err == nil {
			t.Errorf("login %s with password %q accepted", tc.login, tc.pw)
		}
	}
	if strings.Contains(e.logs.String(), "correct horse") {
		t.Error("a password reached the log")
	}
}

func TestPasswordOffNotAdvertised(t *testing.T) {
	e := newEnv(t)
	e.withAuthDir().passwords["alice"] = "pw"
	if _, err := e.dialConfig(e.clientConfig("alice", gossh.Password("pw"))); err == nil {
		t.Fatal("password accepted with PasswordAuth off")
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{30 * time.Minute: "30m", time.Hour: "1h", 90 * time.Minute: "1h30m", 500 * time.Millisecond: "500ms", 45 * time.Second: "45s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
