package transport

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/keepalive"
)

// Keepalive of internal connections: a peer that has sent nothing for
// aliveInterval × aliveCountMax is given up on and the connection closed.
// A partitioned or hung peer (no FIN, no RST) is thus noticed within 15
// to 17.5 s instead of TCP's minutes: the pool redials, a control link
// reconnects, and sessions carried over the dead connection end with
// their one-line error instead of hanging.
var (
	aliveInterval = 5 * time.Second // a var so tests can shorten it
	aliveCountMax = 3
)

// Identity is this node's name and key, used when it dials another node.
type Identity struct {
	Name   string
	Signer ssh.Signer
}

// Dial connects to the node named peer at addr, authenticating as id and
// accepting only peerKey as the server's host key. ctx bounds the TCP
// connect and the handshake.
func Dial(ctx context.Context, id Identity, peer, addr string, peerKey ssh.PublicKey) (*ssh.Client, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", peer, addr, err)
	}
	c := &keepalive.Conn{Conn: raw}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	deadline := time.Now().Add(defaultHandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	cfg := &ssh.ClientConfig{
		Config:            algorithms(),
		User:              id.Name,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(id.Signer)},
		HostKeyCallback:   ssh.FixedHostKey(peerKey),
		HostKeyAlgorithms: hostAlgos,
	}
	sc, chans, reqs, err := ssh.NewClientConn(c, addr, cfg)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake with %s at %s: %w", peer, addr, err)
	}
	if !stop() {
		sc.Close()
		return nil, fmt.Errorf("handshake with %s at %s: %w", peer, addr, ctx.Err())
	}
	c.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	go keepalive.Run(client, c, aliveInterval, aliveCountMax)
	return client, nil
}
