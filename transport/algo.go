package transport

import (
	"time"

	"golang.org/x/crypto/ssh"
)

// Internal hops prefer AES-GCM: on CPUs with AES-NI Go runs it far faster
// than ChaCha20-Poly1305, and both are AEAD (no separate MAC).
var (
	kexAlgos    = []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519}
	cipherAlgos = []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305}
	macAlgos    = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM}
	hostAlgos   = []string{ssh.KeyAlgoED25519}
)

// NodeExtension is the Permissions extension holding the authenticated
// peer's node name on a server connection.
const NodeExtension = "switchyard-node"

// defaultHandshakeTimeout bounds an internal SSH handshake.
const defaultHandshakeTimeout = 10 * time.Second

func algorithms() ssh.Config {
	return ssh.Config{KeyExchanges: kexAlgos, Ciphers: cipherAlgos, MACs: macAlgos}
}
