package sshgate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// waitFor bounds every wait in these tests.
const waitFor = 10 * time.Second

// recv receives from ch or fails the test after waitFor.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	return testutil.Recv(t, ch, waitFor, what)
}

// fakeDir is a Directory over fixed maps.
type fakeDir struct {
	keys  map[string]string // marshaled public key → user
	users map[string]bool
	apps  map[string]bool
}

func (d *fakeDir) UserForKey(k gossh.PublicKey) (string, bool) {
	u, ok := d.keys[string(k.Marshal())]
	return u, ok
}
func (d *fakeDir) IsUser(name string) bool { return d.users[name] }
func (d *fakeDir) IsApp(name string) bool  { return d.apps[name] }

// fakePlacer records calls; place decides the answer, sessions and apps
// are what Sessions (for any user: the gateway must filter too) and Apps
// return.
type fakePlacer struct {
	place    func(ctx context.Context, req control.PlaceRequest) (control.Placement, error)
	reqs     chan control.PlaceRequest
	started  chan control.SessionInfo
	ended    chan control.SessionEnded
	listed   chan string // the user of each Sessions or Apps call
	mu       sync.Mutex  // guards sessions, apps, listErr and detached
	sessions []control.SessionInfo
	detached []control.SessionInfo // SessionDetached calls
	apps     []control.AppInfo
	listErr  error
}

func newFakePlacer(addr string) *fakePlacer {
	return &fakePlacer{
		place: func(context.Context, control.PlaceRequest) (control.Placement, error) {
			return control.Placement{Server: "s1", Addr: addr, Reason: "test: only server"}, nil
		},
		reqs:    make(chan control.PlaceRequest, 16),
		started: make(chan control.SessionInfo, 16),
		ended:   make(chan control.SessionEnded, 16),
		listed:  make(chan string, 16),
	}
}

func (p *fakePlacer) Sessions(_ context.Context, user string) ([]control.SessionInfo, error) {
	p.listed <- user
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]control.SessionInfo(nil), p.sessions...), p.listErr
}

func (p *fakePlacer) Apps(_ context.Context, user string) ([]control.AppInfo, error) {
	p.listed <- user
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]control.AppInfo(nil), p.apps...), p.listErr
}

func (p *fakePlacer) Place(ctx context.Context, req control.PlaceRequest) (control.Placement, error) {
	p.reqs <- req
	return p.place(ctx, req)
}

func (p *fakePlacer) SessionStarted(_ context.Context, s control.SessionInfo) error {
	p.started <- s
	return nil
}

func (p *fakePlacer) SessionEnded(_ context.Context, s control.SessionEnded) error {
	p.ended <- s
	return nil
}

func (p *fakePlacer) SessionDetached(_ context.Context, s control.SessionInfo) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detached = append(p.detached, s)
	return nil
}

// dialOpener dials each address once (the test appd, or one where
// nothing listens) and opens every channel on that persistent
// connection.
type dialOpener struct {
	mu    sync.Mutex
	conns map[string]*gossh.Client
	errs  map[string]error
}

func (o *dialOpener) OpenChannel(_ context.Context, _, addr, chanType string, extra []byte) (gossh.Channel, <-chan *gossh.Request, error) {
	client, err := o.dial(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial appd %s: %w", addr, err)
	}
	return client.OpenChannel(chanType, extra)
}

func (o *dialOpener) dial(addr string) (*gossh.Client, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.conns[addr]; ok {
		return c, o.errs[addr]
	}
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User:            "gw1",
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), // test appd only
	})
	if o.conns == nil {
		o.conns, o.errs = map[string]*gossh.Client{}, map[string]error{}
	}
	o.conns[addr], o.errs[addr] = c, err
	return c, err
}

func (o *dialOpener) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.conns {
		if c != nil {
			c.Close()
		}
	}
}

// env is a gateway on loopback with its fakes and two users' keys.
type env struct {
	t      *testing.T
	srv    *Server
	addr   string
	placer *fakePlacer
	appd   *testAppd
	logs   *testutil.Buffer
	alice  gossh.Signer
	bob    gossh.Signer
	served chan error // Serve's result
}

