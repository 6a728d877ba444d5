// Package etcdembed runs a real etcd cluster inside this process: n
// embedded members (go.etcd.io/etcd/server/v3/embed) on loopback, each
// with its own data directory. The demo's high-availability mode and the
// tests' etcdtest run on it; daemons never do (they reach etcd through
// its client).
package etcdembed

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"switchyard/internal/loopport"
)

// ReadyTimeout bounds how long a member may take to join its cluster.
const ReadyTimeout = 60 * time.Second

// Options shape a Cluster.
type Options struct {
	// NoFsync skips fsync: for tests, whose members are stopped cleanly
	// and never power-cut, and where fsync costs seconds on a busy disk.
	NoFsync bool
	Token   string // the initial cluster token; "switchyard" if empty
}

// Cluster is a running embedded etcd cluster.
type Cluster struct {
	members []*member
}

// member is one etcd server of a Cluster and what it needs to restart.
type member struct {
	mu   sync.Mutex
	cfg  *embed.Config
	etcd *embed.Etcd // nil while stopped
}

// startTries bounds how often Start picks new ports when one it picked
// was taken before etcd bound it.
const startTries = 5

// Start starts an n-member cluster on loopback with its data under dir
// (dir/m0, dir/m1, ...) and waits until every member is ready.
//
// The ports are free when picked but may be taken by another process
// before etcd binds them; Start then wipes the new members' data and
// tries again on other ports.
func Start(dir string, n int, opts Options) (*Cluster, error) {
	var err error
	for range startTries {
		var c *Cluster
		c, err = startOnce(dir, n, opts)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			return c, err
		}
		for i := range n {
			if rerr := os.RemoveAll(memberDir(dir, i)); rerr != nil {
				return nil, fmt.Errorf("etcd: clear %s: %w", memberDir(dir, i), rerr)
			}
		}
	}
	return nil, err
}

// memberDir is the data directory of member i.
func memberDir(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("m%d", i))
}

// startOnce starts a new n-member cluster on ports picked now.
func startOnce(dir string, n int, opts Options) (*Cluster, error) {
	token := opts.Token
	if token == "" {
		token = "switchyard"
	}
	c := &Cluster{}
	var initial []string
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		peer, err := pickURL()
		if err != nil {
			return nil, err
		}
		client, err := pickURL()
		if err != nil {
			return nil, err
		}
		cfg := embed.NewConfig()
		cfg.Name = name
		cfg.Dir = memberDir(dir, i)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.InitialClusterToken = token
		cfg.ClusterState = embed.ClusterStateFlagNew
		cfg.UnsafeNoFsync = opts.NoFsync
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		c.members = append(c.members, &member{cfg: cfg})
		initial = append(initial, name+"="+peer.String())
	}
	for _, m := range c.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
	}
	if err := c.startAll(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// pickURL picks a member's URL; tests replace it.
var pickURL = freeURL

// freeURL returns an http URL on a loopback port that was free a moment
// ago, below the ephemeral range (see loopport).
func freeURL() (url.URL, error) {
	addrs, err := loopport.Pick(1)
	if err != nil {
		return url.URL{}, fmt.Errorf("etcd: free port: %w", err)
	}
	return url.URL{Scheme: "http", Host: addrs[0]}, nil
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
		return fmt.Errorf("etcd: start %s: %w", m.cfg.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcd: start %s: %w", m.cfg.Name, err)
	case <-time.After(ReadyTimeout):
		e.Close()
		return fmt.Errorf("etcd: start %s: not ready after %v", m.cfg.Name, ReadyTimeout)
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
func (c *Cluster) Restart(i int) error { return c.members[i].start() }

// startAll starts every stopped member at once (a lone member cannot be
// ready without its peers) and waits until they are ready.
func (c *Cluster) startAll() error {
	errs := make(chan error, len(c.members))
	for _, m := range c.members {
		go func() { errs <- m.start() }()
	}
	var first error
	for range c.members {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// RestartAll starts every stopped member and waits until they are ready.
func (c *Cluster) RestartAll() error { return c.startAll() }

// Leader returns the index of the member that leads the etcd cluster,
// as the running members see it; -1 if none does.
func (c *Cluster) Leader() int {
	for _, m := range c.members {
		e := m.running()
		if e == nil {
			continue
		}
		lead := e.Server.Leader()
		for i, o := range c.members {
			if oe := o.running(); oe != nil && oe.Server.MemberID() == lead {
				return i
			}
		}
	}
	return -1
}

// Followers returns the indexes of the running members that do not lead.
func (c *Cluster) Followers() []int {
	lead := c.Leader()
	var out []int
	for i, m := range c.members {
		if m.running() != nil && i != lead {
			out = append(out, i)
		}
	}
	return out
}

// running returns m's server, or nil while it is stopped.
func (m *member) running() *embed.Etcd {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd
}

// Close stops every member: the followers first, then the leader. A
// leader stopped with its followers still up first hands its leadership
// over, which takes seconds when they are stopping too.
func (c *Cluster) Close() {
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
