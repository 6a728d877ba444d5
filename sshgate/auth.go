package sshgate

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"switchyard/keepalive"
	"switchyard/safelog"
)

// Permission extensions carrying the identity decided at authentication.
// They are the only source of identity after the handshake: x/crypto keeps
// the Permissions returned for the key that actually signed, whereas any
// value a callback stored elsewhere (gliderlabs' context, a closure) may
// describe a key that was only offered (CVE-2024-45337).
const (
	extUser  = "switchyard-user"
	extLogin = "switchyard-login"
)

// Modern algorithms only. x/crypto adds curve25519-sha256@libssh.org by
// itself when curve25519-sha256 is listed; it is named here for clarity.
var (
	kexAlgos = []string{
		gossh.KeyExchangeMLKEM768X25519,
		gossh.KeyExchangeCurve25519,
		"curve25519-sha256@libssh.org",
	}
	cipherAlgos = []string{
		gossh.CipherChaCha20Poly1305,
		gossh.CipherAES256GCM,
		gossh.CipherAES128GCM,
	}
	macAlgos = []string{
		gossh.HMACSHA256ETM,
		gossh.HMACSHA512ETM,
	}
)

var (
	errAuthRefused     = errors.New("sshgate: public key refused")
	errPasswordRefused = errors.New("sshgate: password refused")
	errNoneAuth        = errors.New("sshgate: authentication required")
)

// sourceAddressOption is the certificate critical option x/crypto enforces
// itself when it is in the returned Permissions. Any other critical
// option (force-command, verify-required, ...) refuses the certificate.
const sourceAddressOption = "source-address"

// CertAuthority is the part of a Directory that admits OpenSSH user
// certificates. A Directory without it refuses every certificate.
type CertAuthority interface {
	IsUserAuthority(ca gossh.PublicKey) bool                  // ca signs user certificates we trust
	UserForPrincipal(principal string) (user string, ok bool) // the user a certificate principal logs in as
}

// Revocations is the part of a Directory that lists revoked keys: user
// keys, the keys inside certificates, and CAs.
type Revocations interface {
	IsRevoked(key gossh.PublicKey) bool
}

// Passwords is the part of a Directory that checks passwords, used only
// when Server.PasswordAuth is set. CheckPassword must take about as long
// for an unknown user or one without a password as for a wrong password.
type Passwords interface {
	CheckPassword(user, password string) bool
}

// identity is who a connection authenticated as.
type identity struct {
	User  string // Switchyard user owning the key
	Login string // SSH login name: User, or an app name
}

// loginIsApp reports whether the login named an app rather than the user.
func (id identity) loginIsApp() bool { return id.Login != id.User }

// identityOf reads the identity from the connection's Permissions, which
// x/crypto sets from the key that completed authentication.
func identityOf(conn *gossh.ServerConn) (identity, bool) {
	if conn == nil || conn.Permissions == nil {
		return identity{}, false
	}
	id := identity{User: conn.Permissions.Extensions[extUser], Login: conn.Permissions.Extensions[extLogin]}
	return id, id.User != "" && id.Login != ""
}

// serverConfig is gliderlabs' ServerConfigCallback: a fresh config per
// connection. No gliderlabs auth handler is set, so gliderlabs turns
// NoClientAuth on; NoClientAuthCallback then refuses "none", leaving
// "publickey" (and "password" when PasswordAuth is set) as the only
// methods advertised. Every callback notes the attempt on the
// connection's handshake, so that a connection ending unauthenticated is
// charged to its address once (see connClosed).
func (s *Server) serverConfig(ctx gliderssh.Context) *gossh.ServerConfig {
	hs, _ := ctx.Value(handshakeKey{}).(*handshake)
	cfg := &gossh.ServerConfig{
		Config: gossh.Config{
			KeyExchanges: kexAlgos,
			Ciphers:      cipherAlgos,
			MACs:         macAlgos,
		},
		MaxAuthTries: s.maxAuthTries(),
		NoClientAuthCallback: func(gossh.ConnMetadata) (*gossh.Permissions, error) {
			hs.attempt()
			return nil, errNoneAuth
		},
		PublicKeyCallback: func(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
			hs.attempt()
			return s.checkKey(meta, key, hs)
		},
		VerifiedPublicKeyCallback: func(meta gossh.ConnMetadata, key gossh.PublicKey, p *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			hs.authenticated()
			s.logger().Debug("authenticated", "client", meta.RemoteAddr().String(), safelog.String("login", meta.User()),
				"user", p.Extensions[extUser], "key", gossh.FingerprintSHA256(key))
			s.auditAccepted(meta, hs, p, "publickey", keyFields(key)...)
			return p, nil
		},
	}
	if s.PasswordAuth {
		cfg.PasswordCallback = func(meta gossh.ConnMetadata, password []byte) (*gossh.Permissions, error) {
			hs.attempt()
			p, err := s.checkPassword(ctx, meta, password, hs)
			if err == nil {
				hs.authenticated()
				s.auditAccepted(meta, hs, p, "password")
			}
			return p, err
		}
	}
	return cfg
}

