package appd

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// unreadInputApp takes its terminal raw and reads nothing until SIGUSR1,
// then prints the MD5 of the next inputTestSize bytes it reads.
var unreadInputApp = sh(fmt.Sprintf(`trap 'go=1' USR1; stty raw -echo; echo ready; while [ -z "$go" ]; do sleep 0.02; done; head -c %d | md5sum`, inputTestSize))

const inputTestSize = 200000

// TestHandoverCountsInputTheTerminalGot: input blocked on a terminal
// whose app reads nothing is cut short at a handover; the next appd's
// attachment starts from the exact count of bytes the terminal got, so
// the gateway's resend of the rest gives the app the stream whole: no
// byte lost, none twice.
func TestHandoverCountsInputTheTerminalGot(t *testing.T) {
	k, path := testKeeper(t, time.Minute)
	apps := map[string]App{"unread": unreadInputApp}
	m := newTestManager(t, apps)
	m.Keeper = k
	s := spawn(t, dialManager(t, m), ptyReq("unread"))
	if st := s.started.InputCount; st.In != 0 || !st.Exact {
		t.Fatalf("a new session starts at %+v, want 0, exact", st)
	}
	s.waitOutput("ready")
	stream := bytes.Repeat([]byte("abcdefghij0123456789"), inputTestSize/20)
	go s.ch.Write(stream) // the terminal takes a few KiB, then appd's write blocks
	sess := m.sessions[s.started.ID]
	waitUntil(t, "input to reach the terminal", func() bool { return sess.in.Load() > 0 })

	if n := m.Handover(); n != 1 {
		t.Fatalf("handed over %d sessions, want 1", n)
	}
	s.waitEnd()
	k.Close()
	m2, _, _ := nextAppd(t, path, apps)
	rejoin := attachReq(s.started.ID, "alice")
	rejoin.Rejoin = true
	again := attach(t, dialManager(t, m2), rejoin)
	got := again.started.InputCount
	if !got.Exact || got.In <= 0 || got.In >= int64(len(stream)) {
		t.Fatalf("after the handover the input count is %+v; want exact, and part of the %d bytes", got, len(stream))
	}
	go again.ch.Write(stream[got.In:]) // what a gateway resends
	syscall.Kill(s.started.PID, syscall.SIGUSR1)
	again.waitOutput(fmt.Sprintf("%x", md5.Sum(stream)))
}

// TestInputCountAfterAppdDiesIsNotExact: an appd that dies without a
// handover takes its last count with it: the next one says its count is
// not exact, and is exact again from its own first attachment on.
func TestInputCountAfterAppdDiesIsNotExact(t *testing.T) {
	k, path := testKeeper(t, time.Minute)
	apps := map[string]App{"count": counterApp(time.Minute)}
	m := newTestManager(t, apps)
	m.Keeper = k
	s := spawn(t, dialManager(t, m), ptyReq("count"))
	s.ch.Write([]byte("typed\r"))
	s.waitOutput("n=2\r\n")
	abandon(m)
	k.Close()
	m2, _, _ := nextAppd(t, path, apps)
	c2 := dialManager(t, m2)
	first := attach(t, c2, attachReq(s.started.ID, "alice"))
	if first.started.Exact {
		t.Fatalf("after appd died the count is %+v, want not exact", first.started.InputCount)
	}
	first.ch.Write([]byte("more\r"))
	waitUntil(t, "the input to be counted", func() bool { return m2.sessions[s.started.ID].in.Load() >= first.started.In+5 })
	second := attach(t, c2, attachReq(s.started.ID, "alice"))
	if st := second.started.InputCount; !st.Exact || st.In != first.started.In+5 {
		t.Fatalf("the next attachment starts at %+v, want exact at %d", st, first.started.In+5)
	}
}
