package sshgate

import (
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"switchyard/transport"
)

// Defaults of the client keepalive, as sshd's ClientAliveInterval and
// ClientAliveCountMax would be set for a service that must notice a cut
// network: 15s × 3 declares a silent client gone after about 45 s.
const (
	defaultAliveInterval = 15 * time.Second
	defaultAliveCountMax = 3
)

// checksPerInterval is how often per alive_interval the gateway looks at
// a connection. More than once, so that a client's silence is noticed
// within half an interval of its start rather than up to a whole one.
const checksPerInterval = 2

// keepaliveKey is the gliderlabs context key of a connection's
// *keepaliveState.
type keepaliveKey struct{}

// keepaliveState is one connection's keepalive: its loop starts once.
type keepaliveState struct {
	once sync.Once
	conn *transport.AliveConn
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
		tick, asks := keepaliveSchedule(interval, max)
		transport.StartKeepalive(conn, st.conn, tick, asks, func() {
			s.logger().Info("client stopped answering keepalives; closed", "client", conn.RemoteAddr().String(),
				"user", conn.Permissions.Extensions[extUser], "after", time.Duration(max)*interval)
		})
	})
}

// keepaliveSchedule turns "drop a client silent for interval × max" into
// transport.StartKeepalive's terms. StartKeepalive checks every tick; the
// first check that finds the peer silent for a tick asks it for a reply,
// and so does every check after it, until the check that finds asks
// unanswered asks in a row closes the connection. That first check comes
// between one and two ticks into the silence, so the close comes after a
// silence of between (asks+1) and (asks+2) ticks. Passing interval and
// max unchanged, as the gateway once did, dropped a client after between
// max+1 and max+2 intervals: 60 to 75 s instead of the documented 45 s.
// With tick = interval/2 and asks = 2·max−1 the close comes after between
// max and max+½ intervals of silence, and an idle client that answers is
// asked once an interval, as sshd asks.
func keepaliveSchedule(interval time.Duration, max int) (tick time.Duration, asks int) {
	tick = interval / checksPerInterval
	if tick <= 0 {
		return interval, max
	}
	return tick, checksPerInterval*max - 1
}

func (s *Server) aliveInterval() time.Duration {
	return orDefault(s.AliveInterval, defaultAliveInterval)
}

func (s *Server) aliveCountMax() int { return orDefault(s.AliveCountMax, defaultAliveCountMax) }
