package transport

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
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
	c := &AliveConn{Conn: raw}
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
	go Keepalive(client, c, aliveInterval, aliveCountMax)
	return client, nil
}
