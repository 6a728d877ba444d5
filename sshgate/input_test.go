package sshgate

import (
	"io"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/sshtest"
)

// channel returns a loopback SSH channel and the reading end at its peer.
func channel(t *testing.T) (gossh.Channel, gossh.Channel) {
	ch, reqs, peer, _ := sshtest.ChannelPair(t)
	go gossh.DiscardRequests(reqs)
	return ch, peer
}

// What a lost attachment accepted but appd's terminal never got (appd
// says how much it got when the next attachment starts) is resent first
// on the next, before what the client typed meanwhile.
func TestInputResendsWhatNeverArrived(t *testing.T) {
	a, aPeer := channel(t)
	b, bPeer := channel(t)
	pr, pw := io.Pipe()
	in := startInput(pr)
	if gap, err := in.attach(a, control.InputCount{In: 100, Exact: true}); gap != (inputGap{}) || err != nil {
		t.Fatalf("first attach: %+v, %v", gap, err)
	}
	pw.Write([]byte("hello world"))
	readN(t, aPeer, 11)
	a.Close()
	in.set(nil)
	pw.Write([]byte("!")) // typed during the gap
	// appd's terminal got "hello " (6 of the 11 bytes sent).
	gap, err := in.attach(b, control.InputCount{In: 106, Exact: true})
	if gap != (inputGap{}) || err != nil {
		t.Fatalf("attach after the loss: %+v, %v; want nothing lost", gap, err)
	}
	if got := readN(t, bPeer, 6); got != "world!" {
		t.Fatalf("the next attachment got %q, want the resent \"world\" then \"!\"", got)
	}
	in.stop()
}

// More missing than a session keeps is resent as far as it goes, and
// the rest is counted for the user's line.
func TestInputLostBeyondReplay(t *testing.T) {
	a, aPeer := channel(t)
	b, bPeer := channel(t)
	pr, pw := io.Pipe()
	in := startInput(pr)
	in.attach(a, control.InputCount{Exact: true})
	big := strings.Repeat("x", 3*inputReplay)
	go pw.Write([]byte(big))
	readN(t, aPeer, len(big))
	a.Close()
	in.set(nil)
	gap, _ := in.attach(b, control.InputCount{In: 0, Exact: true}) // nothing arrived
	if kept := len(in.recent); gap.lost != int64(len(big)-kept) || kept < inputReplay {
		t.Fatalf("gap %+v with %d bytes kept; want the %d not kept lost", gap, kept, len(big)-kept)
	}
	readN(t, bPeer, len(in.recent))
	in.stop()
}

// When appd cannot say what arrived (it died without a handover), input
// sent just before is in doubt, and the user is told; nothing is resent.
func TestInputInDoubtWhenAppdCannotSay(t *testing.T) {
	a, aPeer := channel(t)
	b, _ := channel(t)
	pr, pw := io.Pipe()
	in := startInput(pr)
	in.attach(a, control.InputCount{Exact: true})
	pw.Write([]byte("ls\r"))
	readN(t, aPeer, 3)
	a.Close()
	in.set(nil)
	gap, _ := in.attach(b, control.InputCount{In: 0})
	if !gap.doubt || gap.lost != 0 {
		t.Fatalf("gap %+v, want doubt", gap)
	}
	in.stop()
}
