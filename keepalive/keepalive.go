// Package keepalive notices an SSH peer that stopped answering, as sshd's
// ClientAliveInterval and ClientAliveCountMax do: a connection whose
// peer has sent nothing for interval × max is closed. The gateway keeps
// its clients' connections with it, transport its internal ones.
package keepalive

import (
	"math"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// request is what a keepalive sends; any reply, even a refusal,
// proves the peer is there (OpenSSH's client answers this one too).
const request = "keepalive@openssh.com"

// Conn is a net.Conn that records when the peer last sent anything.
// Wrap a connection in it before the SSH handshake, and pass it to Run or
// Start. x/crypto/ssh closes it when the SSH connection ends, for
// whatever reason; that stops its keepalive.
type Conn struct {
	net.Conn
	lastRead atomic.Int64 // unix nanoseconds
	closed   atomic.Bool
	timer    atomic.Pointer[time.Timer] // the keepalive's, once started
}

// Read reads and records the time when bytes arrived.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// Close stops the keepalive and closes the connection.
func (c *Conn) Close() error {
	c.closed.Store(true)
	if t := c.timer.Load(); t != nil {
		t.Stop()
	}
	return c.Conn.Close()
}

func (c *Conn) silentFor() time.Duration {
	return time.Since(time.Unix(0, c.lastRead.Load()))
}

// Run closes conn once its peer has sent nothing for interval × max
// (and at most half an interval more), as sshd's ClientAlive* promise. A
// silent peer is asked for a reply; one that answers is asked about once
// an interval. It returns when conn closes, or after closing it,
// reporting whether it gave up on the peer. A busy peer is never asked:
// its replies could queue behind megabytes of its own data.
func Run(conn ssh.Conn, ac *Conn, interval time.Duration, max int) (gaveUp bool) {
	k := start(conn, ac, interval, max, nil)
	conn.Wait()
	return k.gave.Load() // set before the close that ended Wait
}

// Start is Run without a goroutine of its own: a timer
// checks the connection every interval, and a goroutine lives only while
// an ask awaits its reply. It stops when ac is closed, which x/crypto/ssh
// does when conn ends. gaveUp, if not nil, runs after Start has
// closed conn for want of replies. A gateway holding thousands of client
// connections saves two goroutine stacks per connection this way.
func Start(conn ssh.Conn, ac *Conn, interval time.Duration, max int, gaveUp func()) {
	start(conn, ac, interval, max, gaveUp)
}

// start is Start, returning the keepalive.
func start(conn ssh.Conn, ac *Conn, interval time.Duration, max int, gaveUp func()) *keepalive {
	interval, max = schedule(interval, max)
	k := &keepalive{conn: conn, ac: ac, interval: interval, max: int32(max), gaveUp: gaveUp}
	t := time.AfterFunc(time.Duration(math.MaxInt64), k.check)
	k.timer = t // before the first check can run
	ac.timer.Store(t)
	t.Reset(interval)
	if ac.closed.Load() { // closed before the timer was visible to Close
		t.Stop()
	}
	return k
}

// checksPerInterval is how often per interval a connection is looked at.
// More than once, so that a peer's silence is noticed within half an
// interval of its start rather than up to a whole one.
const checksPerInterval = 2

// schedule turns "give up on a peer silent for interval × max" into the
// check's terms. The check runs every tick; the first check that finds the
// peer silent for a tick asks it for a reply, and so does every check
// after it, until the check that finds asks unanswered asks in a row
// closes the connection. That first check comes between one and two ticks
// into the silence, so the close comes after a silence of between asks+1
// and asks+2 ticks. Checking every interval with max asks, as sshd's
// options read, gave up after max+1 to max+2 intervals (60 to 75 s for
// 15 s × 3). With tick = interval/2 and asks = 2·max−1 the close comes
// after max to max+½ intervals of silence.
func schedule(interval time.Duration, max int) (tick time.Duration, asks int) {
	tick = interval / checksPerInterval
	if tick <= 0 {
		return interval, max
	}
	return tick, checksPerInterval*max - 1
}

// keepalive is the state of one Start.
type keepalive struct {
	conn     ssh.Conn
	ac       *Conn
	interval time.Duration
	max      int32
	gaveUp   func()
	timer    *time.Timer
	missed   atomic.Int32 // asks unanswered in a row
	gave     atomic.Bool  // it gave up on the peer: set before it closes conn
}

// check runs every interval, in a goroutine of its own: it asks a silent
// peer for a reply (and waits for it), or gives up on it.
func (k *keepalive) check() {
	if k.ac.closed.Load() {
		return
	}
	if k.ac.silentFor() < k.interval {
		k.missed.Store(0)
		k.timer.Reset(k.interval)
		return
	}
	if k.missed.Load() >= k.max {
		k.gave.Store(true)
		k.conn.Close()
		if k.gaveUp != nil {
			k.gaveUp()
		}
		return
	}
	k.missed.Add(1)
	k.timer.Reset(k.interval) // the next check counts this ask if it is still unanswered
	if _, _, err := k.conn.SendRequest(request, true, nil); err == nil {
		k.missed.Store(0)
	}
}
