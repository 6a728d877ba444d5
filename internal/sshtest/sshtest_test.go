package sshtest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestWriteKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id")
	s := WriteKey(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.PublicKey().Marshal(), s.PublicKey().Marshal()) {
		t.Fatal("the key file holds another key")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestChannelPair(t *testing.T) {
	near, nearReqs, far, farReqs := ChannelPair(t)
	go ssh.DiscardRequests(nearReqs)
	go ssh.DiscardRequests(farReqs)
	go func() { near.Write([]byte("hello")); near.CloseWrite() }()
	got, err := io.ReadAll(far)
	if err != nil || string(got) != "hello" {
		t.Fatalf("far end read %q, %v", got, err)
	}
}
