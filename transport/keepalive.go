package transport

import (
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
// Keepalive.
type AliveConn struct {
	net.Conn
	lastRead atomic.Int64 // unix nanoseconds
}

// Read reads and records the time when bytes arrived.
func (c *AliveConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
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
	t := time.NewTicker(interval)
	defer t.Stop()
	done := make(chan struct{})
	go func() { conn.Wait(); close(done) }()
	replies := make(chan struct{}, 1)
	missed := 0
	for {
		select {
		case <-done:
			return false
		case <-replies:
			missed = 0
			continue
		case <-t.C:
		}
		if ac.silentFor() < interval {
			missed = 0
			continue
		}
		if missed >= max {
			conn.Close()
			return true
		}
		missed++
		go func() {
			if _, _, err := conn.SendRequest(keepaliveRequest, true, nil); err == nil {
				select {
				case replies <- struct{}{}:
				default:
				}
			}
		}()
	}
}
