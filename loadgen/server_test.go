package loadgen

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
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

func newSigner(t *testing.T, path string) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if path != "" {
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{KeyFile: filepath.Join(dir, "user"), KnownHosts: filepath.Join(dir, "known_hosts")}
	user := newSigner(t, ts.KeyFile)
	host := newSigner(t, "")
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if !bytes.Equal(k.Marshal(), user.PublicKey().Marshal()) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, nil
	}}
	cfg.AddHostKey(host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.Addr = ln.Addr().String()
	line := knownhosts.Line([]string{ts.Addr}, host.PublicKey()) + "\n"
	if err := os.WriteFile(ts.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); serveConn(c, cfg) }()
		}
	}()
	return ts
}

func serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go serveSession(ch, chReqs)
	}
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
			n := binary.BigEndian.Uint32(req.Payload)
			cmd := string(req.Payload[4 : 4+n])
			req.Reply(true, nil)
			go func() {
				runCommand(ch, cmd, pty)
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
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
