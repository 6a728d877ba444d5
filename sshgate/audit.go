package sshgate

import (
	gossh "golang.org/x/crypto/ssh"
)

// auditAccepted records a login: the user, the login name, the method
// and the key (fields from keyFields), and the client's address.
func (s *Server) auditAccepted(meta gossh.ConnMetadata, p *gossh.Permissions, method string, key ...any) {
	s.Audit.Emit("auth.accepted", "", p.Extensions[extUser], append([]any{"login", meta.User(),
		"client", meta.RemoteAddr().String(), "method", method}, key...)...)
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
