package brokerstate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"switchyard/control"
)

// Defaults of EtcdConfig.
const (
	DefaultDialTimeout = 2 * time.Second
	DefaultLeaseTTL    = 3 * time.Second
	DefaultPrefix      = "/switchyard/"
)

// EtcdConfig is how to reach etcd and where in it the brokers' state
// lives. Paths are used as given (the caller resolves them).
type EtcdConfig struct {
	Endpoints []string // client URLs, http:// or https://
	CA        string   // CA bundle that signs the members' certificates; https only
	Cert, Key string   // client certificate and key, both or neither
	Username  string   // etcd user; none if empty
	Password  string
	// Prefix holds every key, "/switchyard/" if empty; it must end in '/'.
	Prefix string
	// Cluster names the Switchyard cluster whose state the prefix holds:
	// a prefix holding another cluster's state is refused.
	Cluster string
	// Name is this broker's node name, its value in the election. A
	// store opened with no Name does not run for leader.
	Name        string
	DialTimeout time.Duration // DefaultDialTimeout if zero
	// LeaseTTL is the leader's lease: a broker that dies unannounced is
	// replaced about this long after. Whole seconds, at least 1s;
	// DefaultLeaseTTL if zero.
	LeaseTTL time.Duration
	Logger   *slog.Logger // slog.Default() if nil
}

// Keys under the prefix.
const (
	keyFormat       = "format"
	keyCluster      = "cluster"
	dirDrains       = "drains/"
	dirLocks        = "locks/"
	dirReservations = "reservations/"
	dirSessions     = "sessions/"
	dirLeader       = "leader/"
)

// Etcd keeps the brokers' State in etcd under a prefix and elects the one
// broker that places. It is a Store and a Leadership.
type Etcd struct {
	cfg    EtcdConfig
	log    *slog.Logger
	client *clientv3.Client
	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	lat     latency
	batch   *sessionBatch
	elect   *election
	closeMu sync.Mutex
	closed  bool
}

var (
	_ Store      = (*Etcd)(nil)
	_ Leadership = (*Etcd)(nil)
)

// OpenEtcd connects to etcd, checks (or, on an empty prefix, writes) the
// format version and cluster name, and, if cfg.Name is set, starts
// running for leader. It fails within the dial timeout, naming the
// endpoint and the cause, when etcd cannot be used.
func OpenEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	tlsConf, err := cfg.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         tlsConf,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: cfg.DialTimeout,
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	e := &Etcd{cfg: cfg, log: cfg.Logger, client: client}
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := e.claim(ctx, tlsConf); err != nil {
		e.cancel()
		client.Close()
		return nil, err
	}
	e.batch = newSessionBatch(e)
	e.wg.Go(e.batch.run)
	if cfg.Name != "" {
		e.elect = newElection(e)
		e.wg.Go(e.elect.run)
	}
	return e, nil
}

func (c EtcdConfig) withDefaults() EtcdConfig {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c EtcdConfig) check() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("no endpoints")
	case !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/"):
		return fmt.Errorf("prefix %q must start and end with '/'", c.Prefix)
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("lease TTL %v: at least 1s", c.LeaseTTL)
	case c.Cluster == "":
		return errors.New("no cluster name")
	case (c.Cert == "") != (c.Key == ""):
		return errors.New("a client certificate needs its key, and a key its certificate")
	}
	return nil
}

// tlsConfig builds the client's TLS settings, nil when no file is set.
func (c EtcdConfig) tlsConfig() (*tls.Config, error) {
	if c.CA == "" && c.Cert == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("read CA: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA %s: no PEM certificate in it", c.CA)
		}
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// key is the full etcd key of name under the prefix.
func (e *Etcd) key(name string) string { return e.cfg.Prefix + name }