// checkKey is the PublicKeyCallback. It may be called for keys the client
// only offers, so it records nothing outside the Permissions it returns,
// and returns fresh Permissions on every call. A refused key is logged
// but not charged to the address: clients offer every key they hold (an
// agent's, in its order) before the right one. The connection is charged
// if it ends without authenticating.
func (s *Server) checkKey(meta gossh.ConnMetadata, key gossh.PublicKey, hs *handshake) (*gossh.Permissions, error) {
	login := meta.User()
	user, crit, reason := s.authorize(login, key)
	if reason != "" {
		s.logRefused(meta, hs, reason, append([]any{"method", "publickey"}, keyFields(key)...)...)
		return nil, errAuthRefused
	}
	return permissions(user, login, crit), nil
}

// permissions are the fresh Permissions of an accepted key or password:
// the identity, and the certificate's critical options for x/crypto to
// enforce (source-address).
func permissions(user, login string, crit map[string]string) *gossh.Permissions {
	return &gossh.Permissions{CriticalOptions: crit, Extensions: map[string]string{extUser: user, extLogin: login}}
}

// refused logs a failed login (never the password) and charges it to
// the client's address.
func (s *Server) refused(meta gossh.ConnMetadata, hs *handshake, reason string, attrs ...any) {
	s.logRefused(meta, hs, reason, attrs...)
	hs.charge()
	why := FailWrongPassword
	if reason == reasonNoPasswords {
		why = FailPasswordsOff
	}
	s.charge(hostOf(meta.RemoteAddr()), why)
}

// logRefused logs a refused attempt, summarised per client address.
func (s *Server) logRefused(meta gossh.ConnMetadata, hs *handshake, reason string, attrs ...any) {
	s.Audit.Emit("auth.refused", "", "", append([]any{"login", meta.User(), "client", meta.RemoteAddr().String(),
		"conn", hs.connID(), "reason", reason}, attrs...)...)
	s.logRepeated(context.Background(), slog.LevelInfo, "auth refused", hostOf(meta.RemoteAddr()),
		append([]any{"client", meta.RemoteAddr().String(), safelog.String("login", meta.User()), "reason", reason}, attrs...)...)
}

// charge counts a failed login and charges it to ip, which it blocks
// after AuthFailLimit of them within AuthFailWindow.
func (s *Server) charge(ip, why string) {
	s.authFailures.Add(1)
	s.failures.add(why)
	if s.sources.fail(ip, s.now(), s.authFailLimit(), s.authFailWindow()) {
		s.logger().Warn("client address blocked: too many failed logins", "client", ip,
			"failures", s.authFailLimit(), "for", s.authFailWindow())
	}
}

// authorize applies the login rules; it returns the key's user and the
// critical options to enforce, or a reason for refusing.
func (s *Server) authorize(login string, key gossh.PublicKey) (user string, crit map[string]string, reason string) {
	d := s.directory()
	if revoked(d, key) {
		return "", nil, "revoked key"
	}
	if cert, ok := key.(*gossh.Certificate); ok {
		return s.authorizeCert(d, login, cert)
	}
	user, ok := d.UserForKey(key)
	if !ok || user == "" {
		return "", nil, "unknown key"
	}
	user, reason = loginAs(d, login, user)
	return user, nil, reason
}

// loginAs checks that user may log in as login: their own name, or an app.
func loginAs(d Directory, login, user string) (string, string) {
	switch {
	case d.IsUser(login):
		if login != user {
			return "", "key belongs to " + user
		}
		return user, ""
	case d.IsApp(login):
		return user, ""
	default:
		return "", "login is neither a user nor an app"
	}
}

// revoked reports whether d lists key as revoked.
func revoked(d Directory, key gossh.PublicKey) bool {
	r, ok := d.(Revocations)
	return ok && r.IsRevoked(key)
}

