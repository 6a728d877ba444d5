package sshgate

import (
	"context"
	"errors"
	"time"
)

// errUpgrade is the cancel cause of a session ended because its gateway
// process is being replaced and its drain deadline passed.
var errUpgrade = errors.New("gateway upgraded")

// upgradeFailure is what the client of a session evicted by an upgrade is
// told: how to resume it (a PTY session lives on, detached), or that it
// ended (a batch session).
func upgradeFailure(pty bool, resume string) *failure {
	line := "this gateway is being upgraded; session ended, run it again"
	if pty {
		line = "this gateway is being upgraded; resume with: " + resume
	}
	return &failure{Status: exitUnavailable, Line: line}
}

// evicting returns the context Evict cancels. Sessions watch it with
// context.AfterFunc, which costs no goroutine.
func (s *Server) evicting() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evictLocked()
}

// evictLocked is evicting with s.mu held.
func (s *Server) evictLocked() context.Context {
	if s.evict == nil {
		s.evict, s.evictNow = context.WithCancel(context.Background())
	}
	return s.evict
}

// Drain stops accepting connections, as Shutdown does, and lets the
// established ones run until they end or ctx is done; then it calls Evict
// (waiting for its sessions at most evictWait) and returns how many
// sessions were running then. A gateway process that handed its listener
// to its successor calls it: the listener is closed here only, not in the
// process that inherited it.
func (s *Server) Drain(ctx context.Context) (evicted int) {
	if s.Shutdown(ctx) == nil {
		s.Close()
		return 0
	}
	evicted = s.Sessions()
	evictCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), evictWait)
	defer cancel()
	s.Evict(evictCtx)
	return evicted
}

// evictWait bounds how long Evict waits for sessions to tell their users.
const evictWait = 10 * time.Second

// Evict ends every running session: a terminal session is detached (its
// app lives on for its grace period) and its user told in one line how
// to resume it, a batch session ends with that line; exit status 69.
// Then, once their handlers returned or ctx is done, every connection is
// closed.
func (s *Server) Evict(ctx context.Context) {
	s.mu.Lock()
	s.evictLocked()
	s.evictNow()
	s.mu.Unlock()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.handlers.Load() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	s.Close()
}
