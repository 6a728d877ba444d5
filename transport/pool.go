package transport

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/crypto/ssh"
)

// KeyFunc returns the listed public key of a node.
type KeyFunc func(node string) (ssh.PublicKey, error)

// Pool keeps one persistent connection per peer node and opens channels on
// it, dialing on first use and again after a connection dies.
type Pool struct {
	Identity Identity
	Keys     KeyFunc

	mu    sync.Mutex // guards conns
	conns map[string]*poolConn
}

// poolConn is one peer's connection, or the dial in progress.
type poolConn struct {
	ready  chan struct{} // closed when dialing is over
	client *ssh.Client   // set before ready closes, nil on failure
	err    error
	addr   string
}

// Client returns the live connection to node at addr, dialing if needed.
// Concurrent callers share one dial.
func (p *Pool) Client(ctx context.Context, node, addr string) (*ssh.Client, error) {
	pc, dial := p.entry(node, addr)
	if dial {
		go p.dial(node, pc)
	}
	select {
	case <-pc.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("connect to %s: %w", node, ctx.Err())
	}
	if pc.err != nil {
		return nil, pc.err
	}
	return pc.client, nil
}

// entry returns the pool entry for node, creating one (and asking the
// caller to dial) when there is none or the address changed.
func (p *Pool) entry(node, addr string) (*poolConn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[string]*poolConn{}
	}
	if pc, ok := p.conns[node]; ok && pc.addr == addr {
		return pc, false
	}
	pc := &poolConn{ready: make(chan struct{}), addr: addr}
	p.conns[node] = pc
	return pc, true
}

// dial connects pc on behalf of every caller waiting for it, so no one
// caller's context bounds it: the handshake timeout does.
func (p *Pool) dial(node string, pc *poolConn) {
	defer close(pc.ready)
	ctx, cancel := context.WithTimeout(context.Background(), defaultHandshakeTimeout)
	defer cancel()
	key, err := p.Keys(node)
	if err == nil {
		pc.client, err = Dial(ctx, p.Identity, node, pc.addr, key)
	}
	if err != nil {
		pc.err = err
		p.forget(node, pc)
		return
	}
	go func() {
		pc.client.Wait()
		p.forget(node, pc)
	}()
}

func (p *Pool) forget(node string, pc *poolConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[node] == pc {
		delete(p.conns, node)
	}
}

// OpenChannel opens a channel of chanType on the connection to node. If a
// pooled connection turns out dead, it is replaced once. A rejection by the
// peer is returned as *ssh.OpenChannelError.
func (p *Pool) OpenChannel(ctx context.Context, node, addr, chanType string, extra []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	for attempt := 0; ; attempt++ {
		c, err := p.Client(ctx, node, addr)
		if err != nil {
			return nil, nil, err
		}
		ch, reqs, err := openChannel(ctx, c, chanType, extra)
		if _, rejected := err.(*ssh.OpenChannelError); err == nil || rejected || attempt > 0 {
			return ch, reqs, err
		}
		c.Close() // a dead connection: drop it and dial again
		p.mu.Lock()
		if pc := p.conns[node]; pc != nil && pc.client == c {
			delete(p.conns, node)
		}
		p.mu.Unlock()
	}
}

// openChannel is ssh.Client.OpenChannel bounded by ctx. A channel that opens
// after ctx ended is closed.
func openChannel(ctx context.Context, c *ssh.Client, chanType string, extra []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	type result struct {
		ch   ssh.Channel
		reqs <-chan *ssh.Request
		err  error
	}
	done := make(chan result, 1)
	go func() {
		ch, reqs, err := c.OpenChannel(chanType, extra)
		done <- result{ch, reqs, err}
	}()
	select {
	case r := <-done:
		return r.ch, r.reqs, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				r.ch.Close()
				go ssh.DiscardRequests(r.reqs)
			}
		}()
		return nil, nil, fmt.Errorf("open %s: %w", chanType, ctx.Err())
	}
}

// Close closes every pooled connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, pc := range conns {
		<-pc.ready
		if pc.client != nil {
			pc.client.Close()
		}
	}
	return nil
}