// handshakeKey is the gliderlabs context key of a connection's handshake
// state. It carries a timer and flags, never identity.
type handshakeKey struct{}

// handshake closes a connection that has not authenticated in time, and
// records how authentication went. gliderlabs resets the connection's
// deadline on every read and write, so a deadline cannot bound the
// handshake; a timer does. Its methods accept a nil handshake (a test
// calling serverConfig without onConn).
type handshake struct {
	done      atomic.Bool // authenticated, timed out or closed: the timer has nothing left to do
	authed    atomic.Bool // the client authenticated
	attempted atomic.Bool // the client tried a method, "none" included
	charged   atomic.Bool // a failed login was charged during the connection
	timer     *time.Timer
	conn      string // the connection's id in the audit trail
}

// connID is the connection's id in the audit trail, "" without one.
func (hs *handshake) connID() string {
	if hs == nil {
		return ""
	}
	return hs.conn
}

// start arms the timer: after d, unless finished, onTimeout runs and conn
// is closed.
func (hs *handshake) start(conn net.Conn, d time.Duration, onTimeout func()) {
	hs.timer = time.AfterFunc(d, func() {
		if hs.done.CompareAndSwap(false, true) {
			onTimeout()
			conn.Close()
		}
	})
}

// finish stops the timer; it reports whether the handshake was still
// running.
func (hs *handshake) finish() bool {
	if hs == nil || !hs.done.CompareAndSwap(false, true) {
		return false
	}
	if hs.timer != nil {
		hs.timer.Stop()
	}
	return true
}

// authenticated records that the client proved its key or password.
func (hs *handshake) authenticated() {
	if hs != nil {
		hs.authed.Store(true)
		hs.finish()
	}
}

func (hs *handshake) attempt() {
	if hs != nil {
		hs.attempted.Store(true)
	}
}

func (hs *handshake) charge() {
	if hs != nil {
		hs.charged.Store(true)
	}
}

// unchargedFailure reports, once, whether the connection tried to
// authenticate, never did, and was charged nothing yet. A bad signature
// ends the handshake inside x/crypto without a callback; it is charged
// here.
func (hs *handshake) unchargedFailure() bool {
	return hs.attempted.Load() && !hs.authed.Load() && hs.charged.CompareAndSwap(false, true)
}

// onConn is gliderlabs' ConnCallback: it refuses an address over its
// connection limit or blocked for failed logins (closing the connection
// before the SSH handshake), and starts the handshake timer.
func (s *Server) onConn(ctx gliderssh.Context, conn net.Conn) net.Conn {
	addr := conn.RemoteAddr().String()
	ip := hostOf(conn.RemoteAddr())
	if reason := s.sources.admit(ip, s.now(), s.maxConnsPerSource()); reason != "" {
		s.logRepeated(ctx, slog.LevelWarn, "connection refused", ip, "client", addr, "reason", reason)
		return nil
	}
	hs := &handshake{conn: newConnID()}
	s.conns.Add(1)
	conn = &sourceConn{Conn: conn, release: func() { s.connClosed(hs, addr, ip) }}
	hs.start(conn, s.handshakeTimeout(), func() {
		s.logRepeated(context.Background(), slog.LevelInfo, "handshake timed out", ip, "client", addr, "after", s.handshakeTimeout())
	})
	ctx.SetValue(handshakeKey{}, hs)
	ctx.SetValue(channelsKey{}, new(atomic.Int64))
	ac := &keepalive.Conn{Conn: conn}
	ctx.SetValue(keepaliveKey{}, &keepaliveState{conn: ac})
	return ac
}

// connClosed runs once when a connection closes: one closed before
// authenticating (by the client, or by x/crypto after too many tries) is
// logged as such, one that tried to authenticate and never did is
// charged to its address as one failed login (unless a wrong password
// already was), and the address's connection slot is released.
func (s *Server) connClosed(hs *handshake, addr, ip string) {
	if hs.finish() {
		s.logRepeated(context.Background(), slog.LevelDebug, "closed before authenticating", ip, "client", addr)
	}
	if hs.unchargedFailure() {
		s.charge(ip, FailNoLogin)
	}
	s.sources.leave(ip)
	s.conns.Add(-1)
}

// channelsKey is the gliderlabs context key of a connection's count of
// open session channels (*atomic.Int64).
type channelsKey struct{}
