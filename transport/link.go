package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
)

// ErrUnavailable is returned by Link.Peer while the peer cannot be reached.
var ErrUnavailable = errors.New("transport: peer unavailable")

// Link is a persistent control connection to one node (the broker), opened
// as a control channel over an internal SSH connection and re-established
// with backoff whenever it drops.
type Link struct {
	Identity Identity
	Peer     string          // node name dialed, e.g. "broker"
	Addr     func() string   // current address of the peer (config may reload)
	Key      KeyFunc         // listed node keys
	Handler  control.Handler // serves calls the peer makes to us; may be nil
	// OnConnect runs after each (re)connection, before Peer returns it,
	// e.g. to send a first report at once. May be nil.
	OnConnect func(ctx context.Context, p *control.Peer)
	Logger    *slog.Logger // slog.Default() if nil
	// MaxBackoff caps the wait between reconnection attempts; 5s if zero.
	// Nodes set it to the report interval, so that a restarted broker
	// hears from every node within about one interval.
	MaxBackoff time.Duration

	mu      sync.Mutex    // guards the fields below
	peer    *control.Peer // nil while disconnected
	down    error         // last dial failure; nil while connecting for the first time or up
	lostAt  time.Time     // when the link last went down after being up; zero if never
	changed chan struct{} // closed and replaced on every state change
}

func (l *Link) logger() *slog.Logger {
	if l.Logger == nil {
		return slog.Default()
	}
	return l.Logger
}

func (l *Link) state() (*control.Peer, error, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.peer, l.down, l.changed
}

func (l *Link) set(p *control.Peer, down error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.peer, l.down = p, down
	if l.changed != nil {
		close(l.changed)
	}
	l.changed = make(chan struct{})
}

// Current returns the connected peer, waiting only while a first connection
// attempt is in progress. While the peer is known to be down it fails at
// once with ErrUnavailable, so a user is told rather than kept waiting.
func (l *Link) Current(ctx context.Context) (*control.Peer, error) {
	for {
		p, down, changed := l.state()
		switch {
		case p != nil:
			return p, nil
		case down != nil:
			return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, l.Peer, down)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, l.Peer, ctx.Err())
		}
	}
}

// LostAt returns when the link last went down after being up: zero if
// it never was, or is up now.
func (l *Link) LostAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peer != nil {
		return time.Time{}
	}
	return l.lostAt
}

// Run keeps the link up until ctx ends. Between attempts it waits from
// 100 ms doubling up to MaxBackoff, each wait drawn at random from the
// upper half of its step (see backoff), so that links dropped together do
// not retry together.
func (l *Link) Run(ctx context.Context) error {
	wait := backoff{first: 100 * time.Millisecond, max: l.maxBackoff()}
	for {
		up, err := l.session(ctx)
		if ctx.Err() != nil {
			l.set(nil, ctx.Err())
			return ctx.Err()
		}
		if up {
			wait.reset()
			l.mu.Lock()
			l.lostAt = time.Now()
			l.mu.Unlock()
		}
		d := wait.next()
		l.logger().Warn("control link down", "peer", l.Peer, "err", err, "retry", d)
		l.set(nil, err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			l.set(nil, ctx.Err())
			return ctx.Err()
		case <-t.C:
		}
	}
}

// session dials once and serves the control channel until it ends. up
// reports whether the connection was established.
func (l *Link) session(ctx context.Context) (up bool, err error) {
	key, err := l.Key(l.Peer)
	if err != nil {
		return false, err
	}
	dctx, cancel := context.WithTimeout(ctx, defaultHandshakeTimeout)
	client, err := Dial(dctx, l.Identity, l.Peer, l.Addr(), key)
	cancel()
	if err != nil {
		return false, err
	}
	defer client.Close()
	ch, reqs, err := client.OpenChannel(control.ChannelControl, nil)
	if err != nil {
		return false, fmt.Errorf("open control channel to %s: %w", l.Peer, err)
	}
	go ssh.DiscardRequests(reqs)
	p := control.NewPeer(ch, l.Handler, l.logger())
	go func() {
		<-p.Done()
		client.Close()
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- p.Serve(ctx) }()
	if l.OnConnect != nil {
		l.OnConnect(ctx, p)
	}
	l.set(p, nil)
	l.logger().Info("control link up", "peer", l.Peer, "addr", l.Addr())
	return true, <-serveErr
}

func (l *Link) maxBackoff() time.Duration {
	if l.MaxBackoff <= 0 {
		return 5 * time.Second
	}
	return l.MaxBackoff
}
