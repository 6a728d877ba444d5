package sshgate

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Defaults of the Server's limits.
const (
	defaultHandshakeTimeout   = 20 * time.Second
	defaultMaxAuthTries       = 6
	defaultAuthFailLimit      = 20
	defaultAuthFailWindow     = time.Minute
	defaultMaxConnsPerSource  = 50
	defaultMaxSessionsPerUser = 20
	defaultMaxChannelsPerConn = 10
)

// maxSources bounds the per-address table before stale entries are swept.
const maxSources = 4096

func (s *Server) maxAuthTries() int  { return orDefault(s.MaxAuthTries, defaultMaxAuthTries) }
func (s *Server) authFailLimit() int { return orDefault(s.AuthFailLimit, defaultAuthFailLimit) }
func (s *Server) authFailWindow() time.Duration {
	return orDefault(s.AuthFailWindow, defaultAuthFailWindow)
}
func (s *Server) maxConnsPerSource() int {
	return orDefault(s.MaxConnsPerSource, defaultMaxConnsPerSource)
}
func (s *Server) maxSessionsPerUser() int {
	return orDefault(s.MaxSessionsPerUser, defaultMaxSessionsPerUser)
}
func (s *Server) maxChannelsPerConn() int {
	return orDefault(s.MaxChannelsPerConn, defaultMaxChannelsPerConn)
}

func (s *Server) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

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

// sources holds, per client address, its open connections and its recent
// authentication failures.
type sources struct {
	mu sync.Mutex         // guards m
	m  map[string]*source // by IP
}

type source struct {
	conns        int       // open connections
	fails        int       // failures since windowStart
	windowStart  time.Time // start of the counting window
	blockedUntil time.Time // new connections refused until then
}

// admit takes a connection slot for ip, or returns why not.
func (t *sources) admit(ip string, now time.Time, maxConns int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]*source)
	}
	if len(t.m) >= maxSources {
		t.sweep(now)
	}
	src := t.m[ip]
	if src == nil {
		src = &source{}
		t.m[ip] = src
	}
	switch {
	case now.Before(src.blockedUntil):
		return fmt.Sprintf("too many failed logins; blocked for %s more", src.blockedUntil.Sub(now).Round(time.Second))
	case src.conns >= maxConns:
		return fmt.Sprintf("too many connections from this address (%d)", maxConns)
	}
	src.conns++
	return ""
}

// leave releases a connection slot of ip.
func (t *sources) leave(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if src := t.m[ip]; src != nil {
		src.conns--
	}
}

// fail counts a failed authentication from ip; it reports whether this
// failure blocked the address: limit failures within window block it for
// window.
func (t *sources) fail(ip string, now time.Time, limit int, window time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	src := t.m[ip]
	if src == nil {
		return false // not admitted through onConn (a test calling the callback)
	}
	if now.Sub(src.windowStart) >= window {
		src.fails, src.windowStart = 0, now
	}
	src.fails++
	if src.fails < limit || now.Before(src.blockedUntil) {
		return false
	}
	src.blockedUntil = now.Add(window)
	return true
}

// sweep drops the entries that hold nothing: no connection, no block, no
// failure in a window that may still count. Callers hold mu.
func (t *sources) sweep(now time.Time) {
	for ip, src := range t.m {
		if src.conns <= 0 && !now.Before(src.blockedUntil) && (src.fails == 0 || now.Sub(src.windowStart) > time.Hour) {
			delete(t.m, ip)
		}
	}
}

// sourceConn releases its address's connection slot when closed.
type sourceConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *sourceConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// tooManySessions is the failure of a session over its user's limit.
func tooManySessions(user string, max int) *failure {
	return &failure{Status: exitUnavailable, Line: fmt.Sprintf("too many sessions for user %s (%d)", user, max)}
}
