package sshgate

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
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

const maxAuthTries = 6

var (
	errAuthRefused = errors.New("sshgate: public key refused")
	errNoneAuth    = errors.New("sshgate: authentication required")
)

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
// "publickey" as the only method advertised.
func (s *Server) serverConfig(ctx gliderssh.Context) *gossh.ServerConfig {
	hs, _ := ctx.Value(handshakeKey{}).(*handshake)
	cfg := &gossh.ServerConfig{
		Config: gossh.Config{
			KeyExchanges: kexAlgos,
			Ciphers:      cipherAlgos,
			MACs:         macAlgos,
		},
		MaxAuthTries:         maxAuthTries,
		NoClientAuthCallback: func(gossh.ConnMetadata) (*gossh.Permissions, error) { return nil, errNoneAuth },
		PublicKeyCallback:    s.checkKey,
		VerifiedPublicKeyCallback: func(meta gossh.ConnMetadata, key gossh.PublicKey, p *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			hs.finish()
			s.logger().Debug("authenticated", "client", meta.RemoteAddr().String(), "login", meta.User(),
				"user", p.Extensions[extUser], "key", gossh.FingerprintSHA256(key))
			return p, nil
		},
	}
	return cfg
}

// checkKey is the PublicKeyCallback. It may be called for keys the client
// only offers, so it records nothing outside the Permissions it returns,
// and returns fresh Permissions on every call.
func (s *Server) checkKey(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	login := meta.User()
	user, reason := s.authorize(login, key)
	if reason != "" {
		s.authFailures.Add(1)
		s.logger().Info("auth refused", "client", meta.RemoteAddr().String(), "login", login,
			"key", gossh.FingerprintSHA256(key), "reason", reason)
		return nil, errAuthRefused
	}
	return &gossh.Permissions{Extensions: map[string]string{extUser: user, extLogin: login}}, nil
}

// authorize applies the login rules; it returns the key's user, or a
// reason for refusing.
func (s *Server) authorize(login string, key gossh.PublicKey) (user, reason string) {
	if _, ok := key.(*gossh.Certificate); ok {
		return "", "certificates are not supported yet"
	}
	d := s.directory()
	user, ok := d.UserForKey(key)
	switch {
	case !ok || user == "":
		return "", "unknown key"
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

// handshakeKey is the gliderlabs context key of a connection's handshake
// timer. It carries a timer, never identity.
type handshakeKey struct{}

// handshake closes a connection that has not authenticated in time.
// gliderlabs resets the connection's deadline on every read and write, so
// a deadline cannot bound the handshake; a timer does.
type handshake struct {
	done  atomic.Bool
	timer *time.Timer
}

func startHandshake(conn net.Conn, d time.Duration, onTimeout func()) *handshake {
	hs := &handshake{}
	hs.timer = time.AfterFunc(d, func() {
		if hs.done.CompareAndSwap(false, true) {
			onTimeout()
			conn.Close()
		}
	})
	return hs
}

// finish stops the timer once the client has proved its key.
func (hs *handshake) finish() {
	if hs != nil && hs.done.CompareAndSwap(false, true) {
		hs.timer.Stop()
	}
}

// onConn is gliderlabs' ConnCallback: it starts the handshake timer.
func (s *Server) onConn(ctx gliderssh.Context, conn net.Conn) net.Conn {
	addr := conn.RemoteAddr().String()
	hs := startHandshake(conn, s.handshakeTimeout(), func() {
		s.logger().Info("handshake timed out", "client", addr)
	})
	ctx.SetValue(handshakeKey{}, hs)
	ac := &aliveConn{Conn: conn}
	ctx.SetValue(keepaliveKey{}, &keepaliveState{conn: ac})
	return ac
}
