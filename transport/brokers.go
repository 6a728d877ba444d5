package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"switchyard/control"
)

// ErrNoLeader is returned by Brokers.Call when no broker would take the
// call before the wait ran out: all are down, or none leads (an election
// is under way, or etcd has lost its quorum). A gateway tells its user
// "broker unavailable".
var ErrNoLeader = errors.New("transport: no broker leads")

// DefaultLeaderWait is Brokers.LeaderWait when unset: about the time a
// new leader needs after the old one died (its lease runs out, the next
// campaigns), so a login during a failover waits rather than fails.
const DefaultLeaderWait = 4 * time.Second

// Brokers is a node's control links to every broker. Reports go to each
// (so every broker's picture of the cluster stays complete and a new
// leader can place at once); calls go to the leader. A broker that does
// not lead answers CodeNotLeader with the leader's name, and the call
// moves there. With one broker, Brokers is that broker's Link.
type Brokers struct {
	Links map[string]*Link // by broker node name; set before Run
	Order []string         // the names, in the order to try when no leader is known
	// LeaderWait bounds how long Call keeps looking for a leader;
	// DefaultLeaderWait if zero.
	LeaderWait time.Duration

	mu     sync.Mutex // guards leader
	leader string     // the broker that last took a call; "" if unknown
}

// Run keeps every link up until ctx ends.
func (b *Brokers) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range b.Links {
		wg.Add(1)
		go func() { defer wg.Done(); l.Run(ctx) }()
	}
	wg.Wait()
}

// Leader returns the broker that last took a call; "" if none yet.
func (b *Brokers) Leader() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leader
}

func (b *Brokers) setLeader(name string) {
	b.mu.Lock()
	b.leader = name
	b.mu.Unlock()
}

// Each runs fn with the peer of every broker whose link is up.
func (b *Brokers) Each(ctx context.Context, fn func(name string, p *control.Peer)) {
	for _, name := range b.Order {
		if p, err := b.Links[name].Current(ctx); err == nil {
			fn(name, p)
		}
	}
}

// Notify sends a notification to every broker whose link is up, so that
// those that do not lead keep their registries warm too. It fails only
// when no broker took it.
func (b *Brokers) Notify(ctx context.Context, method string, body any) error {
	var err error
	sent := false
	for _, name := range b.Order {
		p, perr := b.Links[name].Current(ctx)
		if perr == nil {
			perr = p.Notify(ctx, method, body)
		}
		if perr != nil {
			err = perr
			continue
		}
		sent = true
	}
	if sent {
		return nil
	}
	return err
}

// Call calls method on the leading broker: the last known leader first,
// then the one a refusing broker names, then the others in Order. While
// none leads it tries again, backing off, until LeaderWait or ctx ends;
// then it returns ErrNoLeader with the last reason. A broker's own
// answer (an error of another code included) is returned as it is.
//
// A lone broker that is down fails the call at once, unless its link
// went down less than LeaderWait ago: a restart, which the call waits
// out until LeaderWait after the link went down.
func (b *Brokers) Call(ctx context.Context, method string, req, resp any) error {
	wait := b.LeaderWait
	if wait <= 0 {
		wait = DefaultLeaderWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	retry := backoff{first: 50 * time.Millisecond, max: 500 * time.Millisecond}
	var last error
	for {
		done, err := b.round(ctx, method, req, resp)
		lone := len(b.Order) == 1
		if done || lone && !b.restarting(wait) { // a lone broker leads, or is down: say so at once
			return err
		}
		last = err
		t := time.NewTimer(retry.next())
		select {
		case <-ctx.Done():
			t.Stop()
			if lone {
				return last
			}
			return fmt.Errorf("%w: %v", ErrNoLeader, last)
		case <-t.C:
		}
	}
}

// restarting reports whether the lone broker's link went down less than
// wait ago, as it does while the broker restarts.
func (b *Brokers) restarting(wait time.Duration) bool {
	l := b.Links[b.Order[0]]
	if l == nil {
		return false
	}
	lost := l.LostAt()
	return !lost.IsZero() && time.Since(lost) < wait
}

// round tries each broker once, leader first. done is false when none
// took the call; err is then the last reason.
func (b *Brokers) round(ctx context.Context, method string, req, resp any) (done bool, err error) {
	order := b.order(b.Leader())
	for i := 0; i < len(order); i++ {
		name := order[i]
		l := b.Links[name]
		if l == nil {
			continue
		}
		p, perr := l.Current(ctx)
		if perr != nil {
			err = perr
			continue
		}
		cerr := p.Call(ctx, method, req, resp)
		var re *control.RemoteError
		switch {
		case errors.As(cerr, &re) && re.Code == control.CodeNotLeader:
			err = fmt.Errorf("%s does not lead (leader %q)", name, re.Message)
			if hint := re.Message; hint != "" && !slices.Contains(order[:i+1], hint) {
				order = slices.Insert(slices.DeleteFunc(order, func(n string) bool { return n == hint }), i+1, hint)
			}
		case errors.As(cerr, &re), cerr == nil:
			b.setLeader(name)
			return true, cerr
		case ctx.Err() != nil:
			return false, cerr
		default: // the link failed mid-call: try the next broker
			err = cerr
		}
	}
	if err == nil {
		err = errors.New("no broker configured")
	}
	return false, err
}

// order is Order with leader moved to the front.
func (b *Brokers) order(leader string) []string {
	order := make([]string, 0, len(b.Order))
	if leader != "" {
		order = append(order, leader)
	}
	for _, n := range b.Order {
		if n != leader {
			order = append(order, n)
		}
	}
	return order
}
