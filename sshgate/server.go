package sshgate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"switchyard/audit"
	"switchyard/control"
	"switchyard/safelog"
	"switchyard/transport"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("sshgate: server closed")

// Directory answers identity questions from the current config. The wiring
// swaps it on reload with Server.SetDirectory.
type Directory interface {
	UserForKey(key gossh.PublicKey) (user string, ok bool) // the user owning key
	IsUser(name string) bool                               // name is a Switchyard user
	IsApp(name string) bool                                // name is an app
}

// Placer is the subset of the broker client the gateway uses.
type Placer interface {
	Place(ctx context.Context, req control.PlaceRequest) (control.Placement, error)
	SessionStarted(ctx context.Context, s control.SessionInfo) error // notification
	SessionEnded(ctx context.Context, s control.SessionEnded) error  // notification
	// SessionDetached tells the broker a PTY session's client left and
	// the session lives on, detached (notification).
	SessionDetached(ctx context.Context, s control.SessionInfo) error
	// Sessions returns user's sessions, attached and detached, on every
	// server, each with its server's Addr. The gateway passes the
	// authenticated user only.
	Sessions(ctx context.Context, user string) ([]control.SessionInfo, error)
	// Apps returns the apps user may run, with descriptions and hints.
	Apps(ctx context.Context, user string) ([]control.AppInfo, error)
}

// Opener opens channels on persistent, authenticated connections to app
// servers, and to other gateways' internal listeners for relayed sessions
// (node is then a gateway and chanType control.ChannelRelay).
type Opener interface {
	OpenChannel(ctx context.Context, node, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error)
}

// Terminal is the client side of a session, lent to NoApp while no app runs.
type Terminal struct {
	User string           // Switchyard user the session belongs to
	Pty  *control.PtySpec // the terminal at the time NoApp is called; never nil (NoApp runs only under a PTY)
	// In is the client's stdin. It has SetReadDeadline, which interrupts
	// a pending Read without taking bytes, and returns io.EOF once NoApp
	// has returned, without taking more.
	In  io.Reader
	Out io.Writer // client stdout, raw bytes (write "\r\n" under a PTY)

	ss *session
}

// OnResize has f called with the terminal's new size at each window
// change until NoApp returns, and at once if it changed since t.Pty; nil
// stops the calls. f runs in the goroutine that serves the client's
// requests, or in OnResize: it must not block.
func (t Terminal) OnResize(f func(control.PtySpec)) {
	if t.ss != nil {
		t.ss.setOnResize(f, t.Pty)
	}
}

// Menu is what the picker may offer: the user's detached sessions, most
// recently started first, and the apps the user may run, by name.
type Menu struct {
	Sessions []control.SessionInfo
	Apps     []control.AppInfo
}

// Choice is what NoApp chose: an app to launch (with its arguments), or a
// session to resume by id. Both empty: the user left (the session exits 0).
type Choice struct {
	App    string
	Args   []string
	Resume string // session id, one of Menu.Sessions
}

// NoAppFunc chooses what a session whose client named no app runs (the
// picker). It is called only when the client asked for a PTY, with the
// user's Menu. An error becomes the session's one-line failure: ErrNoApp
// and control RemoteErrors keep their exit status, anything else is
// internal.
type NoAppFunc func(ctx context.Context, t Terminal, m Menu) (Choice, error)

