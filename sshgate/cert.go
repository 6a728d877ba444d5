package sshgate

import (
	"maps"

	gossh "golang.org/x/crypto/ssh"
)

// authorizeCert admits an OpenSSH user certificate: signed by a trusted
// CA, neither it, its key nor its CA revoked, within its validity window
// (by Server.Clock), with a principal that maps to the login's user, and
// no critical option but source-address, which is returned for x/crypto
// to enforce against the client's address. force-command is refused, not
// honoured: the app is named by the login or command, never by a
// certificate.
func (s *Server) authorizeCert(d Directory, login string, cert *gossh.Certificate) (string, map[string]string, string) {
	ca, ok := d.(CertAuthority)
	switch {
	case !ok:
		return "", nil, "certificates are not accepted: no trusted user CA"
	case cert.CertType != gossh.UserCert:
		return "", nil, "not a user certificate"
	case !ca.IsUserAuthority(cert.SignatureKey):
		return "", nil, "certificate signed by an untrusted CA " + gossh.FingerprintSHA256(cert.SignatureKey)
	}
	principal, user, reason := certUser(d, ca, login, cert)
	if reason != "" {
		return "", nil, reason
	}
	checker := &gossh.CertChecker{
		IsUserAuthority:          ca.IsUserAuthority,
		IsRevoked:                func(c *gossh.Certificate) bool { return revoked(d, c.Key) || revoked(d, c.SignatureKey) },
		SupportedCriticalOptions: []string{sourceAddressOption},
		Clock:                    s.Clock,
	}
	if err := checker.CheckCert(principal, cert); err != nil {
		return "", nil, "certificate " + cert.KeyId + ": " + err.Error()
	}
	return user, maps.Clone(cert.CriticalOptions), ""
}

// certUser finds the principal of cert that logs in as login: when login
// is a user, a principal of that user; when it is an app, the principals
// must all map to one user.
func certUser(d Directory, ca CertAuthority, login string, cert *gossh.Certificate) (principal, user, reason string) {
	loginIsUser := d.IsUser(login)
	for _, p := range cert.ValidPrincipals {
		u, ok := ca.UserForPrincipal(p)
		switch {
		case !ok:
			continue
		case loginIsUser && u == login:
			return p, u, ""
		case loginIsUser:
			continue
		case user != "" && u != user:
			return "", "", "certificate principals map to both " + user + " and " + u + ": log in as the user"
		}
		principal, user = p, u
	}
	switch {
	case loginIsUser || user == "":
		return "", "", "no principal of certificate " + cert.KeyId + " logs in as " + login
	case !d.IsApp(login):
		return "", "", "login is neither a user nor an app"
	}
	return principal, user, ""
}
