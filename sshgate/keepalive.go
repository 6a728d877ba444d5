package sshgate

import (
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"switchyard/keepalive"
)

// Defaults of the client keepalive, as sshd's ClientAliveInterval and
// ClientAliveCountMax would be set for a service that must notice a cut
// network: 15s × 3 declares a silent client gone after about 45 s.
const (
	defaultAliveInterval = 15 * time.Second
	defaultAliveCountMax = 3
)

// keepaliveKey is the gliderlabs context key of a connection's
// *keepaliveState.
type keepaliveKey struct{}

// keepaliveState is one connection's keepalive: its loop starts once.
type keepaliveState struct {
	once sync.Once
	conn *keepalive.Conn
}

// keepalive starts, once per connection, a timer that asks a silent client
// for a reply and closes the connection once the client has sent nothing
// for AliveInterval × AliveCountMax (and at most half an interval more).
// Without it a client whose network was cut (no FIN, no RST) or whose
// process is stopped would hold its sessions "attached" until TCP gives
// up, hours later; with it they detach and can be resumed.
func (s *Server) keepalive(ctx gliderssh.Context, conn *gossh.ServerConn) {
	st, _ := ctx.Value(keepaliveKey{}).(*keepaliveState)
	if st == nil {
		return // set by onConn for every connection
	}
	st.once.Do(func() {
		interval, max := s.aliveInterval(), s.aliveCountMax()
		keepalive.Start(conn, st.conn, interval, max, func() {
			s.logger().Info("client stopped answering keepalives; closed", "client", conn.RemoteAddr().String(),
				"user", conn.Permissions.Extensions[extUser], "after", time.Duration(max)*interval)
		})
	})
}

func (s *Server) aliveInterval() time.Duration {
	return orDefault(s.AliveInterval, defaultAliveInterval)
}

func (s *Server) aliveCountMax() int { return orDefault(s.AliveCountMax, defaultAliveCountMax) }
