package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("transport: server closed")

// Authorizer maps a client's public key to the node it belongs to.
type Authorizer func(key ssh.PublicKey) (node string, ok bool)

// ConnHandler serves one authenticated internal connection. It must drain
// chans; it returns when the connection is done with. node is the peer's
// authenticated node name.
type ConnHandler func(ctx context.Context, node string, conn *ssh.ServerConn, chans <-chan ssh.NewChannel)

// ChannelHandler serves one new channel that node opened on an
// authenticated internal connection: it accepts or rejects nc, and returns
// when it is done with the channel.
type ChannelHandler func(ctx context.Context, node string, nc ssh.NewChannel)

// EachChannel returns a ConnHandler that serves each new channel with
// serve, in a goroutine of its own, and returns once the connection has
// ended and every serve has returned.
func EachChannel(serve ChannelHandler) ConnHandler {
	return func(ctx context.Context, node string, _ *ssh.ServerConn, chans <-chan ssh.NewChannel) {
		var wg sync.WaitGroup
		defer wg.Wait()
		for nc := range chans {
			wg.Go(func() { serve(ctx, node, nc) })
		}
	}
}

// Server accepts internal SSH connections from known nodes.
type Server struct {
	Signer           ssh.Signer    // this node's key, required
	Authorize        Authorizer    // required; unknown keys are refused
	Handler          ConnHandler   // required
	Logger           *slog.Logger  // slog.Default() if nil
	HandshakeTimeout time.Duration // grace to finish the handshake and authenticate; 10s if zero
	// Peers, if set, returns the number of nodes that may connect (those
	// Authorize admits); it scales the per-address limit, SourceLimit.
	// Nil counts as none: the limit is then its minimum.
	Peers func() int

	sources Slots     // open connections per source address
	logs    limitLogs // refusals and failed handshakes, summarised

	mu     sync.Mutex // guards the fields below
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *Server) config() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		Config: algorithms(),
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			node, ok := s.Authorize(key)
			if !ok || node != meta.User() {
				return nil, fmt.Errorf("transport: key %s is not node %q's", ssh.FingerprintSHA256(key), meta.User())
			}
			return &ssh.Permissions{Extensions: map[string]string{NodeExtension: node}}, nil
		},
		MaxAuthTries: 3,
	}
	cfg.AddHostKey(s.Signer)
	return cfg
}

// Serve accepts connections on ln until Close or Shutdown. It returns
// ErrServerClosed after either, or the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	if s.Signer == nil || s.Authorize == nil || s.Handler == nil {
		return errors.New("transport: Server needs Signer, Authorize and Handler")
	}
	ctx, err := s.track(ln)
	if err != nil {
		return err
	}
	defer s.untrack(ln)
	cfg := s.config()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			return fmt.Errorf("transport: accept: %w", err)
		}
		if !s.admit(c) {
			continue
		}
		if !s.startHandler(c) {
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			s.handle(ctx, c, cfg)
		}()
	}
}

func (s *Server) track(ln net.Listener) (context.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.logs.init(s.logger)
	}
	s.lns[ln] = struct{}{}
	return s.ctx, nil
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.lns, ln)
	s.mu.Unlock()
}

// startHandler counts a handler about to serve the admitted c, unless the
// server is closed: then it closes c, gives its slot back and returns
// false. Counting under mu keeps it from racing the wait of Close or
// Shutdown.
func (s *Server) startHandler(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.sources.Give(hostOf(c.RemoteAddr()))
		c.Close()
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) trackConn(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

// handle serves one admitted connection and gives its source's slot back
// when it is closed.
func (s *Server) handle(ctx context.Context, c net.Conn, cfg *ssh.ServerConfig) {
	defer s.sources.Give(hostOf(c.RemoteAddr()))
	if !s.trackConn(c, true) {
		c.Close()
		return
	}
	defer s.trackConn(c, false)
	defer c.Close()
	timeout := s.HandshakeTimeout
	if timeout == 0 {
		timeout = defaultHandshakeTimeout
	}
	c.SetDeadline(time.Now().Add(timeout))
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		s.handshakeFailed(c, err, timeout)
		return
	}
	c.SetDeadline(time.Time{})
	go ssh.DiscardRequests(reqs)
	node := conn.Permissions.Extensions[NodeExtension]
	s.logger().Debug("node connected", "peer", node, "remote", c.RemoteAddr().String())
	s.Handler(ctx, node, conn, chans)
	conn.Close()
}

// Shutdown stops the server without interrupting its connections: it
// closes the listeners, so that Serve returns ErrServerClosed, refuses a
// connection accepted but not yet served, and waits until every
// connection's handler has returned. If ctx ends first, Shutdown returns
// ctx's error and the connections stay open; Close ends them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	done := make(chan struct{})
	go func() {
		s.wg.Wait() // returns at the latest once Close has ended every connection
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transport: shutdown: %w", ctx.Err())
	}
}

// stopAccepting marks the server closed and closes its listeners.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
}

// Close stops the listeners and closes every connection, and returns
// once every connection's handler has.
func (s *Server) Close() error {
	s.stopAccepting()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