// claim checks the prefix's format and cluster, writing both in one
// transaction when the prefix is new.
func (e *Etcd) claim(ctx context.Context, tlsConf *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	defer cancel()
	fails := probeAll(ctx, e.cfg.Endpoints, tlsConf)
	if len(fails) == len(e.cfg.Endpoints) {
		return errors.New(strings.Join(fails, "; "))
	}
	for _, f := range fails {
		e.log.Warn("etcd: endpoint unreachable", "err", f)
	}
	format, _ := json.Marshal(FormatVersion)
	cluster, _ := json.Marshal(e.cfg.Cluster)
	fk, ck := e.key(keyFormat), e.key(keyCluster)
	resp, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(fk), "=", 0)).
		Then(clientv3.OpPut(fk, string(format)), clientv3.OpPut(ck, string(cluster))).
		Else(clientv3.OpGet(fk), clientv3.OpGet(ck)).
		Commit()
	if err != nil {
		if len(fails) > 0 {
			err = fmt.Errorf("%w (and %s)", err, strings.Join(fails, "; "))
		}
		return fmt.Errorf("etcd %s: check prefix %s: %w", strings.Join(e.cfg.Endpoints, ","), e.cfg.Prefix, err)
	}
	if resp.Succeeded {
		e.log.Info("etcd: new prefix claimed", "prefix", e.cfg.Prefix, "cluster", e.cfg.Cluster, "format", FormatVersion)
		return nil
	}
	return e.checkClaim(resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs)
}

// checkClaim refuses a prefix of another format or cluster.
func (e *Etcd) checkClaim(formatKVs, clusterKVs []*mvccpb.KeyValue) error {
	if len(formatKVs) == 0 {
		return fmt.Errorf("etcd prefix %s: format key vanished while checking it", e.cfg.Prefix)
	}
	var f int
	if err := json.Unmarshal(formatKVs[0].Value, &f); err != nil {
		return fmt.Errorf("etcd prefix %s holds format %q, not a version number", e.cfg.Prefix, formatKVs[0].Value)
	}
	if f != FormatVersion {
		return fmt.Errorf("etcd prefix %s holds format %d; this broker knows %d", e.cfg.Prefix, f, FormatVersion)
	}
	var cl string
	if len(clusterKVs) == 0 || json.Unmarshal(clusterKVs[0].Value, &cl) != nil {
		return fmt.Errorf("etcd prefix %s holds format %d but no readable cluster name", e.cfg.Prefix, f)
	}
	if cl != e.cfg.Cluster {
		return fmt.Errorf("etcd prefix %s holds cluster %s's data, not %s's", e.cfg.Prefix, cl, e.cfg.Cluster)
	}
	return nil
}

// Load reads the whole state in one consistent read.
func (e *Etcd) Load(ctx context.Context) (State, error) {
	if err := e.batch.flush(ctx); err != nil {
		return State{}, fmt.Errorf("etcd load: %w", err)
	}
	st := State{Drains: map[string]Drain{}, Locks: map[string]Lock{}, Reservations: map[string]Reservation{}, Sessions: map[string]control.SessionInfo{}}
	resp, err := timed(&e.lat, func() (*clientv3.GetResponse, error) {
		return e.client.Get(ctx, e.cfg.Prefix, clientv3.WithPrefix())
	})
	if err != nil {
		return State{}, fmt.Errorf("etcd load: %w", err)
	}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), e.cfg.Prefix)
		if err := st.decode(name, kv.Value); err != nil {
			return State{}, fmt.Errorf("etcd load %s: %w", kv.Key, err)
		}
	}
	return st, nil
}

// decode puts the value of key name (below the prefix) into st; keys
// that hold no state are skipped.
func (st *State) decode(name string, val []byte) error {
	switch {
	case strings.HasPrefix(name, dirDrains):
		var d Drain
		if err := json.Unmarshal(val, &d); err != nil {
			return err
		}
		st.Drains[d.Server] = d
	case strings.HasPrefix(name, dirLocks):
		var l Lock
		if err := json.Unmarshal(val, &l); err != nil {
			return err
		}
		st.Locks[l.User] = l
	case strings.HasPrefix(name, dirReservations):
		var r Reservation
		if err := json.Unmarshal(val, &r); err != nil {
			return err
		}
		st.Reservations[r.ID] = r
	case strings.HasPrefix(name, dirSessions):
		var s control.SessionInfo
		if err := json.Unmarshal(val, &s); err != nil {
			return err
		}
		st.Sessions[s.ID] = s
	}
	return nil
}

