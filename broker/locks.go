package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"switchyard/brokerstate"
	"switchyard/control"
	"switchyard/safelog"
)

// Locks: an admin's `broker lock USER` makes the broker refuse the user's
// new placements, app list and session list (so: logins, the picker and
// resumes) with control.CodeLocked and one line, until the lock's Until or
// `broker unlock`. Locks are kept in b.Store, like drains, written by the
// leader only, and restored by Restore.

// ErrUnknownUser is returned by LockBy for a user the config lacks.
var ErrUnknownUser = errors.New("no such user")

// LockStatus is one user lock in Status.
type LockStatus struct {
	User   string    `json:"user"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Until  time.Time `json:"until,omitzero"` // zero: until unlocked
	Reason string    `json:"reason,omitempty"`
}

// LockBy locks (on) or unlocks (off) user on behalf of by (a Unix user,
// "token"), until until (zero: until unlocked), with reason shown to the
// user. The lock is in b.Store, when set, before LockBy returns. Running
// sessions are not ended (broker kick does that). Errors:
// ErrUnknownUser, ErrNotLeader, or the store's.
func (b *Broker) LockBy(ctx context.Context, user string, on bool, by string, until time.Time, reason string) error {
	b.drainMu.Lock()
	defer b.drainMu.Unlock()
	b.mu.Lock()
	b.init()
	known := b.cluster.IsUser == nil || b.cluster.IsUser(user)
	at := b.now()
	b.mu.Unlock()
	if !known {
		return fmt.Errorf("lock %q: %w", safelog.Text(user, 0), ErrUnknownUser)
	}
	if !b.leadership().Leading() {
		return fmt.Errorf("lock %q: %w", user, ErrNotLeader)
	}
	l := brokerstate.Lock{User: user, By: by, At: at, Until: until, Reason: reason}
	if err := b.storeLock(ctx, l, on); err != nil {
		return fmt.Errorf("lock %q: %w", user, err)
	}
	b.mu.Lock()
	if on {
		b.locks[user] = l
	} else {
		delete(b.locks, user)
	}
	b.mu.Unlock()
	b.logger().Info("lock", safelog.String("user", user), "on", on, safelog.String("by", by), "until", until,
		"reason", safelog.Text(reason, maxReason))
	return nil
}

// storeLock writes a lock, or its end, to b.Store if set.
func (b *Broker) storeLock(ctx context.Context, l brokerstate.Lock, on bool) error {
	switch {
	case b.Store == nil:
		return nil
	case on:
		return b.Store.PutLock(ctx, l)
	default:
		return b.Store.DeleteLock(ctx, l.User)
	}
}

// restoreLocks makes locks the admins' locks. Callers hold b.mu.
func (b *Broker) restoreLocks(locks map[string]brokerstate.Lock) {
	clear(b.locks)
	for u, l := range locks {
		b.locks[u] = l
	}
}

// lockedErr is the refusal of a locked user's request at now, or nil.
// Callers hold b.mu.
func (b *Broker) lockedErr(user string, now time.Time) error {
	l, ok := b.locks[user]
	if !ok || !l.Until.IsZero() && !now.Before(l.Until) {
		return nil
	}
	return control.NewError(control.CodeLocked, LockedLine(l.Reason))
}

// LockedLine is what a locked user reads, after "switchyard: ".
func LockedLine(reason string) string {
	line := "user locked by an administrator"
	if reason = strings.TrimSpace(reason); reason != "" {
		line += ": " + safelog.Text(reason, maxLockReason)
	}
	return line
}

// maxLockReason caps the reason a locked user reads.
const maxLockReason = 512

// lockedUser is lockedErr for callers that do not hold b.mu.
func (b *Broker) lockedUser(user string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	return b.lockedErr(user, b.now())
}

// lockStatus lists the locks in force at now, by user. Callers hold b.mu.
func (b *Broker) lockStatus(now time.Time) []LockStatus {
	out := []LockStatus{}
	for _, l := range b.locks {
		if !l.Until.IsZero() && !now.Before(l.Until) {
			continue
		}
		out = append(out, LockStatus(l))
	}
	slices.SortFunc(out, func(a, b LockStatus) int { return strings.Compare(a.User, b.User) })
	return out
}

// writeLocks prints the locks table, if any.
func writeLocks(w io.Writer, ls []LockStatus) {
	if len(ls) == 0 {
		return
	}
	fmt.Fprintln(w, "\nLOCKED USER\tBY\tSINCE\tUNTIL\tREASON")
	for _, l := range ls {
		until := "unlocked"
		if !l.Until.IsZero() {
			until = l.Until.Local().Format(time.DateTime)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", cell(l.User), cell(l.By), l.At.Local().Format(time.DateTime), until,
			safelog.Text(l.Reason, maxReason))
	}
}
