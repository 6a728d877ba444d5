package sshgate

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Defaults of the client keepalive, as sshd's ClientAliveInterval and
// ClientAliveCountMax would be set for a service that must notice a cut
// network: 15s × 3 declares a silent client gone after about 45 s.
const (
	defaultAliveInterval = 15 * time.Second
	defaultAliveCountMax = 3
	keepaliveRequest     = "keepalive@openssh.com"
)

// keepaliveKey is the gliderlabs context key of a connection's
// *keepaliveState.
type keepaliveKey struct{}

// keepaliveState is one connection's keepalive: its loop starts once.
type keepaliveState struct {
	once sync.Once
	conn *aliveConn
}

// aliveConn records when the client last sent anything: like sshd, the
// gateway asks for a keepalive reply only after a silent interval, so a
// busy client (whose replies may queue behind megabytes of its own
// sessions' output) is never taken for a dead one.
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

// silentFor is how long the client has sent nothing.
func (c *aliveConn) silentFor() time.Duration {
	return time.Since(time.Unix(0, c.lastRead.Load()))
}

// keepalive starts, once per connection, a loop that asks the client for a
// reply every AliveInterval and closes the connection after AliveCountMax
// unanswered asks. Without it a client whose network was cut (no FIN, no
// RST) would hold its sessions "attached" until TCP gives up, hours later;
// with it they detach and can be resumed.
func (s *Server) keepalive(ctx gliderssh.Context, conn *gossh.ServerConn) {
	st, _ := ctx.Value(keepaliveKey{}).(*keepaliveState)
	if st == nil {
		return // set by onConn for every connection
	}
	st.once.Do(func() { go s.keepaliveLoop(ctx, conn, st.conn) })
}

func (s *Server) keepaliveLoop(ctx gliderssh.Context, conn *gossh.ServerConn, ac *aliveConn) {
	interval, max := s.aliveInterval(), s.aliveCountMax()
	t := time.NewTicker(interval)
	defer t.Stop()
	replies := make(chan struct{}, 1)
	missed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-replies:
			missed = 0
			continue
		case <-t.C:
		}
		if ac.silentFor() < interval {
			missed = 0 // the client spoke: it is there
			continue
		}
		if missed >= max {
			s.logger().Info("client stopped answering keepalives; closing", "client", conn.RemoteAddr().String(),
				"user", conn.Permissions.Extensions[extUser], "after", time.Duration(missed)*interval)
			conn.Close()
			return
		}
		missed++
		go func() {
			// Any reply, success or failure, proves the client is there.
			if _, _, err := conn.SendRequest(keepaliveRequest, true, nil); err == nil {
				select {
				case replies <- struct{}{}:
				default:
				}
			}
		}()
	}
}

func (s *Server) aliveInterval() time.Duration {
	return orDefault(s.AliveInterval, defaultAliveInterval)
}

func (s *Server) aliveCountMax() int { return orDefault(s.AliveCountMax, defaultAliveCountMax) }
