// Package sshtest holds the SSH helpers that tests across the module
// share: new ed25519 keys, in memory or as OpenSSH key files, and SSH
// servers and client/server pairs on loopback.
//
// It is a test helper: only _test.go files import it. It imports
// x/crypto/ssh and no package of this module.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// NewSigner returns a signer for a new ed25519 key.
func NewSigner(tb testing.TB) ssh.Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// WriteKey writes a new ed25519 key to path as an OpenSSH private key
// file of mode 0600, as ssh -i reads it, and returns its signer.
func WriteKey(tb testing.TB, path string) ssh.Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Serve runs an SSH server with cfg on a loopback port and returns its
// address. Each connection's global requests are discarded and each of
// its new channels is handed to handle in a goroutine of its own. When the
// test ends, the listener and every connection close and Serve's own
// goroutines have returned (handle's may still run).
func Serve(tb testing.TB, cfg *ssh.ServerConfig, handle func(ssh.NewChannel)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &server{cfg: cfg, handle: handle, conns: map[net.Conn]bool{}}
	tb.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	s.wg.Add(1)
	go s.accept(ln)
	return ln.Addr().String()
}

type server struct {
	cfg    *ssh.ServerConfig
	handle func(ssh.NewChannel)
	wg     sync.WaitGroup // accept and serve
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]bool
}

func (s *server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(nc)
	}
}

func (s *server) serve(nc net.Conn) {
	defer func() {
		defer s.wg.Done()
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	_, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for ch := range chans {
		go s.handle(ch)
	}
}

// Pair runs Serve with a new host key and no client authentication, and
// returns a client connected to it that checks that host key. The client
// closes when the test ends.
func Pair(tb testing.TB, handle func(ssh.NewChannel)) *ssh.Client {
	tb.Helper()
	host := NewSigner(tb)
	cfg := &ssh.ServerConfig{NoClientAuth: true} // test only
	cfg.AddHostKey(host)
	addr := Serve(tb, cfg, handle)
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "test", HostKeyCallback: ssh.FixedHostKey(host.PublicKey())})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// ChannelPair opens a "session" channel over a Pair and returns both
// ends with their request queues: the client's (near) and the server's
// (far).
func ChannelPair(tb testing.TB) (near ssh.Channel, nearReqs <-chan *ssh.Request, far ssh.Channel, farReqs <-chan *ssh.Request) {
	tb.Helper()
	type end struct {
		ch   ssh.Channel
		reqs <-chan *ssh.Request
	}
	accepted := make(chan end, 1)
	c := Pair(tb, func(nc ssh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- end{ch, reqs}
	})
	near, nearReqs, err := c.OpenChannel("session", nil)
	if err != nil {
		tb.Fatal(err)
	}
	a, ok := <-accepted
	if !ok {
		tb.Fatal("the server could not accept the channel")
	}
	return near, nearReqs, a.ch, a.reqs
}
