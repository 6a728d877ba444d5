package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dialer opens SSH connections to the target of a Config.
type dialer struct {
	addr string
	cfg  *ssh.ClientConfig
}

// newDialer reads the key and known hosts files of c.
func newDialer(c Config) (*dialer, error) {
	pem, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", c.KeyFile, err)
	}
	cfg := &ssh.ClientConfig{
		User:            c.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         c.OpTimeout,
	}
	cfg.Ciphers = c.Ciphers
	if !c.Insecure {
		cb, err := knownhosts.New(c.KnownHosts)
		if err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		cfg.HostKeyCallback = cb
		cfg.HostKeyAlgorithms = hostKeyAlgorithms(cb, c.Addr)
	}
	return &dialer{addr: c.Addr, cfg: cfg}, nil
}

// hostKeyAlgorithms lists the algorithms of the keys known for addr, so
// that the server shows one of those (x/crypto/ssh would otherwise take
// the first it likes, which may be a key not in the file). Nil means the
// library's default.
func hostKeyAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	probe := probeKey{}
	var ke *knownhosts.KeyError
	if err := cb(addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, probe); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// probeKey is a public key no known_hosts file holds.
type probeKey struct{}

func (probeKey) Type() string                        { return "loadgen-probe" }
func (probeKey) Marshal() []byte                     { return []byte("loadgen-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("loadgen: probe key") }

// dial opens a TCP connection and an authenticated SSH client, giving up
// when ctx ends.
func (d *dialer) dial(ctx context.Context) (*ssh.Client, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", d.addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, d.addr, d.cfg)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s: %w", d.addr, err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// session is a started session with its pipes.
type session struct {
	*ssh.Session
	stdin  io.WriteCloser
	stdout io.Reader
}

// start opens a session on client, requests a PTY if c.PTY, and execs
// c.Cmd. Stderr is discarded.
func start(client *ssh.Client, c Config) (*session, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("new session: %w", err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	if c.PTY {
		if err := s.RequestPty(c.Term, c.Rows, c.Cols, ssh.TerminalModes{}); err != nil {
			s.Close()
			return nil, fmt.Errorf("pty-req: %w", err)
		}
	}
	if err := s.Start(c.Cmd); err != nil {
		s.Close()
		return nil, fmt.Errorf("exec %q: %w", c.Cmd, err)
	}
	return &session{Session: s, stdin: stdin, stdout: stdout}, nil
}

// within runs f and returns its error, or gives up after d or when ctx
// ends. A stuck f keeps running until its connection is closed.
func within(ctx context.Context, d time.Duration, what string, f func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
		return fmt.Errorf("%s: no answer within %v", what, d)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// readUntil reads r until want has appeared copies times.
func readUntil(r io.Reader, want []byte, copies int) error {
	var got []byte
	buf := make([]byte, 512)
	for bytes.Count(got, want) < copies {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("waiting for %q: got %q: %w", want, tail(got), err)
		}
	}
	return nil
}

// tail is the end of b, short enough for an error message.
func tail(b []byte) []byte {
	if len(b) > 80 {
		return b[len(b)-80:]
	}
	return b
}

// dialSession opens one connection and starts one session on it; the
// connection closes when ctx ends. done closes both.
func dialSession(ctx context.Context, c Config, d *dialer) (*session, func(), error) {
	client, err := d.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { client.Close() })
	s, err := start(client, c)
	if err != nil {
		stop()
		client.Close()
		return nil, nil, err
	}
	return s, func() { s.Close(); stop(); client.Close() }, nil
}