// Server is a gateway. Set the fields, then call Serve; do not change them
// afterwards (use SetDirectory to swap the Directory).
type Server struct {
	Name             string         // this gateway's node name, sent to the broker
	HostSigners      []gossh.Signer // user-facing host keys, required
	Directory        Directory      // identity source; required unless SetDirectory is called first
	Placer           Placer         // broker client, required
	Opener           Opener         // connections to app servers, required
	Logger           *slog.Logger   // slog.Default() if nil
	Capacity         int            // max concurrent sessions; 0 means no limit (the config's default is 1000)
	HandshakeTimeout time.Duration  // time to authenticate; 20s if zero
	PlaceTimeout     time.Duration  // bound on a Place call and each notification; 5s if zero
	StartTimeout     time.Duration  // bound on opening the spawn channel and its started request; 10s if zero
	NoApp            NoAppFunc      // picker for PTY sessions naming no app; a hint and exit 64 if nil or without a PTY
	AliveInterval    time.Duration  // ask a silent client for a reply this often; 15s if zero
	AliveCountMax    int            // close after this many unanswered asks; 3 if zero
	PasswordAuth     bool           // offer "password" (the Directory must implement Passwords); not advertised if false
	Audit            *audit.Log     // audit events of logins, accepted and refused; none if nil
	RideThrough      time.Duration  // how long a PTY session whose link to appd dropped waits to re-attach; 10s if zero, never if negative

	// Password hash checks (argon2id may take 64 MiB each) run at most
	// MaxPasswordChecks at a time (runtime.NumCPU() if zero); an attempt
	// that finds no free slot within PasswordWait (2s if zero) fails as a
	// wrong password does.
	MaxPasswordChecks int
	PasswordWait      time.Duration

	// Limits; see doc.go for what the client sees when it hits each.
	MaxAuthTries       int              // failed authentication attempts per connection; 6 if zero
	AuthFailLimit      int              // failed attempts from one IP within AuthFailWindow that block it; 20 if zero
	AuthFailWindow     time.Duration    // the counting window, and how long a blocked IP is refused; 1m if zero
	MaxConnsPerSource  int              // concurrent connections from one IP; 50 if zero
	MaxSessionsPerUser int              // concurrent sessions of one user on this gateway; 20 if zero
	MaxChannelsPerConn int              // concurrent session channels on one connection; 10 if zero
	Clock              func() time.Time // certificate validity and throttling; time.Now if nil

	dir          atomic.Pointer[dirBox] // set by SetDirectory; overrides Directory
	active       atomic.Int64           // sessions holding a capacity slot
	authFailures atomic.Uint64          // failed logins, since start
	failures     failureCounts          // the same, by reason
	handlers     atomic.Int64           // running session channel handlers
	conns        atomic.Int64           // open client connections, from accept (handshaking ones too) to close
	closed       atomic.Bool
	sources      sources         // per client IP: connections, failed logins
	users        transport.Slots // sessions per user
	pwOnce       sync.Once
	pwSlots      chan struct{}               // semaphore of password checks
	repeatMu     sync.Mutex                  // guards repeats
	repeats      map[string]*safelog.Repeats // by event: summarised log lines

	mu        sync.Mutex // guards gl, listeners, evict and evictNow
	gl        *gliderssh.Server
	listeners map[*onceCloseListener]struct{}
	evict     context.Context    // cancelled by Evict (see evicting)
	evictNow  context.CancelFunc // cancels evict
}

type dirBox struct{ d Directory }

// SetDirectory swaps the Directory used for new authentications. It is safe
// to call at any time; established sessions keep their identity.
func (s *Server) SetDirectory(d Directory) { s.dir.Store(&dirBox{d}) }

// AuthFailures returns how many logins failed since start: wrong
// passwords, and connections that tried to authenticate and ended
// without succeeding (a key merely offered and refused is not one).
func (s *Server) AuthFailures() uint64 { return s.authFailures.Load() }

// Sessions returns the number of active sessions.
func (s *Server) Sessions() int { return int(s.active.Load()) }

// Serve accepts connections on ln until Shutdown or Close, after which it
// returns ErrServerClosed. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	gl, err := s.glider()
	if err != nil {
		ln.Close()
		return err
	}
	ocl := &onceCloseListener{Listener: ln}
	if !s.track(ocl) {
		ocl.Close()
		return ErrServerClosed
	}
	defer s.untrack(ocl)
	err = gl.Serve(ocl)
	if s.closed.Load() || errors.Is(err, gliderssh.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections and waits for the existing ones and
// their sessions to end, or for ctx to be done.
func (s *Server) Shutdown(ctx context.Context) error {
	gl := s.stop()
	if gl != nil {
		_ = gl.Shutdown(ctx) // its only error is ctx's (listeners close once), checked below
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for (s.handlers.Load() > 0 || s.conns.Load() > 0) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	return ctx.Err()
}

// Close stops accepting connections and closes every connection at once:
// appd hangs up their batch apps and detaches their PTY sessions, which
// stay resumable through another gateway for their app's grace period.
func (s *Server) Close() error {
	if gl := s.stop(); gl != nil {
		return gl.Close()
	}
	return nil
}

// stop marks the server closed and closes its listeners.
func (s *Server) stop() *gliderssh.Server {
	s.mu.Lock()
	s.closed.Store(true)
	lns := make([]*onceCloseListener, 0, len(s.listeners))
	for l := range s.listeners {
		lns = append(lns, l)
	}
	gl := s.gl
	s.mu.Unlock()
	// Closed without s.mu: a close may wait for an accept in progress,
	// and every session takes s.mu (evicting) as it starts.
	for _, l := range lns {
		l.Close()
	}
	return gl
}

func (s *Server) track(l *onceCloseListener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*onceCloseListener]struct{})
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) untrack(l *onceCloseListener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, l)
}

