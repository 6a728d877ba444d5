// Package etcdtest starts a real etcd cluster inside a test process: n
// embedded members (internal/etcdembed) on loopback, each with its own
// data directory under the test's TempDir, which a test may stop and
// start again to take quorum away and give it back.
//
// It is a test helper: production code never imports it.
package etcdtest

import (
	"testing"

	"switchyard/internal/etcdembed"
)

// Cluster is a running embedded etcd cluster.
type Cluster struct {
	t testing.TB
	c *etcdembed.Cluster
}

// Start starts an n-member cluster on loopback and waits until every
// member is ready; the cluster is stopped when the test ends. Members
// skip fsync: they are stopped cleanly, never power-cut.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c, err := etcdembed.Start(t.TempDir(), n, etcdembed.Options{NoFsync: true, Token: "etcdtest"})
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(c.Close)
	return &Cluster{t: t, c: c}
}

// Endpoints returns every member's client URL, running or not.
func (c *Cluster) Endpoints() []string { return c.c.Endpoints() }

// Stop stops member i (0-based); its data stays for Restart.
func (c *Cluster) Stop(i int) { c.c.Stop(i) }

// Restart starts member i again after Stop and waits until it is ready
// (which, for a member that restores quorum, is when the cluster has a
// leader again).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.c.Restart(i); err != nil {
		c.t.Fatalf("etcdtest: %v", err)
	}
}

// RestartAll starts every stopped member at once (a lone member cannot be
// ready without its peers) and waits until they are ready.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	if err := c.c.RestartAll(); err != nil {
		c.t.Fatalf("etcdtest: %v", err)
	}
}

// Leader returns the index of the member that leads the etcd cluster,
// as the running members see it; -1 if none does.
func (c *Cluster) Leader() int { return c.c.Leader() }

// Followers returns the indexes of the running members that do not lead.
func (c *Cluster) Followers() []int { return c.c.Followers() }

// StopAll stops every member, the leader last.
func (c *Cluster) StopAll() { c.c.Close() }
