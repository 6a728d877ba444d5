// Package etcdtest starts a real etcd cluster inside a test process: n
// embedded members (go.etcd.io/etcd/server/v3/embed) on loopback, each
// with its own data directory under the test's TempDir, which a test may
// stop and start again to take quorum away and give it back.
//
// It is a test helper: production code never imports it.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// readyTimeout bounds how long a member may take to join its cluster.
const readyTimeout = 60 * time.Second

// Cluster is a running embedded etcd cluster.
type Cluster struct {
	t       testing.TB
	members []*member
}

// member is one etcd server of a Cluster and what it needs to restart.
type member struct {
	mu   sync.Mutex
	cfg  *embed.Config
	etcd *embed.Etcd // nil while stopped
}

// Start starts an n-member cluster on loopback and waits until every
// member is ready; the cluster is stopped when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	dir := t.TempDir()
	var initial []string
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		peer, client := freeURL(t), freeURL(t)
		cfg := embed.NewConfig()
		cfg.Name = name
		cfg.Dir = fmt.Sprintf("%s/%s", dir, name)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.InitialClusterToken = "etcdtest"
		cfg.ClusterState = embed.ClusterStateFlagNew
		// Fsync costs seconds per test on a busy disk and proves nothing
		// here: members are stopped cleanly, never power-cut.
		cfg.UnsafeNoFsync = true
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		c.members = append(c.members, &member{cfg: cfg})
		initial = append(initial, name+"="+peer.String())
	}
	for _, m := range c.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
	}
	t.Cleanup(c.StopAll)
	errs := make(chan error, n)
	for _, m := range c.members {
		go func() { errs <- m.start() }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
	}
	return c
}

// freeURL returns an http URL on a loopback port that was free a moment
// ago.
func freeURL(t testing.TB) url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return url.URL{Scheme: "http", Host: addr}
}

// start starts m and waits until it is ready.
func (m *member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		return nil
	}
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		return fmt.Errorf("start %s: %w", m.cfg.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("start %s: %w", m.cfg.Name, err)
	case <-time.After(readyTimeout):
		e.Close()
		return fmt.Errorf("start %s: not ready after %v", m.cfg.Name, readyTimeout)
	}
	m.etcd = e
	return nil
}

// stop stops m if it runs.
func (m *member) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
}

// Endpoints returns every member's client URL, running or not.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.cfg.AdvertiseClientUrls[0].String()
	}
	return eps
}

// Stop stops member i (0-based); its data stays for Restart.
func (c *Cluster) Stop(i int) { c.members[i].stop() }

// Restart starts member i again after Stop and waits until it is ready
// (which, for a member that restores quorum, is when the cluster has a
// leader again).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.members[i].start(); err != nil {
		c.t.Fatalf("etcdtest: %v", err)
	}
}

// RestartAll starts every stopped member at once (a lone member cannot be
// ready without its peers) and waits until they are ready.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	errs := make(chan error, len(c.members))
	for _, m := range c.members {
		go func() { errs <- m.start() }()
	}
	for range c.members {
		if err := <-errs; err != nil {
			c.t.Fatalf("etcdtest: %v", err)
		}
	}
}

// Leader returns the index of the member that leads the etcd cluster,
// as the running members see it; -1 if none does.
func (c *Cluster) Leader() int {
	for _, m := range c.members {
		m.mu.Lock()
		e := m.etcd
		m.mu.Unlock()
		if e == nil {
			continue
		}
		lead := e.Server.Leader()
		for i, o := range c.members {
			o.mu.Lock()
			if o.etcd != nil && o.etcd.Server.MemberID() == lead {
				o.mu.Unlock()
				return i
			}
			o.mu.Unlock()
		}
	}
	return -1
}

// Followers returns the indexes of the running members that do not lead.
func (c *Cluster) Followers() []int {
	lead := c.Leader()
	var out []int
	for i, m := range c.members {
		m.mu.Lock()
		running := m.etcd != nil
		m.mu.Unlock()
		if running && i != lead {
			out = append(out, i)
		}
	}
	return out
}

// StopAll stops every member: the followers first, then the leader. A
// leader stopped with its followers still up first hands its leadership
// over, which takes seconds when they are stopping too.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	lead := c.Leader()
	for i, m := range c.members {
		if i != lead {
			wg.Go(m.stop)
		}
	}
	wg.Wait()
	if lead >= 0 {
		c.members[lead].stop()
	}
}