// glider builds the gliderlabs server once.
func (s *Server) glider() (*gliderssh.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gl != nil {
		return s.gl, nil
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	signers := make([]gliderssh.Signer, len(s.HostSigners))
	for i, sg := range s.HostSigners {
		signers[i] = sg
	}
	s.gl = &gliderssh.Server{
		HostSigners:              signers,
		Handler:                  func(gliderssh.Session) {}, // unused: we own "session"
		ServerConfigCallback:     s.serverConfig,
		ConnCallback:             s.onConn,
		ConnectionFailedCallback: s.connFailed,
		// Only our session handler: every other channel type (direct-tcpip,
		// x11, ...) is rejected, every global request answered false.
		ChannelHandlers:   map[string]gliderssh.ChannelHandler{"session": s.handleChannel},
		RequestHandlers:   map[string]gliderssh.RequestHandler{},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{},
	}
	return s.gl, nil
}

// connFailed is gliderlabs' ConnectionFailedCallback: the SSH handshake
// failed. A client that hung up, or a connection the handshake timer
// closed, is logged by connClosed or the timer, refused authentication
// by logRefused; anything else (garbage, no
// common algorithm, too many tries) is logged here, summarised per address.
func (s *Server) connFailed(conn net.Conn, err error) {
	var authErr *gossh.ServerAuthError
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &authErr) {
		return
	}
	s.logRepeated(context.Background(), slog.LevelDebug, "connection failed", hostOf(conn.RemoteAddr()),
		"client", conn.RemoteAddr().String(), "err", safelog.Text(err.Error(), 256))
}

func (s *Server) validate() error {
	switch {
	case len(s.HostSigners) == 0:
		return errors.New("sshgate: no host key")
	case s.directory() == nil:
		return errors.New("sshgate: no Directory")
	case s.Placer == nil:
		return errors.New("sshgate: no Placer")
	case s.Opener == nil:
		return errors.New("sshgate: no Opener")
	}
	return nil
}

func (s *Server) directory() Directory {
	if b := s.dir.Load(); b != nil {
		return b.d
	}
	return s.Directory
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// capacity is the most sessions the gateway holds at once: Capacity, or
// no limit when it is 0 (as a server's max_sessions and the broker's and
// selection's limits).
func (s *Server) capacity() int64 {
	if s.Capacity <= 0 {
		return math.MaxInt64
	}
	return int64(s.Capacity)
}

func (s *Server) handshakeTimeout() time.Duration {
	return orDefault(s.HandshakeTimeout, defaultHandshakeTimeout)
}

func (s *Server) placeTimeout() time.Duration { return orDefault(s.PlaceTimeout, 5*time.Second) }

func (s *Server) startTimeout() time.Duration { return orDefault(s.StartTimeout, 10*time.Second) }
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Acquire takes a capacity slot, as each session does; false when the
// gateway is full. The wiring also takes one for each session this
// gateway relays for another gateway, so Sessions counts those too.
func (s *Server) Acquire() bool {
	if s.active.Add(1) > s.capacity() {
		s.active.Add(-1)
		return false
	}
	return true
}

// Release gives back a slot taken with Acquire.
func (s *Server) Release() { s.active.Add(-1) }

// onceCloseListener lets Shutdown and gliderlabs both close a listener.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