func newEnv(t *testing.T, opts ...func(*Server)) *env {
	t.Helper()
	e := &env{t: t, appd: startAppd(t), logs: &testutil.Buffer{}, alice: sshtest.NewSigner(t), bob: sshtest.NewSigner(t), served: make(chan error, 1)}
	e.placer = newFakePlacer(e.appd.addr)
	opener := &dialOpener{}
	dir := &fakeDir{
		keys: map[string]string{
			string(e.alice.PublicKey().Marshal()): "alice",
			string(e.bob.PublicKey().Marshal()):   "bob",
		},
		users: map[string]bool{"alice": true, "bob": true},
		apps:  map[string]bool{"htop": true, "raw": true, "winch": true},
	}
	e.srv = &Server{
		Name:        "gw1",
		HostSigners: []gossh.Signer{sshtest.NewSigner(t)},
		Directory:   dir,
		Placer:      e.placer,
		Opener:      opener,
		Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(e.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go func() { e.served <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		e.srv.Close()
		opener.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *env) clientConfig(login string, auth ...gossh.AuthMethod) *gossh.ClientConfig {
	return &gossh.ClientConfig{
		User:            login,
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(e.srv.HostSigners[0].PublicKey()),
		Timeout:         waitFor,
	}
}

func (e *env) dial(login string, signer gossh.Signer) (*gossh.Client, error) {
	return e.dialConfig(e.clientConfig(login, gossh.PublicKeys(signer)))
}

func (e *env) dialConfig(cfg *gossh.ClientConfig) (*gossh.Client, error) {
	c, err := gossh.Dial("tcp", e.addr, cfg)
	if err == nil {
		e.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// dialFrom dials from the loopback source address src (127.0.0.x): the
// gateway keeps its limits and log summaries per source address.
func (e *env) dialFrom(src, login string, signer gossh.Signer) (*gossh.Client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitFor}
	conn, err := d.Dial("tcp", e.addr)
	if err != nil {
		return nil, err
	}
	sc, chans, reqs, err := gossh.NewClientConn(conn, e.addr, e.clientConfig(login, gossh.PublicKeys(signer)))
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := gossh.NewClient(sc, chans, reqs)
	e.t.Cleanup(func() { c.Close() })
	return c, nil
}

func (e *env) mustDial(login string, signer gossh.Signer) *gossh.Client {
	e.t.Helper()
	c, err := e.dial(login, signer)
	if err != nil {
		e.t.Fatalf("dial as %s: %v", login, err)
	}
	return c
}

// result is what an SSH client saw of one session.
type result struct {
	stdout, stderr string
	status         int    // exit status; -1 for a signal, -2 when none came
	signal         string // signal name, without "SIG"
}

// runOpts shapes one client session.
type runOpts struct {
	pty   bool
	stdin string
}

// clientModes are the terminal modes the test client sends; wantPty is the
// terminal the gateway should pass on.
var (
	clientModes = gossh.TerminalModes{gossh.VERASE: 8, gossh.IXON: 0, gossh.IUTF8: 1, gossh.TTY_OP_OSPEED: 38400}
	wantPty     = control.PtySpec{Term: "xterm-256color", Cols: 80, Rows: 24,
		Modes: map[uint8]uint32{gossh.VERASE: 8, gossh.IXON: 0, gossh.IUTF8: 1, gossh.TTY_OP_OSPEED: 38400}}
)

// run runs cmd ("" for a shell) in a new session on c and waits for its end.
func (e *env) run(c *gossh.Client, cmd string, o runOpts) result {
	e.t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		e.t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	sess.Stdin = strings.NewReader(o.stdin)
	if o.pty {
		if err := sess.RequestPty("xterm-256color", 24, 80, clientModes); err != nil {
			e.t.Fatalf("pty-req: %v", err)
		}
	}
	done := make(chan error, 1)
	go func() {
		if cmd == "" {
			if err := sess.Shell(); err != nil {
				done <- err
				return
			}
			done <- sess.Wait()
			return
		}
		done <- sess.Run(cmd)
	}()
	err = recv(e.t, done, "session end")
	r := result{status: 0}
	var ee *gossh.ExitError
	var missing *gossh.ExitMissingError
	switch {
	case errors.As(err, &ee):
		r.status, r.signal = ee.ExitStatus(), ee.Signal()
		if ee.Signal() != "" {
			r.status = -1
		}
	case errors.As(err, &missing):
		r.status = -2
	case err != nil:
		e.t.Fatalf("session: %v", err)
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return r
}

// failSigner offers a public key but cannot sign with it.
type failSigner struct {
	pub   gossh.PublicKey
	tried chan struct{} // closed when Sign is called: the server accepted the key
	once  sync.Once
}

func (f *failSigner) PublicKey() gossh.PublicKey { return f.pub }

func (f *failSigner) Sign(io.Reader, []byte) (*gossh.Signature, error) {
	f.once.Do(func() { close(f.tried) })
	return nil, errors.New("this signer cannot sign")
}
