package sshgate

import (
	"crypto/rand"
	"encoding/hex"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Audit events of the gateway: auth.accepted and auth.refused for each
// login attempt, session.open when a session starts or resumes through
// this gateway, session.close when it ends or detaches here. Each carries
// the connection's id ("conn"), which ties a login to the placement the
// broker made for it and to the session.

// newConnID is a connection's id in the audit trail: 8 random bytes in hex.
func newConnID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// connOf is the audit id of the connection of gctx, "" if none.
func connOf(gctx gliderssh.Context) string {
	hs, _ := gctx.Value(handshakeKey{}).(*handshake)
	return hs.connID()
}

// auditAccepted records a login: the user, the login name, the method
// and the key (fields from keyFields), and the client's address.
func (s *Server) auditAccepted(meta gossh.ConnMetadata, hs *handshake, p *gossh.Permissions, method string, key ...any) {
	s.Audit.Emit("auth.accepted", "", p.Extensions[extUser], append([]any{"login", meta.User(),
		"client", meta.RemoteAddr().String(), "conn", hs.connID(), "method", method}, key...)...)
}

// keyFields describe a key for the audit log: its SHA256 fingerprint or,
// for a certificate, its key id, serial, the fingerprint of the key it
// certifies and of its CA. Never the key's secret part, which a server
// never has.
func keyFields(key gossh.PublicKey) []any {
	cert, ok := key.(*gossh.Certificate)
	if !ok {
		return []any{"key", gossh.FingerprintSHA256(key)}
	}
	return []any{"key", gossh.FingerprintSHA256(cert.Key), "cert_key_id", cert.KeyId,
		"cert_serial", cert.Serial, "cert_ca", gossh.FingerprintSHA256(cert.SignatureKey)}
}

// auditOpen records a session starting (kind "new"), claimed after a
// redirect ("claim") or resumed ("resume") through this gateway.
func (s *Server) auditOpen(ss *session, r *running) {
	kind := "new"
	switch {
	case r.Resumed != nil:
		kind = "resume"
	case r.Place.Claim != nil:
		kind = "claim"
	}
	s.Audit.Emit("session.open", r.Started.ID, ss.id.User, "conn", ss.conn, "client", ss.addr, "login", ss.id.Login,
		"app", r.App, "server", r.Place.Server, "pid", r.Started.PID, "kind", kind, "via", viaName(r.Place),
		"pty", ss.hasPty())
}
