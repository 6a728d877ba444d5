package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"switchyard/brokerstate"
	"switchyard/control"
)

// What the broker must not forget goes to b.Store, when set: drains and
// reservations before the admin or the client hears of them (DrainBy,
// keepReservation), sessions and the end of reservations through a queue
// written outside b.mu by Keep (queueSession, unreserved, writeQueued).
// Restore reads it all back at start and whenever this broker becomes
// leader.

// ErrNotLeader is returned by DrainBy on a broker that does not lead.
var ErrNotLeader = errors.New("this broker does not lead")

// storeWrites are the changes queued for the store: sessions to put (nil:
// delete) by id, coalesced, and reservations to delete.
type storeWrites struct {
	sessions     map[string]*control.SessionInfo
	reservations []string
}

// solo is the Leadership of a Broker without one; made once, so that a
// placement does not allocate it.
var solo brokerstate.Leadership = brokerstate.Solo{}

// leadership is b.Leadership, or Solo.
func (b *Broker) leadership() brokerstate.Leadership {
	if b.Leadership == nil {
		return solo
	}
	return b.Leadership
}

// Restore loads the state kept in b.Store and applies it: admins' drains
// (replacing those in memory), the reservations not yet expired
// (replacing those in memory; the expired ones are deleted), and the
// sessions this broker does not know yet, as seen now: its server's next
// report confirms each or, omitting it, drops it. Without a Store it does
// nothing.
func (b *Broker) Restore(ctx context.Context) error {
	if b.Store == nil {
		return nil
	}
	lead := b.leadership()
	leading := lead.Leading()
	_, term := lead.Leader()
	st, err := b.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("restore broker state: %w", err)
	}
	b.mu.Lock()
	b.init()
	// Loaded while leading in term: what the predecessor kept is known.
	// Leadership won during Load is a new term, restored by Keep.
	b.restored, b.restoredTerm = leading, term
	now := b.now()
	b.restoreDrains(st.Drains)
	b.restoreLocks(st.Locks)
	expired := b.restoreReservations(st.Reservations, now)
	restored := 0
	if st.Sessions == nil {
		st.Sessions = map[string]control.SessionInfo{}
	}
	for _, r := range b.reserved {
		if _, ok := st.Sessions[r.SessionID]; !ok && r.SessionID != "" {
			// Its pre-launch was not written yet (sessions are batched):
			// the reservation says enough of it.
			st.Sessions[r.SessionID] = b.prelaunched(r)
		}
	}
	for id, s := range st.Sessions {
		if b.sessions[id] != nil || id == "" {
			continue // what this broker learned itself is newer
		}
		b.putSession(s, now)
		b.sessions[id].restored = true
		delete(b.writes.sessions, id) // the store has it
		restored++
	}
	reserved := len(b.reserved)
	b.mu.Unlock()
	for _, id := range expired {
		if err := b.Store.DeleteReservation(ctx, id); err != nil {
			b.logger().Warn("expired reservation not deleted from the broker state", "id", id, "err", err.Error())
		}
	}
	b.logger().Info("broker state restored", "drains", len(st.Drains), "locks", len(st.Locks), "reservations", reserved,
		"expired_reservations", len(expired), "sessions", restored)
	return nil
}

// ready reports whether this broker, leading in term, has restored the
// kept state in that term, and may place. Without a Store there is
// nothing to restore; a leadership that never changes hands (Solo) has
// one term, restored before the broker serves. Callers hold b.mu.
func (b *Broker) ready(lead brokerstate.Leadership, term time.Time) bool {
	return b.Store == nil || lead.Changes() == nil || b.restored && b.restoredTerm.Equal(term)
}

// prelaunched is the session pre-launched for r, as its reservation
// tells it: detached since it was made. Callers hold b.mu.
func (b *Broker) prelaunched(r *reservation) control.SessionInfo {
	at := r.Expires.Add(-b.reservationTime())
	return control.SessionInfo{ID: r.SessionID, PID: r.PID, User: r.User, App: r.App, Server: r.Server,
		Gateway: r.Gateway, Started: at, State: control.StateDetached, Detached: at}
}

// restoreDrains makes drains the admins' drains. Callers hold b.mu.
func (b *Broker) restoreDrains(drains map[string]brokerstate.Drain) {
	for name, st := range b.servers {
		d, ok := drains[name]
		st.drained, st.drainedBy, st.drainedAt = ok, d.By, d.At
	}
	for name, d := range drains {
		st := b.server(name)
		st.drained, st.drainedBy, st.drainedAt = true, d.By, d.At
	}
	for _, t := range b.table {
		b.tab.SetDraining(t.st.row, drainingOf(t.spec, t.st))
	}
}

// restoreReservations makes rs, but for those expired at now, the
// reservations, oldest first, and returns the ids of the expired ones.
// Callers hold b.mu.
func (b *Broker) restoreReservations(rs map[string]brokerstate.Reservation, now time.Time) []string {
	var expired []string
	b.reserved = b.reserved[:0]
	for id, r := range rs {
		if now.After(r.Expires) {
			expired = append(expired, id)
			continue
		}
		r.Args = slices.Clone(r.Args)
		b.reserved = append(b.reserved, &r)
	}
	sort.SliceStable(b.reserved, func(i, j int) bool { return b.reserved[i].Expires.Before(b.reserved[j].Expires) })
	return expired
}

