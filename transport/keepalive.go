package transport

import (
	"math"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Keepalive of internal connections: a peer that has sent nothing for
// aliveInterval is asked for a reply; after aliveCountMax unanswered asks
// the connection is closed. A partitioned or hung peer (no FIN, no RST)
// is thus noticed within about 15 s instead of TCP's minutes: the pool
// redials, a control link reconnects, and sessions relayed over the dead
// connection end with their one-line error instead of hanging.
var (
	aliveInterval = 5 * time.Second // a var so tests can shorten it
	aliveCountMax = 3
)

// keepaliveRequest is what Keepalive sends; any reply, even a refusal,
// proves the peer is there (OpenSSH's client answers this one too).
const keepaliveRequest = "keepalive@openssh.com"

// AliveConn is a net.Conn that records when the peer last sent anything.
// Wrap a connection in it before the SSH handshake, and pass it to
// Keepalive or StartKeepalive. x/crypto/ssh closes it when the SSH
// connection ends, for whatever reason; that stops its keepalive.
type AliveConn struct {
	net.Conn
	lastRead atomic.Int64 // unix nanoseconds
	closed   atomic.Bool
	timer    atomic.Pointer[time.Timer] // the keepalive's, once started
}

// Read reads and records the time when bytes arrived.
func (c *AliveConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// Close stops the keepalive and closes the connection.
func (c *AliveConn) Close() error {
	c.closed.Store(true)
	if t := c.timer.Load(); t != nil {
		t.Stop()
	}
	return c.Conn.Close()
}

func (c *AliveConn) silentFor() time.Duration {
	return time.Since(time.Unix(0, c.lastRead.Load()))
}

// Keepalive asks conn's peer for a reply whenever it has been silent for
// interval, and closes conn after max unanswered asks, as sshd's
// ClientAlive* do. It returns when conn closes, or after closing it,
// reporting whether it gave up on the peer. A busy peer is never asked:
// its replies could queue behind megabytes of its own data.
func Keepalive(conn ssh.Conn, ac *AliveConn, interval time.Duration, max int) (gaveUp bool) {
	var gave atomic.Bool
	StartKeepalive(conn, ac, interval, max, func() { gave.Store(true) })
	conn.Wait()
	return gave.Load()
}

// StartKeepalive is Keepalive without a goroutine of its own: a timer
// checks the connection every interval, and a goroutine lives only while
// an ask awaits its reply. It stops when ac is closed, which x/crypto/ssh
// does when conn ends. gaveUp, if not nil, runs after StartKeepalive has
// closed conn for want of replies. A gateway holding thousands of client
// connections saves two goroutine stacks per connection this way.
func StartKeepalive(conn ssh.Conn, ac *AliveConn, interval time.Duration, max int, gaveUp func()) {
	k := &keepalive{conn: conn, ac: ac, interval: interval, max: int32(max), gaveUp: gaveUp}
	t := time.AfterFunc(time.Duration(math.MaxInt64), k.check)
	k.timer = t // before the first check can run
	ac.timer.Store(t)
	t.Reset(interval)
	if ac.closed.Load() { // closed before the timer was visible to Close
		t.Stop()
	}
}

// keepalive is the state of one StartKeepalive.
type keepalive struct {
	conn     ssh.Conn
	ac       *AliveConn
	interval time.Duration
	max      int32
	gaveUp   func()
	timer    *time.Timer
	missed   atomic.Int32 // asks unanswered in a row
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
		k.conn.Close()
		if k.gaveUp != nil {
			k.gaveUp()
		}
		return
	}
	k.missed.Add(1)
	k.timer.Reset(k.interval) // the next check counts this ask if it is still unanswered
	if _, _, err := k.conn.SendRequest(keepaliveRequest, true, nil); err == nil {
		k.missed.Store(0)
	}
}
