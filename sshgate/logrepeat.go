package sshgate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"switchyard/safelog"
)

// repeatBurst is how many occurrences of an event from one address are
// logged in full per window: enough to see the few keys a client offers.
const repeatBurst = 3

// logRepeated logs event with attrs for the client address ip through a
// per-event safelog.Repeats: the first few (repeatBurst) occurrences from
// ip in a window are logged in full, the others only counted, then summed up in one line ("N more
// auth refused from ADDR in the last 10s"). A flood from one address thus
// costs a line or two per window, whatever its rate.
func (s *Server) logRepeated(ctx context.Context, level slog.Level, event, ip string, attrs ...any) {
	log := s.logger()
	if !log.Enabled(ctx, level) || !s.repeatsOf(event, level).Allow(ip) {
		return
	}
	log.Log(ctx, level, event, attrs...)
}

// repeatsOf returns the Repeats of event, made on first use.
func (s *Server) repeatsOf(event string, level slog.Level) *safelog.Repeats {
	s.repeatMu.Lock()
	defer s.repeatMu.Unlock()
	if r := s.repeats[event]; r != nil {
		return r
	}
	if s.repeats == nil {
		s.repeats = make(map[string]*safelog.Repeats)
	}
	r := &safelog.Repeats{Burst: repeatBurst, Summary: func(ip string, n int, window time.Duration) {
		s.logger().Log(context.Background(), level, fmt.Sprintf("%d more %s from %s in the last %s", n, event, ip, window),
			"client", ip, "count", n)
	}}
	s.repeats[event] = r
	return r
}
