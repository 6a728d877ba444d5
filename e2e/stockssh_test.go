package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"switchyard/config"
	"switchyard/internal/sshtest"
)

// OpenSSH builds command lines for the stock ssh binary against one SSH
// server on loopback. The cluster's users are ssh.Signers whose private
// keys cannot be written out, so OpenSSH signs for them through a small
// agent (IdentityAgent) and -i names the public key file, which with
// IdentitiesOnly=yes selects that one agent key. Keys made here (Stranger)
// are written as OpenSSH private key files.
type OpenSSH struct {
	Port  string
	dir   string // short temp dir: agent socket, key files, known_hosts
	known string // known_hosts holding the server's host key
	agent *signerAgent
	sock  string // the agent's socket
}

// NewOpenSSH prepares ssh command lines for the server at addr whose host
// key is hostKey. It skips the test when there is no ssh binary.
func NewOpenSSH(tb testing.TB, addr string, hostKey ssh.PublicKey) *OpenSSH {
	tb.Helper()
	needOpenSSH(tb)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	dir := shortTempDir(tb)
	o := &OpenSSH{Port: port, dir: dir, known: filepath.Join(dir, "known_hosts"),
		agent: &signerAgent{}, sock: filepath.Join(dir, "agent.sock")}
	line := knownhosts.Line([]string{"127.0.0.1:" + port}, hostKey) + "\n"
	if err := os.WriteFile(o.known, []byte(line), 0o600); err != nil {
		tb.Fatal(err)
	}
	o.agent.serve(tb, o.sock)
	return o
}

// GatewayOpenSSH is NewOpenSSH for a gateway of a test cluster.
func GatewayOpenSSH(t *testing.T, c *Cluster, gateway string) *OpenSSH {
	t.Helper()
	host, err := config.EnsureKey(c.cfg.Resolve(c.cfg.Gateways[gateway].HostKey))
	if err != nil {
		t.Fatal(err)
	}
	return NewOpenSSH(t, c.GatewayAddr(gateway), host.PublicKey())
}

// shortTempDir is a temp dir with a path short enough for Unix sockets.
func shortTempDir(tb testing.TB) string {
	dir, err := os.MkdirTemp("", "sy")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Key makes signer usable by ssh and returns the file for -i.
func (o *OpenSSH) Key(tb testing.TB, name string, signer ssh.Signer) string {
	tb.Helper()
	o.agent.add(signer)
	path := filepath.Join(o.dir, name+".pub")
	if err := os.WriteFile(path, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// Stranger writes a new key nobody authorized as an OpenSSH private key
// file and returns its path.
func (o *OpenSSH) Stranger(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(o.dir, "stranger")
	sshtest.WriteKey(tb, path)
	return path
}

// At is the destination argument for login.
func (o *OpenSSH) At(login string) string { return login + "@127.0.0.1" }

// Args is ssh's argument list: no user config, batch mode, strict host
// key checking against this server's key only, the identity in keyFile
// only; then rest (more options, the destination, a command).
func (o *OpenSSH) Args(keyFile string, rest ...string) []string {
	return append([]string{
		"-F", "/dev/null", "-p", o.Port, "-i", keyFile,
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=" + o.sock,
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + o.known, "-o", "GlobalKnownHostsFile=/dev/null",
	}, rest...)
}

// Run runs ssh with Args(keyFile, rest...) and stdin, and returns its
// stdout, stderr and exit code. It fails the test if ssh does not end
// within 20 s.
func (o *OpenSSH) Run(t *testing.T, stdin io.Reader, keyFile string, rest ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", o.Args(keyFile, rest...)...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.Bytes(), errOut.Bytes(), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return out.Bytes(), errOut.Bytes(), ee.ExitCode()
	default:
		t.Fatalf("ssh %v: %v (ctx %v)\nstderr: %s", rest, err, ctx.Err(), errOut.Bytes())
		return nil, nil, 0
	}
}

// shellQuote joins argv into one sh command line.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// signerAgent is an ssh-agent that signs with ssh.Signers. It cannot add,
// remove or lock keys.
type signerAgent struct {
	mu      sync.Mutex // guards signers
	signers []ssh.Signer
}

var errReadOnlyAgent = errors.New("e2e agent: keys cannot be added, removed or locked")

func (a *signerAgent) add(s ssh.Signer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.signers = append(a.signers, s)
}

// serve answers agent requests on a Unix socket until the test ends.
func (a *signerAgent) serve(tb testing.TB, sock string) {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); agent.ServeAgent(a, conn) }()
		}
	}()
}

func (a *signerAgent) List() ([]*agent.Key, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]*agent.Key, len(a.signers))
	for i, s := range a.signers {
		keys[i] = &agent.Key{Format: s.PublicKey().Type(), Blob: s.PublicKey().Marshal()}
	}
	return keys, nil
}

func (a *signerAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.signers {
		if bytes.Equal(s.PublicKey().Marshal(), key.Marshal()) {
			return s.Sign(rand.Reader, data)
		}
	}
	return nil, errors.New("e2e agent: no such key")
}

func (a *signerAgent) Signers() ([]ssh.Signer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ssh.Signer(nil), a.signers...), nil
}

func (a *signerAgent) Add(agent.AddedKey) error   { return errReadOnlyAgent }
func (a *signerAgent) Remove(ssh.PublicKey) error { return errReadOnlyAgent }
func (a *signerAgent) RemoveAll() error           { return errReadOnlyAgent }
func (a *signerAgent) Lock([]byte) error          { return errReadOnlyAgent }
func (a *signerAgent) Unlock([]byte) error        { return errReadOnlyAgent }
