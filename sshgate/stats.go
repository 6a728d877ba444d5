package sshgate

import (
	"maps"
	"sync"
	"time"
)

// Reasons a login failed, as Stats counts them.
const (
	FailWrongPassword = "wrong_password"    // a wrong password, or a user without one
	FailPasswordsOff  = "password_disabled" // a password offered where none are configured
	FailNoLogin       = "no_login"          // a connection that tried to log in and ended without
)

// reasonNoPasswords is the logged reason of a password tried where the
// directory has none.
const reasonNoPasswords = "passwords are not configured"

// Stats is a snapshot of a gateway's counters, for its metrics.
type Stats struct {
	Connections  int               // client connections open now
	Sessions     int               // sessions holding a capacity slot
	AuthFailures map[string]uint64 // failed logins since start, by reason (the Fail constants)
	Blocked      int               // client addresses refused now for too many failed logins
}

// Stats returns the gateway's counters now.
func (s *Server) Stats() Stats {
	conns, blocked := s.sources.counts(s.now())
	return Stats{Connections: conns, Sessions: s.Sessions(), AuthFailures: s.failures.snapshot(), Blocked: blocked}
}

// failureCounts counts failed logins by reason.
type failureCounts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (f *failureCounts) add(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]uint64{}
	}
	f.m[reason]++
}

// snapshot returns every reason's count, the three known ones included.
func (f *failureCounts) snapshot() map[string]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]uint64{FailWrongPassword: 0, FailPasswordsOff: 0, FailNoLogin: 0}
	maps.Copy(out, f.m)
	return out
}

// counts returns the open connections and the addresses blocked at now.
func (t *sources) counts(now time.Time) (conns, blocked int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, src := range t.m {
		conns += max(src.conns, 0)
		if now.Before(src.blockedUntil) {
			blocked++
		}
	}
	return conns, blocked
}
