package appd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/sshmsg"
)

// waitTimeout bounds every wait for a condition in these tests.
const waitTimeout = 10 * time.Second

// newTestManager returns a Manager named "s1" with apps, logging to t.
// Cleanup shuts it down, so that no session outlives the test (and logs
// to t after it ended).
func newTestManager(t testing.TB, apps map[string]App) *Manager {
	m := &Manager{Server: "s1", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	m.SetApps(apps)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		m.Shutdown(ctx)
	})
	return m
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// dialManager stands up an SSH server on a loopback TCP port that hands
// every spawn@switchyard channel to m.HandleSpawn as gateway "gw1" and
// every attach@switchyard channel to m.HandleAttach as gateway "gw2", and
// returns a client connected to it. Cleanup closes both and waits for every
// HandleSpawn to return. NoClientAuth: this is a test-only server.
func dialManager(t testing.TB, m *Manager) *ssh.Client {
	t.Helper()
	return dialManagerContext(t, context.Background(), m)
}

// dialManagerContext is dialManager with parent as the context of every
// HandleSpawn.
func dialManagerContext(t testing.TB, parent context.Context, m *Manager) *ssh.Client {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	wg.Go(func() { serveSSH(ctx, ln, cfg, m, &wg) })
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User:            "gw1",
		HostKeyCallback: ssh.FixedHostKey(signer.PublicKey()),
		Timeout:         waitTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		ln.Close()
		cancel()
		wg.Wait()
	})
	return client
}

// serveSSH accepts connections on ln until it is closed.
func serveSSH(ctx context.Context, ln net.Listener, cfg *ssh.ServerConfig, m *Manager, wg *sync.WaitGroup) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
			if err != nil {
				return
			}
			defer conn.Close()
			go ssh.DiscardRequests(reqs)
			for newCh := range chans {
				switch newCh.ChannelType() {
				case control.ChannelSpawn:
					wg.Go(func() { m.HandleSpawn(ctx, newCh, "gw1") })
				case control.ChannelAttach:
					wg.Go(func() { m.HandleAttach(ctx, newCh, "gw2") })
				default:
					newCh.Reject(ssh.UnknownChannelType, "unknown channel type")
				}
			}
		})
	}
}

// spawned is the client side of one spawn channel: output collected in
// the background, requests recorded.
type spawned struct {
	t  testing.TB
	ch ssh.Channel

	started control.Started
	notify  chan struct{} // receives after every change below

	mu       sync.Mutex // guards the fields below
	stdout   bytes.Buffer
	stderr   bytes.Buffer
	exit     *ssh.Request // exit-status or exit-signal
	types    []string     // every request's type after started@switchyard, in order
	closed   bool         // the channel's requests ended: it is closed
	outDone  int          // output streams at EOF (2 = both)
	startErr error
}

// spawn opens a spawn channel with req and waits for started@switchyard.
func spawn(t testing.TB, c *ssh.Client, req control.SpawnRequest) *spawned {
	t.Helper()
	s, err := trySpawn(t, c, req)
	if err != nil {
		t.Fatalf("spawn %q: %v", req.App, err)
	}
	return s
}

// trySpawn is spawn returning the channel-open error.
func trySpawn(t testing.TB, c *ssh.Client, req control.SpawnRequest) (*spawned, error) {
	t.Helper()
	return openChannel(t, c, control.ChannelSpawn, req)
}

// openChannel opens a spawn or attach channel with req as its extra data
// and waits for started@switchyard.
func openChannel(t testing.TB, c *ssh.Client, chanType string, req any) (*spawned, error) {
	t.Helper()
	extra, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ch, reqs, err := c.OpenChannel(chanType, extra)
	if err != nil {
		return nil, err
	}
	s := &spawned{t: t, ch: ch, notify: make(chan struct{}, 1)}
	first := <-reqs
	if first == nil || first.Type != control.RequestStarted {
		t.Fatalf("first request = %v, want %s", first, control.RequestStarted)
	}
	if err := json.Unmarshal(first.Payload, &s.started); err != nil {
		t.Fatalf("started payload: %v", err)
	}
	go s.collect(&s.stdout, ch)
	go s.collect(&s.stderr, ch.Stderr())
	go s.requests(reqs)
	t.Cleanup(func() { ch.Close() })
	return s, nil
}

func (s *spawned) collect(buf *bytes.Buffer, r io.Reader) {
	b := make([]byte, 32<<10)
	for {
		n, err := r.Read(b)
		s.update(func() {
			buf.Write(b[:n])
			if err != nil {
				s.outDone++
			}
		})
		if err != nil {
			return
		}
	}
}

func (s *spawned) requests(reqs <-chan *ssh.Request) {
	for r := range reqs {
		s.update(func() {
			s.types = append(s.types, r.Type)
			if r.Type == "exit-status" || r.Type == "exit-signal" {
				s.exit = r
			}
		})
	}
	s.update(func() { s.closed = true })
}

// update changes the state under s.mu and wakes waitFor.
func (s *spawned) update(f func()) {
	s.mu.Lock()
	f()
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// waitFor waits until cond, called under s.mu, holds.
func (s *spawned) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			s.mu.Lock()
			defer s.mu.Unlock()
			s.t.Fatalf("timed out waiting for %s; stdout %q, stderr %q", what, s.stdout.String(), s.stderr.String())
		}
	}
}

// waitOutput waits until stdout contains want.
func (s *spawned) waitOutput(want string) {
	s.t.Helper()
	s.waitFor("output "+want, func() bool { return strings.Contains(s.stdout.String(), want) })
}

// waitEnd waits for the channel to close and returns stdout, stderr and
// the exit request (nil if none came).
func (s *spawned) waitEnd() (stdout, stderr string, exit *ssh.Request) {
	s.t.Helper()
	s.waitFor("channel close", func() bool { return s.closed && s.outDone == 2 })
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdout.String(), s.stderr.String(), s.exit
}

// exitStatus waits for the end and returns the exit status.
func (s *spawned) exitStatus() int {
	s.t.Helper()
	_, _, exit := s.waitEnd()
	if exit == nil || exit.Type != "exit-status" {
		s.t.Fatalf("exit request = %v, want exit-status", exit)
	}
	var st sshmsg.ExitStatus
	if err := ssh.Unmarshal(exit.Payload, &st); err != nil {
		s.t.Fatal(err)
	}
	return int(st.Status)
}

// rejection returns the OpenChannelError err carries.
func rejection(t testing.TB, err error) *ssh.OpenChannelError {
	t.Helper()
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) {
		t.Fatalf("spawn error = %v, want an OpenChannelError", err)
	}
	return oce
}

// sh is an App running a shell snippet.
func sh(script string) App {
	return App{Argv: []string{"sh", "-c", script}, User: "nobody"}
}

// exitSignal returns the signal name of an exit-signal request, "" for
// anything else. A core dump fails the test.
func exitSignal(t testing.TB, exit *ssh.Request) string {
	t.Helper()
	if exit == nil || exit.Type != "exit-signal" {
		return ""
	}
	var sig sshmsg.ExitSignal
	if err := ssh.Unmarshal(exit.Payload, &sig); err != nil {
		t.Fatalf("exit-signal payload: %v", err)
	}
	if sig.CoreDumped {
		t.Errorf("exit-signal %s says core dumped", sig.Signal)
	}
	return sig.Signal
}