// Keep writes the queued changes to b.Store as they come, and restores
// the state whenever this broker becomes leader (b.Leadership.Changes).
// It returns when ctx ends, after writing what is queued. Without a
// Store it only waits for ctx.
func (b *Broker) Keep(ctx context.Context) {
	b.mu.Lock()
	b.init()
	wake := b.wake
	b.mu.Unlock()
	lead := b.leadership()
	var retry <-chan time.Time // after a failed Restore
	leader, _ := lead.Leader()
	for {
		select {
		case <-ctx.Done():
			b.writeQueued(context.WithoutCancel(ctx))
			return
		case <-wake:
			b.writeQueued(ctx)
			continue
		case <-lead.Changes():
			name, _ := lead.Leader()
			b.noteLeader(leader, name)
			leader = name
		case <-retry:
		}
		// Leading in a term not restored yet: won since the caller's
		// Restore, or lost and won again between two signals.
		if !lead.Leading() {
			continue
		}
		_, term := lead.Leader()
		b.mu.Lock()
		done := b.ready(lead, term)
		b.mu.Unlock()
		if done {
			continue
		}
		retry = nil
		if err := b.Restore(ctx); err != nil {
			b.logger().Error("leading without the kept state; placements wait for it", "err", err.Error())
			retry = time.After(restoreRetry)
		}
	}
}

// restoreRetry is how soon Keep tries again to restore after a failure.
const restoreRetry = 500 * time.Millisecond

// writeQueued writes the queued changes to the store. Only a leader
// writes: a follower's queue is dropped.
func (b *Broker) writeQueued(ctx context.Context) {
	b.mu.Lock()
	w := b.writes
	b.writes = storeWrites{}
	b.mu.Unlock()
	if b.Store == nil || !b.leadership().Leading() {
		return
	}
	for id, s := range w.sessions {
		var err error
		if s == nil {
			err = b.Store.DeleteSession(ctx, id)
		} else {
			err = b.Store.PutSession(ctx, *s)
		}
		if err != nil {
			b.logger().Warn("session not written to the broker state; the next report restores it", "id", id, "err", err.Error())
		}
	}
	for _, id := range w.reservations {
		if err := b.Store.DeleteReservation(ctx, id); err != nil {
			b.logger().Warn("reservation not deleted from the broker state; it expires there", "id", id, "err", err.Error())
		}
	}
}

// queueSession queues the write of a session. Callers hold b.mu.
func (b *Broker) queueSession(id string, s control.SessionInfo) {
	b.queue(id, &s)
}

// queueDrop queues the deletion of a session. Callers hold b.mu.
func (b *Broker) queueDrop(id string) {
	if b.Store != nil {
		b.queue(id, nil)
	}
}

// queue queues a session's write (nil: its deletion). Callers hold b.mu.
func (b *Broker) queue(id string, s *control.SessionInfo) {
	if b.writes.sessions == nil {
		b.writes.sessions = map[string]*control.SessionInfo{}
	}
	b.writes.sessions[id] = s
	b.poke()
}

// unreserved queues the deletion of reservation r, taken, expired or
// dropped. Callers hold b.mu.
func (b *Broker) unreserved(r *reservation) {
	if b.Store == nil {
		return
	}
	b.writes.reservations = append(b.writes.reservations, r.ID)
	b.poke()
}

// poke wakes Keep. Callers hold b.mu.
func (b *Broker) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// keepReservation makes o's new reservation durable, then records it, so
// that a redirect is never answered before its reservation would survive
// a restart. If the store fails, the placement fails as the broker being
// unavailable and a pre-launched app is released.
func (b *Broker) keepReservation(ctx context.Context, o *outcome) {
	r := o.reserve
	if b.Store != nil {
		if err := b.Store.PutReservation(ctx, *r); err != nil {
			b.logger().Error("reservation not kept; placement refused", "err", err.Error())
			o.pl, o.route = control.Placement{}, route{}
			o.err = control.NewError(control.CodeUnavailable, "broker unavailable: cannot keep the reservation")
			if r.SessionID != "" {
				go b.release(context.WithoutCancel(ctx), r)
			}
			return
		}
	}
	b.mu.Lock()
	b.reserve(r)
	b.mu.Unlock()
}

// sameSession reports whether a and b say the same of a session, as the
// store keeps it.
func sameSession(a, b control.SessionInfo) bool {
	return a.ID == b.ID && a.PID == b.PID && a.User == b.User && a.App == b.App && a.Server == b.Server &&
		a.Gateway == b.Gateway && a.ClientAddr == b.ClientAddr && a.Route == b.Route && a.Started.Equal(b.Started) && a.State == b.State && a.Detached.Equal(b.Detached)
}

// newReservationID names a reservation with nothing pre-launched.
func newReservationID() string {
	var x [12]byte
	rand.Read(x[:])
	return "r-" + hex.EncodeToString(x[:])
}
