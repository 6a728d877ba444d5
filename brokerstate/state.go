// Package brokerstate keeps what a broker must not forget across a
// restart or a failover: admins' drains and user locks, reservations of redirected
// clients, and the session registry. A lone broker keeps it in a file
// under state_dir (File); several brokers keep it in etcd, where they also
// elect the one that places (Etcd). The broker package owns the meaning of
// this state; this package only makes it durable and says who leads.
//
// It imports only control (for SessionInfo) and the etcd client.
package brokerstate

import (
	"context"
	"time"

	"switchyard/control"
)

// FormatVersion is the version of the stored layout. A store holding
// another version is refused, never guessed at.
const FormatVersion = 1

// Drain is an admin's drain of a server: no new sessions there until it
// is undone.
type Drain struct {
	Server string    `json:"server"`
	By     string    `json:"by"` // who asked: a Unix user, "token", or "config"
	At     time.Time `json:"at"`
}

// Lock is an admin's lock of a user: the broker refuses the user's new
// sessions, app list and resumes until Until (zero: until unlocked).
type Lock struct {
	User   string    `json:"user"`
	By     string    `json:"by"` // who asked: a Unix user, or "token"
	At     time.Time `json:"at"`
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// Reservation is a redirected client's claim on a server, and, when the
// app was pre-launched, on a process waiting there for it. Its key is ID.
type Reservation struct {
	ID        string    `json:"id"` // unique; the pre-launched session id when there is one
	User      string    `json:"user"`
	App       string    `json:"app"`
	Args      []string  `json:"args,omitempty"`
	Pty       bool      `json:"pty"`
	Server    string    `json:"server"`
	Gateway   string    `json:"gateway"` // where the client was sent
	From      string    `json:"from"`    // the gateway that sent it
	SessionID string    `json:"session_id,omitempty"`
	PID       int       `json:"pid,omitempty"`
	Expires   time.Time `json:"expires"`
}

// State is everything a Store keeps, by key: drains by server, locks by
// user, reservations by ID, sessions by ID.
type State struct {
	Drains       map[string]Drain
	Locks        map[string]Lock
	Reservations map[string]Reservation
	Sessions     map[string]control.SessionInfo
}

// Store makes State durable. Drains and reservations are durable when
// their Put or Delete returns (a reservation must be before its redirect
// hint is sent). Session writes may be batched: after a crash the last
// moments' changes may be missing, and the nodes' reports restore them
// within one report interval. Every method is safe for concurrent use.
type Store interface {
	// Load reads the whole state.
	Load(ctx context.Context) (State, error)
	PutDrain(ctx context.Context, d Drain) error
	DeleteDrain(ctx context.Context, server string) error
	// PutLock and DeleteLock are durable when they return, as drains.
	PutLock(ctx context.Context, l Lock) error
	DeleteLock(ctx context.Context, user string) error
	PutReservation(ctx context.Context, r Reservation) error
	DeleteReservation(ctx context.Context, id string) error
	PutSession(ctx context.Context, s control.SessionInfo) error
	DeleteSession(ctx context.Context, id string) error
	// Close flushes batched writes and releases the store.
	Close() error
}

// Leadership says whether this broker may place. With several brokers
// exactly one leads at a time; a lone broker always leads.
type Leadership interface {
	// Leading reports whether this broker may place now: it holds the
	// leadership and its lease cannot have expired yet. It turns false
	// before another broker can be elected, so two never place at once.
	Leading() bool
	// Leader is the broker leading as far as this one knows, and since
	// when; "" if none is known.
	Leader() (name string, since time.Time)
	// Changes receives a value (without blocking the sender; one may be
	// dropped if the last is unread) whenever Leading or Leader changes.
	Changes() <-chan struct{}
}

// Solo is the Leadership of a lone broker: it always leads.
type Solo struct {
	Name  string
	Since time.Time
}

// Leading is always true.
func (s Solo) Leading() bool { return true }

// Leader is s itself.
func (s Solo) Leader() (string, time.Time) { return s.Name, s.Since }

// Changes never receives.
func (s Solo) Changes() <-chan struct{} { return nil }
