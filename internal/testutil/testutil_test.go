package testutil

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	n := 0
	if !Poll(time.Minute, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("Poll gave up or went on asking: asked %d times", n)
	}
	if Poll(0, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
}

// recorder is a testing.TB that records failures instead of ending the test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()                    {}
func (r *recorder) Errorf(string, ...any)      { r.failed = true }
func (r *recorder) Fatalf(string, ...any)      { r.failed = true }
func (r *recorder) Fatal(...any)               { r.failed = true }
func (r *recorder) Cleanup(f func())           { r.TB.Cleanup(f) }
func (r *recorder) TempDir() string            { return r.TB.TempDir() }
func (r *recorder) Logf(f string, args ...any) { r.TB.Logf(f, args...) }

func TestGolden(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "x.golden"), []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	Golden(r, "x", "same\n")
	if r.failed {
		t.Error("equal text failed the comparison")
	}
	Golden(r, "x", "other\n")
	if !r.failed {
		t.Error("different text passed the comparison")
	}
}

// After the cut, bytes no longer pass, and neither end sees a close.
func TestPartition(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	addr, cut := Partition(t, ln.Addr().String())
	client, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := Recv(t, accepted, 10*time.Second, "the forwarded connection")
	defer server.Close()
	client.Write([]byte("ping"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(server, b); err != nil || string(b) != "ping" {
		t.Fatalf("before the cut: %q, %v", b, err)
	}
	cut()
	client.Write([]byte("lost"))
	server.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := server.Read(b); n != 0 || !os.IsTimeout(err) {
		t.Fatalf("after the cut the server read %q, %v; want silence", b[:n], err)
	}
}
