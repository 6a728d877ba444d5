package broker

import "time"

// restartWindow is how many report intervals a server whose control link
// dropped while it ran sessions shows as restarting rather than down: an
// appd restart (an upgrade, a config key that needs it, a crash under
// systemd's Restart=) brings it back within seconds, and the gateways ride
// through the gap (see sshgate's ride_through).
const restartWindow = 10

// linkLost records, on a server's last control link closing at now, that
// it was up with sessions then (see restarting). Callers hold b.mu.
func linkLost(st *serverState, now time.Time) {
	st.lostAt, st.lostSessions = now, len(st.report.Sessions)
}

// restarting reports whether the server with state st, not healthy at
// now, is presumed restarting: its link dropped less than restartWindow
// intervals ago while it ran sessions, and no link has come back with a
// fresh report since.
func (b *Broker) restarting(st *serverState, now time.Time) bool {
	return st != nil && !st.lostAt.IsZero() && st.lostSessions > 0 &&
		now.Sub(st.lostAt) < restartWindow*b.interval() && !b.healthy(st, now)
}
