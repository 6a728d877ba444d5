package brokerstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// election runs this broker for leader, in etcd sessions one after the
// other: a session (a lease of cfg.LeaseTTL, kept alive) campaigns on
// PREFIX/leader/; when it dies (its lease lost or expired, quorum lost too
// long), a new one campaigns once etcd answers again.
//
// Leading is bounded by the lease: each keepalive this broker sends and
// etcd answers proves the lease lives until at least the moment it was
// sent plus the TTL, since etcd restarts the TTL on receipt. Leading holds
// only until that moment minus a margin (TTL/3), so it turns false before
// etcd can expire the lease and elect another broker.
type election struct {
	e        *Etcd
	ttl      time.Duration
	margin   time.Duration
	interval time.Duration // between keepalives
	changes  chan struct{}

	mu         sync.Mutex
	won        bool      // the current session won the campaign
	validUntil time.Time // Leading holds until then
	since      time.Time // when it won
	ownKey     string    // the current session's key under PREFIX/leader/
	lease      clientv3.LeaseID
	leader     leaderValue // as observed; zero if unknown
	leaderKey  string
	stopping   bool
	endSession context.CancelFunc // ends the current session; nil between sessions
	reported   struct {           // last state Changes signalled
		leading bool
		leader  string
	}
	timer *time.Timer // signals Changes when validUntil passes
}

func newElection(e *Etcd) *election {
	ttl := e.cfg.LeaseTTL.Truncate(time.Second)
	return &election{e: e, ttl: ttl, margin: ttl / 3, interval: ttl / 6, changes: make(chan struct{}, 1)}
}

// Leading reports whether this broker holds the leadership and its lease
// cannot have expired: see election.
func (e *Etcd) Leading() bool {
	if e.elect == nil {
		return false
	}
	return e.elect.leading(time.Now())
}

// Leader is the leading broker as far as this one knows: itself while
// Leading, else the oldest candidate in etcd; "" when etcd cannot tell.
func (e *Etcd) Leader() (string, time.Time) {
	if e.elect == nil {
		return "", time.Time{}
	}
	el := e.elect
	el.mu.Lock()
	defer el.mu.Unlock()
	if el.leadingLocked(time.Now()) {
		return e.cfg.Name, el.since
	}
	if el.won || el.leaderKey != "" && el.leaderKey == el.ownKey {
		// Ours, but not provably alive: not a leader anyone may count on.
		return "", time.Time{}
	}
	return el.leader.Name, el.leader.Since
}

// Changes receives a value whenever Leading or Leader changes.
func (e *Etcd) Changes() <-chan struct{} {
	if e.elect == nil {
		return nil
	}
	return e.elect.changes
}

func (el *election) leading(now time.Time) bool {
	el.mu.Lock()
	defer el.mu.Unlock()
	return el.leadingLocked(now)
}

func (el *election) leadingLocked(now time.Time) bool {
	return el.won && !el.stopping && now.Before(el.validUntil)
}

// signalLocked sends on changes if Leading or Leader differ from what was
// last signalled.
func (el *election) signalLocked() {
	now := time.Now()
	leading := el.leadingLocked(now)
	leader := el.leader.Name
	if leading {
		leader = el.e.cfg.Name
	}
	if leading == el.reported.leading && leader == el.reported.leader {
		return
	}
	el.reported.leading, el.reported.leader = leading, leader
	select {
	case el.changes <- struct{}{}:
	default:
	}
	if leading {
		el.e.log.Info("etcd: leading", "since", el.since)
	} else if el.won {
		el.e.log.Warn("etcd: not leading: the lease is not known to be alive", "leader", leader)
	}
}

// alive records a keepalive sent at sent and answered: the lease lives
// until at least sent+TTL.
func (el *election) alive(id clientv3.LeaseID, sent time.Time) {
	el.mu.Lock()
	defer el.mu.Unlock()
	if id != el.lease {
		return
	}
	until := sent.Add(el.ttl - el.margin)
	if until.After(el.validUntil) {
		el.validUntil = until
	}
	if el.timer == nil {
		el.timer = time.AfterFunc(time.Until(el.validUntil), el.expired)
	} else {
		el.timer.Reset(time.Until(el.validUntil))
	}
	el.signalLocked()
}

// expired runs when validUntil passes without a newer keepalive.
func (el *election) expired() {
	el.mu.Lock()
	defer el.mu.Unlock()
	el.signalLocked()
}

// run campaigns in one session after another until the store closes,
// and observes who leads.
func (el *election) run() {
	var wg sync.WaitGroup
	wg.Go(el.observe)
	defer wg.Wait()
	var stale clientv3.LeaseID // a dead session's lease, to revoke
	for el.e.ctx.Err() == nil {
		if stale != clientv3.NoLease && el.revoke(stale) {
			stale = clientv3.NoLease
		}
		id, err := el.session()
		if err != nil {
			el.e.log.Debug("etcd: no session", "err", err)
			el.pause(el.interval)
			continue
		}
		stale = id
	}
}

// pause waits d or until the store closes.
func (el *election) pause(d time.Duration) {
	select {
	case <-el.e.ctx.Done():
	case <-time.After(d):
	}
}

// revoke ends a dead session's lease, so that its key does not hold the
// leadership until the lease expires; true if it is gone.
func (el *election) revoke(id clientv3.LeaseID) bool {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(el.e.ctx), el.e.cfg.DialTimeout)
	defer cancel()
	_, err := el.e.client.Revoke(ctx, id)
	return err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound)
}

