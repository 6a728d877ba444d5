package sshgate

import (
	"sync"
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

// keepaliveKey marks, in a connection's gliderlabs context, that its
// keepalive loop runs.
type keepaliveKey struct{}

// keepalive starts, once per connection, a loop that asks the client for a
// reply every AliveInterval and closes the connection after AliveCountMax
// unanswered asks. Without it a client whose network was cut (no FIN, no
// RST) would hold its sessions "attached" until TCP gives up, hours later;
// with it they detach and can be resumed.
func (s *Server) keepalive(ctx gliderssh.Context, conn *gossh.ServerConn) {
	once, _ := ctx.Value(keepaliveKey{}).(*sync.Once)
	if once == nil {
		return // set by onConn for every connection
	}
	once.Do(func() { go s.keepaliveLoop(ctx, conn) })
}

func (s *Server) keepaliveLoop(ctx gliderssh.Context, conn *gossh.ServerConn) {
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
