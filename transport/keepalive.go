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

const keepaliveRequest = "keepalive@switchyard"

// aliveConn records when the peer last sent anything.
type aliveConn struct {
	net.Conn
	lastRead atomic.Int64 // unix nanoseconds
}

func (c *aliveConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *aliveConn) silentFor() time.Duration {
	return time.Since(time.Unix(0, c.lastRead.Load()))
}

// keepalive runs until the client's connection ends.
func keepalive(client *ssh.Client, c *aliveConn) {
	interval, max := aliveInterval, aliveCountMax
	t := time.NewTicker(interval)
	defer t.Stop()
	done := make(chan struct{})
	go func() { client.Wait(); close(done) }()
	replies := make(chan struct{}, 1)
	missed := 0
	for {
		select {
		case <-done:
			return
		case <-replies:
			missed = 0
			continue
		case <-t.C:
		}
		if c.silentFor() < interval {
			missed = 0
			continue
		}
		if missed >= max {
			client.Close()
			return
		}
		missed++
		go func() {
			// Any reply, even "unsupported", proves the peer is there.
			if _, _, err := client.SendRequest(keepaliveRequest, true, nil); err == nil {
				select {
				case replies <- struct{}{}:
				default:
				}
			}
		}()
	}
}
