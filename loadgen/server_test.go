package loadgen

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"switchyard/internal/sshtest"
	"switchyard/sshmsg"
)

// testServer is an x/crypto/ssh server on 127.0.0.1:0 with a few
// commands: "cat" copies stdin (each line twice with a PTY, as a
// terminal's echo plus cat would), "echo WORDS", "zeros N", and "rawcat",
// which prints "ready\n" then copies stdin byte by byte.
type testServer struct {
	Addr       string
	KeyFile    string // the user's private key
	KnownHosts string // the server's host key
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{KeyFile: filepath.Join(dir, "user"), KnownHosts: filepath.Join(dir, "known_hosts")}
	user := sshtest.WriteKey(t, ts.KeyFile)
	host := sshtest.NewSigner(t)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if !bytes.Equal(k.Marshal(), user.PublicKey().Marshal()) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, nil
	}}
	cfg.AddHostKey(host)
	ts.Addr = sshtest.Serve(t, cfg, serveChannel)
	line := knownhosts.Line([]string{ts.Addr}, host.PublicKey()) + "\n"
	if err := os.WriteFile(ts.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return ts
}

// serveChannel serves a session channel and refuses any other.
func serveChannel(nc ssh.NewChannel) {
	if nc.ChannelType() != "session" {
		nc.Reject(ssh.UnknownChannelType, "sessions only")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	serveSession(ch, reqs)
}

func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	pty := false
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			pty = true
			req.Reply(true, nil)
		case "exec":
			var exec sshmsg.Exec
			if ssh.Unmarshal(req.Payload, &exec) != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				runCommand(ch, exec.Command, pty)
				ch.SendRequest("exit-status", false, ssh.Marshal(sshmsg.ExitStatus{Status: 0}))
				ch.Close()
			}()
		case "signal":
			ch.Close()
		default:
			req.Reply(false, nil)
		}
	}
}

func runCommand(ch ssh.Channel, cmd string, pty bool) {
	name, arg, _ := strings.Cut(cmd, " ")
	switch name {
	case "echo":
		io.WriteString(ch, arg+"\n")
	case "zeros":
		n, _ := strconv.Atoi(arg)
		io.Copy(ch, io.LimitReader(zeroReader{}, int64(n)))
	case "rawcat":
		io.WriteString(ch, "ready\n")
		io.Copy(ch, ch)
	case "cat":
		if !pty {
			io.Copy(ch, ch)
			ch.CloseWrite()
			return
		}
		r := bufio.NewReader(ch)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			ch.Write(append(line, line...))
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