// session grants a lease, campaigns with it, leads while it lives, and
// returns its lease when it dies.
func (el *election) session() (clientv3.LeaseID, error) {
	cl := el.e.client
	gctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(el.e.ctx), el.e.cfg.DialTimeout)
	sent := time.Now()
	grant, err := cl.Grant(gctx, int64(el.ttl/time.Second))
	cancel()
	if err != nil {
		return clientv3.NoLease, err
	}
	s, err := concurrency.NewSession(cl, concurrency.WithLease(grant.ID),
		concurrency.WithTTL(int(el.ttl/time.Second)), concurrency.WithContext(el.e.ctx))
	if err != nil {
		return grant.ID, err
	}
	defer s.Orphan()
	ctx, cancelSession := context.WithCancel(s.Ctx())
	defer cancelSession()
	el.mu.Lock()
	el.lease, el.ownKey, el.validUntil, el.endSession = grant.ID, "", time.Time{}, cancelSession
	el.mu.Unlock()
	defer func() {
		el.mu.Lock()
		el.endSession = nil
		el.mu.Unlock()
	}()
	el.alive(grant.ID, sent)
	var wg sync.WaitGroup
	wg.Go(func() { el.keepalive(ctx, cancelSession, grant.ID) })
	defer wg.Wait()
	defer cancelSession()
	el.lead(ctx, concurrency.NewElection(s, el.e.key(dirLeader)))
	if el.e.ctx.Err() == nil {
		el.e.log.Info("etcd: session ended; campaigning again", "lease", fmt.Sprintf("%x", grant.ID),
			"session_alive", s.Ctx().Err() == nil)
	}
	return grant.ID, nil
}

// keepalive renews lease id every interval, recording each renewal's
// send time; it cancels the session when etcd says the lease is gone.
func (el *election) keepalive(ctx context.Context, cancel context.CancelFunc, id clientv3.LeaseID) {
	t := time.NewTicker(el.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		kctx, kcancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), el.ttl)
		sent := time.Now()
		_, err := el.e.client.KeepAliveOnce(kctx, id)
		kcancel()
		switch {
		case err == nil:
			el.alive(id, sent)
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			el.e.log.Warn("etcd: lease lost; campaigning again")
			cancel()
			return
		}
	}
}

// lead campaigns in el's session and, once elected, holds the
// leadership until ctx ends (the session dies or the store closes).
func (el *election) lead(ctx context.Context, elec *concurrency.Election) {
	joined, _ := json.Marshal(leaderValue{Name: el.e.cfg.Name, Since: time.Now().UTC()})
	if err := elec.Campaign(ctx, string(joined)); err != nil {
		return
	}
	now := time.Now()
	val, _ := json.Marshal(leaderValue{Name: el.e.cfg.Name, Since: now.UTC()})
	if err := elec.Proclaim(ctx, string(val)); err != nil {
		el.e.log.Debug("etcd: proclaim", "err", err)
	}
	el.mu.Lock()
	el.won, el.since, el.ownKey = true, now, elec.Key()
	if el.stopping {
		el.won = false
	}
	el.signalLocked()
	el.mu.Unlock()
	<-ctx.Done()
	el.mu.Lock()
	el.won = false
	el.signalLocked()
	el.mu.Unlock()
}

// stop makes Leading false for good and returns the lease to revoke.
func (el *election) stop() clientv3.LeaseID {
	el.mu.Lock()
	defer el.mu.Unlock()
	el.stopping = true
	el.signalLocked()
	if el.timer != nil {
		el.timer.Stop()
	}
	return el.lease
}

// observe follows who leads: the oldest key under PREFIX/leader/, read
// again after every change there. When etcd cannot tell (quorum lost),
// the leader is unknown.
func (el *election) observe() {
	pfx := el.e.key(dirLeader)
	for el.e.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(el.e.ctx, el.e.cfg.DialTimeout)
		resp, err := el.e.client.Get(ctx, pfx, clientv3.WithFirstCreate()...)
		cancel()
		if err != nil {
			el.observed("", leaderValue{})
			el.pause(el.interval * 2)
			continue
		}
		var key string
		var val leaderValue
		if len(resp.Kvs) > 0 {
			key = string(resp.Kvs[0].Key)
			if json.Unmarshal(resp.Kvs[0].Value, &val) != nil {
				val.Name = "?"
			}
		}
		el.observed(key, val)
		el.checkOwn(key)
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(el.e.ctx))
		for wr := range el.e.client.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil || len(wr.Events) > 0 {
				break
			}
		}
		wcancel()
	}
}

// observed records the leader's key and value as read from etcd.
func (el *election) observed(key string, val leaderValue) {
	el.mu.Lock()
	defer el.mu.Unlock()
	el.leaderKey, el.leader = key, val
	el.signalLocked()
}

// checkOwn ends the current session if this broker believes it won but
// another key leads and its own key is gone (deleted by hand, or its
// lease revoked): it must not go on believing it leads.
func (el *election) checkOwn(leaderKey string) {
	el.mu.Lock()
	won, own, end := el.won, el.ownKey, el.endSession
	el.mu.Unlock()
	if !won || leaderKey == own || end == nil {
		return
	}
	ctx, cancel := context.WithTimeout(el.e.ctx, el.e.cfg.DialTimeout)
	defer cancel()
	resp, err := el.e.client.Get(ctx, own, clientv3.WithCountOnly())
	if err == nil && resp.Count == 0 {
		el.e.log.Warn("etcd: this broker's leader key is gone; campaigning again", "leader", leaderKey)
		end()
	}
}
