package broker

import (
	"slices"
	"sort"
	"time"

	"switchyard/brokerstate"
	"switchyard/control"
	"switchyard/safelog"
)

// A reservation is what the broker remembers of a client it redirected
// (the patent's claims 6-8): which gateway it was sent to, for which app,
// and, when the app was pre-launched (Fig. 9, S903a-c), which session and
// pid wait for it. When the client arrives at a gateway and asks again
// (claim 8), the reservation is taken: confirmed if its session can still
// be reached, else re-decided, and never answered with a second redirect.
// Unclaimed, it expires; its process is ended by appd's own timer.
// It is the very record the broker's Store keeps (ID is its key there:
// SessionID, or a random name).
type reservation = brokerstate.Reservation

// ReservationStatus is one reservation in Status.
type ReservationStatus struct {
	User      string    `json:"user"`
	App       string    `json:"app"`
	Server    string    `json:"server"`
	Gateway   string    `json:"gateway"` // where the client was sent
	From      string    `json:"from"`    // the gateway that sent it
	SessionID string    `json:"session_id,omitempty"`
	PID       int       `json:"pid,omitempty"`
	Expires   time.Time `json:"expires"`
	ExpiresIn float64   `json:"expires_in_seconds"`
}

// claimMargin is how much longer than its reservation appd holds a
// pre-launched app, so that a claim the broker confirms in the last
// moment still finds the process.
const claimMargin = time.Second

// reservationTime is how long reservations last. Callers hold b.mu.
func (b *Broker) reservationTime() time.Duration {
	if b.cluster.Reservation <= 0 {
		return control.DefaultReservation
	}
	return b.cluster.Reservation
}

// reserve records r. Callers hold b.mu.
func (b *Broker) reserve(r *reservation) {
	b.reserved = append(b.reserved, r)
}

// pruneReservations drops expired reservations. Callers hold b.mu.
func (b *Broker) pruneReservations(now time.Time) {
	b.reserved = slices.DeleteFunc(b.reserved, func(r *reservation) bool {
		if now.After(r.Expires) {
			b.logger().Info("reservation expired", safelog.String("user", r.User), safelog.String("app", r.App),
				"server", r.Server, "gateway", r.Gateway, safelog.String("session", r.SessionID), "pid", r.PID)
			b.unreserved(r)
			return true
		}
		return false
	})
}

// takeReservation removes and returns the oldest valid reservation of
// user for app, or nil. Callers hold b.mu and have pruned.
func (b *Broker) takeReservation(user, app string) *reservation {
	i := slices.IndexFunc(b.reserved, func(r *reservation) bool { return r.User == user && r.App == app })
	if i < 0 {
		return nil
	}
	r := b.reserved[i]
	b.reserved = slices.Delete(b.reserved, i, i+1)
	b.unreserved(r)
	return r
}

// dropReservationOf forgets the reservation holding session id, if any:
// the session was attached (claimed some other way, e.g. resumed) or has
// ended. Callers hold b.mu.
func (b *Broker) dropReservationOf(id, why string) {
	if id == "" {
		return
	}
	b.reserved = slices.DeleteFunc(b.reserved, func(r *reservation) bool {
		if r.SessionID == id {
			b.logger().Info("reservation over", safelog.String("user", r.User), safelog.String("app", r.App),
				safelog.String("session", id), "pid", r.PID, safelog.String("why", why))
			b.unreserved(r)
			return true
		}
		return false
	})
}

// sessionsSeen drops the reservations whose session a server report shows
// attached, or no longer shows at all. Callers hold b.mu.
func (b *Broker) sessionsSeen(server string, sessions []control.SessionInfo, now time.Time) {
	if !slices.ContainsFunc(b.reserved, func(r *reservation) bool { return r.Server == server && r.SessionID != "" }) {
		return // nothing pre-launched awaits its client there
	}
	state := make(map[string]string, len(sessions))
	for _, s := range sessions {
		state[s.ID] = s.State
	}
	for _, r := range slices.Clone(b.reserved) {
		if r.Server != server || r.SessionID == "" {
			continue
		}
		st, ok := state[r.SessionID]
		switch {
		case ok && st == control.StateAttached:
			b.dropReservationOf(r.SessionID, "attached")
		case !ok && b.sessions[r.SessionID] == nil:
			b.dropReservationOf(r.SessionID, "gone from its server")
		}
	}
}

// reservations lists the reservations for Status, soonest to expire
// first. Callers hold b.mu.
func (b *Broker) reservations(now time.Time) []ReservationStatus {
	out := make([]ReservationStatus, 0, len(b.reserved))
	for _, r := range b.reserved {
		out = append(out, ReservationStatus{User: r.User, App: r.App, Server: r.Server, Gateway: r.Gateway,
			From: r.From, SessionID: r.SessionID, PID: r.PID, Expires: r.Expires,
			ExpiresIn: r.Expires.Sub(now).Seconds()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out
}
