package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"switchyard/safelog"
)

// Pre-handshake limits of a Server. A source address may hold at most
// max(minConnsPerSource, connsPerPeer × peers) connections at once, peers
// being the number of nodes that may connect: every one of them may share
// one address (a cluster on one host, nodes behind one NAT) and a node
// holds one or two connections to a listener, a few while it redials. A
// connection over the limit is closed before the SSH handshake; one that
// has not authenticated within HandshakeTimeout is closed then.
const (
	minConnsPerSource = 8
	connsPerPeer      = 4
)

// SourceLimit is the most connections one address may hold open on a
// Server that admits peers nodes.
func SourceLimit(peers int) int { return max(minConnsPerSource, connsPerPeer*peers) }

// hostOf is the address a limit is kept for: the IP without the port.
func hostOf(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// limitLogs summarise, per source address, the connections a Server
// refused and the handshakes that failed: the first of each in a window
// is logged in full, the rest are counted into one line at its end.
type limitLogs struct {
	refused, failed safelog.Repeats
}

func (l *limitLogs) init(log func() *slog.Logger) {
	l.refused.Summary = func(ip string, n int, w time.Duration) {
		log().Warn(fmt.Sprintf("%d more internal connections refused from %s in the last %s", n, ip, w),
			"remote", ip)
	}
	l.failed.Summary = func(ip string, n int, w time.Duration) {
		log().Warn(fmt.Sprintf("%d more internal handshakes failed from %s in the last %s", n, ip, w),
			"remote", ip)
	}
}

// sourceLimit is the current per-address limit.
func (s *Server) sourceLimit() int {
	if s.Peers == nil {
		return SourceLimit(0)
	}
	return SourceLimit(s.Peers())
}

// admit takes a slot for c's source address, or closes c and logs the
// refusal (summarised per address). It reports whether c was admitted.
func (s *Server) admit(c net.Conn) bool {
	ip := hostOf(c.RemoteAddr())
	limit := s.sourceLimit()
	if s.sources.Take(ip, limit) {
		return true
	}
	c.Close()
	if s.logs.refused.Allow(ip) {
		s.logger().Warn("internal connection refused: too many connections from this address",
			"remote", ip, "limit", limit)
	}
	return false
}

// handshakeFailed logs, summarised per address, why a connection did not
// become an authenticated node connection.
func (s *Server) handshakeFailed(c net.Conn, err error, timeout time.Duration) {
	ip := hostOf(c.RemoteAddr())
	if !s.logs.failed.Allow(ip) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.logger().Warn("internal handshake timed out", "remote", c.RemoteAddr().String(), "after", timeout)
		return
	}
	s.logger().Warn("internal handshake refused", "remote", c.RemoteAddr().String(),
		safelog.String("err", err.Error()))
}

// Conns returns the number of connections the Server holds open,
// authenticated or not.
func (s *Server) Conns() int { return s.sources.Total() }
