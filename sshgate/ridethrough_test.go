package sshgate

import (
	"io"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
)

// readN reads exactly n bytes from r.
func readN(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The client's input goes to the current app channel; what a dead channel
// refuses waits for the next one, and the client's EOF reaches that one.
func TestInputSurvivesAChannelSwitch(t *testing.T) {
	a, aReqs, aPeer, _ := sshtest.ChannelPair(t)
	go gossh.DiscardRequests(aReqs)
	b, bReqs, bPeer, _ := sshtest.ChannelPair(t)
	go gossh.DiscardRequests(bReqs)
	pr, pw := io.Pipe()
	in := startInput(pr)
	in.set(a)
	pw.Write([]byte("one"))
	if got := readN(t, aPeer, 3); got != "one" {
		t.Fatalf("first channel got %q", got)
	}
	a.Close() // the link dropped; the input copy does not know yet
	pw.Write([]byte("two"))
	in.set(b)
	if got := readN(t, bPeer, 3); got != "two" {
		t.Fatalf("second channel got %q, want what the first refused", got)
	}
	pw.Close()
	if n, err := bPeer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the client's EOF, the second channel reads %d, %v; want EOF", n, err)
	}
	if held := in.stop(); held != 0 {
		t.Fatalf("%d bytes held after all were delivered", held)
	}
}

// A negative RideThrough turns it off; zero is the 10s default.
func TestRideThroughWindow(t *testing.T) {
	for _, c := range []struct{ set, want time.Duration }{{0, 10 * time.Second}, {-time.Second, 0}, {3 * time.Second, 3 * time.Second}} {
		if got := (&Server{RideThrough: c.set}).rideThrough(); got != c.want {
			t.Errorf("RideThrough %v: window %v, want %v", c.set, got, c.want)
		}
	}
}