// PutDrain stores d; durable (committed by a quorum) when it returns.
func (e *Etcd) PutDrain(ctx context.Context, d Drain) error {
	return e.put(ctx, "put drain", dirDrains+d.Server, d)
}

// DeleteDrain removes the drain of server; durable when it returns.
func (e *Etcd) DeleteDrain(ctx context.Context, server string) error {
	return e.del(ctx, "delete drain", dirDrains+server)
}

// PutLock stores l; durable (committed by a quorum) when it returns.
func (e *Etcd) PutLock(ctx context.Context, l Lock) error {
	return e.put(ctx, "put lock", dirLocks+l.User, l)
}

// DeleteLock removes the lock of user; durable when it returns.
func (e *Etcd) DeleteLock(ctx context.Context, user string) error {
	return e.del(ctx, "delete lock", dirLocks+user)
}

// PutReservation stores r; durable when it returns.
func (e *Etcd) PutReservation(ctx context.Context, r Reservation) error {
	return e.put(ctx, "put reservation", dirReservations+r.ID, r)
}

// DeleteReservation removes reservation id; durable when it returns.
func (e *Etcd) DeleteReservation(ctx context.Context, id string) error {
	return e.del(ctx, "delete reservation", dirReservations+id)
}

// PutSession queues s for the next batch and returns at once.
func (e *Etcd) PutSession(_ context.Context, s control.SessionInfo) error {
	val, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("etcd put session: %w", err)
	}
	return e.batch.add(s.ID, val)
}

// DeleteSession queues the removal of session id and returns at once.
func (e *Etcd) DeleteSession(_ context.Context, id string) error {
	return e.batch.add(id, nil)
}

func (e *Etcd) put(ctx context.Context, op, name string, v any) error {
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", op, err)
	}
	if _, err := timed(&e.lat, func() (*clientv3.PutResponse, error) {
		return e.client.Put(ctx, e.key(name), string(val))
	}); err != nil {
		return fmt.Errorf("etcd %s %s: %w", op, name, err)
	}
	return nil
}

func (e *Etcd) del(ctx context.Context, op, name string) error {
	if _, err := timed(&e.lat, func() (*clientv3.DeleteResponse, error) {
		return e.client.Delete(ctx, e.key(name))
	}); err != nil {
		return fmt.Errorf("etcd %s %s: %w", op, name, err)
	}
	return nil
}

// Close flushes queued session writes (for at most the dial timeout),
// gives up the leadership (revoking its lease, so that another broker
// leads at once) and releases the client.
func (e *Etcd) Close() error {
	return e.shutdown(true)
}

// shutdown closes e; without resign it leaves the lease to expire and
// flushes nothing, as a killed broker would.
func (e *Etcd) shutdown(resign bool) error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.DialTimeout)
	defer cancel()
	var err error
	if resign {
		err = e.batch.flush(ctx)
	}
	lease := clientv3.NoLease
	if e.elect != nil {
		lease = e.elect.stop()
	}
	e.cancel()
	e.batch.stop()
	e.wg.Wait()
	if resign && lease != clientv3.NoLease {
		if _, rerr := e.client.Revoke(ctx, lease); rerr != nil && !errors.Is(rerr, rpctypes.ErrLeaseNotFound) {
			e.log.Warn("etcd: could not give up the leadership; it passes on when the lease expires", "err", rerr)
		}
	}
	if cerr := e.client.Close(); cerr != nil && err == nil && !errors.Is(cerr, context.Canceled) {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("etcd close: %w", err)
	}
	return nil
}
