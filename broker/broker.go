package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/audit"
	"switchyard/brokerstate"
	"switchyard/control"
	"switchyard/selection"
)

// ServerSpec is one app server as configured.
type ServerSpec struct {
	Addr        string   // internal address gateways dial
	Region      string   // "" if not configured
	Apps        []string // apps offered
	MaxSessions int
	Draining    bool
}

// GatewaySpec is one gateway as configured.
type GatewaySpec struct {
	Capacity int      // max sessions; 0 means no limit
	Region   string   // where it runs; "" if not configured
	Reach    []string // servers it reaches; nil means every server
	Redirect string   // RedirectHint ("" too) or RedirectRelay: what it does with a session another gateway carries
	Address  string   // host:port users are told when redirected here
	Internal string   // its internal listener other gateways relay through; "" for none
}

// Values of GatewaySpec.Redirect.
const (
	RedirectHint  = "hint"  // the gateway tells its client where to go
	RedirectRelay = "relay" // the gateway carries the session through the chosen one
)

// reaches reports whether the gateway reaches server.
func (g GatewaySpec) reaches(server string) bool {
	return g.Reach == nil || slices.Contains(g.Reach, server)
}

// relays reports whether the gateway relays rather than hints.
func (g GatewaySpec) relays() bool { return g.Redirect == RedirectRelay }

// Cluster is the configured shape of the cluster. The wiring builds it from
// the config file and replaces it on reload.
type Cluster struct {
	Servers  map[string]ServerSpec
	Gateways map[string]GatewaySpec
	Apps     map[string]bool             // every configured app
	Allowed  func(user, app string) bool // may user run app
	IsUser   func(name string) bool      // name is a configured user (broker lock); any name if nil

	Descriptions map[string]string // one line per app, shown in the picker; may be nil

	Policy   selection.Policy           // placement policy; the zero Policy if unset
	RegionOf func(ip netip.Addr) string // client address → region, "" if unknown; may be nil
	Near     map[string][]string        // region → regions near it, best first

	// Reservation is how long an app pre-launched for a redirected client
	// waits for it; control.DefaultReservation if zero.
	Reservation time.Duration
}

// Broker places sessions and tracks the cluster. Set Cluster with
// SetCluster before serving; the other fields are optional.
type Broker struct {
	Logger         *slog.Logger     // slog.Default() if nil
	ReportInterval time.Duration    // control.DefaultReportInterval if zero; a node silent for 3 intervals is unhealthy
	Now            func() time.Time // time.Now if nil

	// Store keeps what a restart must not forget (drains, reservations,
	// sessions); nil keeps nothing. Set it before serving and call
	// Restore, then run Keep.
	Store brokerstate.Store
	// Leadership says whether this broker may place; nil means it always
	// may (brokerstate.Solo).
	Leadership brokerstate.Leadership
	// Name is this broker's node name, "broker" if empty.
	Name string
	// Audit, if set, receives the broker's audit events: placements and
	// admin actions.
	Audit *audit.Log
	// ReadAudit, if set, reads this broker's own audit events back for
	// GatherAudit.
	ReadAudit func(control.AuditQuery) (control.AuditEvents, error)
	// Collectors are further metrics its /metrics serves (the daemon's
	// build, config and reload metrics); set before serving.
	Collectors []prometheus.Collector

	leaderChanges atomic.Uint64 // leader changes Keep saw (HAStatus)

	drainMu sync.Mutex // serialises drains, so the store and memory agree

	mu       sync.Mutex    // guards everything below
	writes   storeWrites   // changes queued for Store (keep.go)
	wake     chan struct{} // Keep's signal that writes are queued
	cluster  Cluster
	servers  map[string]*serverState // every configured server, and any that reported
	gateways map[string]*gatewayState
	seq      uint64
	recent   []Decision // last decisions, newest last
	metrics  *metrics
	reserved []*reservation              // pre-launched apps and redirects awaiting their client, oldest first
	locks    map[string]brokerstate.Lock // admins' user locks, by user (locks.go)

	// configHash and restartNeeded describe the config this broker runs
	// (SetConfigState).
	configHash    string
	restartNeeded []string

	// restoredTerm is the leadership term (its since) in which Restore
	// last loaded the kept state, if restored: a new leader places only
	// once it has, so that it knows the drains and reservations its
	// predecessor kept (keep.go: ready).
	restoredTerm time.Time
	restored     bool

	// Sessions by id, and indexed by server and by user; written only
	// through putSession and dropSession (index.go). byServer holds every
	// configured server and any other with sessions or pending placements.
	sessions map[string]*sessionState
	byServer map[string]*serverSessions
	byUser   map[string]map[string]*sessionState // by user, then session id
	// By user: how many of their sessions run each app on each
	// configured server, by its row in b.tab, so that a placement reads
	// the user's servers, not their sessions, and looks up no name.
	userMarks map[string]*selection.Marks
	countedAt time.Time // see countAt

	// The configured servers sorted by name (rebuildTable), their names,
	// and the candidates slice reused by every placement that scans them.
	table       []serverSlot
	serverNames []string
	cands       []selection.Server
	existing    []selection.Placed // placed's slice, reused likewise

	// The same servers, in the same order, as the policy sees them, kept
	// in step by every event that changes one (table.go), with what keeps
	// them so.
	tab        *selection.Table
	freshAt    time.Time          // b.tab's health is as of this time
	reports    queue[reportAt]    // server reports not yet three intervals old at freshAt, oldest first
	placements queue[placementAt] // placements not yet pendingTTL old at countedAt, oldest first
	carried    map[uint64]bool    // by set of gateways (carriers): whether they carry to every server

	// callAppd calls a server's appd over its control link; tests replace
	// it. Never called with mu held.
	callAppd func(ctx context.Context, server, method string, req, resp any) error
}

type serverState struct {
	row        int           // index in b.table and b.tab; -1 when not configured
	links      int           // live control links from this server
	peer       *control.Peer // the latest of them, for calls to appd; nil when none
	lastReport time.Time
	report     control.ServerReport
	cpuSince   float64   // CPU per CPU expected of the placements made since the report
	drained    bool      // by an admin command
	drainedBy  string    // who drained it: a Unix user, "token"
	drainedAt  time.Time // when
	// lostAt is when its last control link closed, lostSessions how many
	// sessions its last report listed then (see restarting).
	lostAt       time.Time
	lostSessions int
}

type gatewayState struct {
	peer       *control.Peer // its latest link, for calls to the gateway (audit.read); nil when none
	links      int
	lastReport time.Time
	report     control.GatewayReport
}

type sessionState struct {
	info control.SessionInfo
	seen time.Time // last time a gateway or the server vouched for it
	// restored: read from the Store and not vouched for since. The
	// server's next report, sent on a link made after the restore,
	// lists every session it runs: one it omits is gone.
	restored bool
	// gatewayDetached is when the carrying gateway said the session
	// detached; zero otherwise. A server report made before then may
	// still say attached (see serverReport).
	gatewayDetached time.Time
	// since is when the broker first heard of the session on its server:
	// one its server reported before the gateway's session.started (a
	// report can come first) is newer than the placement made for it.
	since time.Time
}

func (b *Broker) logger() *slog.Logger {
	if b.Logger == nil {
		return slog.Default()
	}
	return b.Logger
}

func (b *Broker) now() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}

func (b *Broker) interval() time.Duration {
	if b.ReportInterval <= 0 {
		return control.DefaultReportInterval
	}
	return b.ReportInterval
}

// SetCluster installs a (new) configured cluster. Running sessions and
// learned state are kept.
func (b *Broker) SetCluster(c Cluster) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cluster = c
	b.init()
	b.rebuildTable()
}

// init makes the zero Broker usable; callers hold b.mu.
func (b *Broker) init() {
	if b.servers == nil {
		b.servers = map[string]*serverState{}
		b.gateways = map[string]*gatewayState{}
		b.sessions = map[string]*sessionState{}
		b.byServer = map[string]*serverSessions{}
		b.byUser = map[string]map[string]*sessionState{}
		b.userMarks = map[string]*selection.Marks{}
		b.metrics = newMetrics(b)
		b.tab = selection.NewTable(nil)
		b.carried = map[uint64]bool{}
		b.wake = make(chan struct{}, 1)
		b.locks = map[string]brokerstate.Lock{}
	}
}

func (b *Broker) metricsHandler() http.Handler {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	return b.metrics.handler()
}

// ServeLink runs node's control link p until it ends: node's reports and
// calls reach the broker through it, and the broker's calls to node
// (prelaunch, kill) go through it. With LinkHandler it serves
// transport.ControlLinks.
func (b *Broker) ServeLink(ctx context.Context, node string, p *control.Peer) {
	b.linkUp(node, +1)
	b.setPeer(node, p, nil)
	b.logger().Info("node link up", "peer", node)
	err := p.Serve(ctx)
	b.setPeer(node, nil, p)
	b.linkUp(node, -1)
	b.logger().Info("node link down", "peer", node, "err", err)
}

// setPeer records p as a node's latest link, or forgets old when it is
// the one recorded.
func (b *Broker) setPeer(node string, p, old *control.Peer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	var cur **control.Peer
	if _, ok := b.cluster.Servers[node]; ok {
		cur = &b.server(node).peer
	} else if _, ok := b.cluster.Gateways[node]; ok {
		cur = &b.gateway(node).peer
	} else {
		return
	}
	if p != nil {
		*cur = p
	} else if *cur == old {
		*cur = nil
	}
}

func (b *Broker) linkUp(node string, delta int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	if _, ok := b.cluster.Servers[node]; ok {
		st := b.server(node)
		st.links += delta
		if st.links == 0 {
			linkLost(st, b.now())
			st.lastReport = time.Time{} // a dropped link is down at once
		}
		b.setHealth(st, b.now())
		return
	}
	b.gateway(node).links += delta
}

func (b *Broker) server(name string) *serverState {
	st := b.servers[name]
	if st == nil {
		st = &serverState{row: -1}
		b.servers[name] = st
	}
	return st
}

func (b *Broker) gateway(name string) *gatewayState {
	st := b.gateways[name]
	if st == nil {
		st = &gatewayState{}
		b.gateways[name] = st
	}
	return st
}

// LinkHandler returns what serves node's calls on its control link, by
// its configured kind; an unknown node may not link.
func (b *Broker) LinkHandler(node string) (control.Handler, error) {
	if h := b.handlerFor(node); h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("node %q is neither a gateway nor a server", node)
}

// handlerFor returns the control handler for a node, by its configured
// kind, or nil for an unknown node.
func (b *Broker) handlerFor(node string) control.Handler {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.cluster.Servers[node]; ok {
		return func(ctx context.Context, method string, body json.RawMessage) (any, error) {
			return b.serverCall(node, method, body)
		}
	}
	if _, ok := b.cluster.Gateways[node]; ok {
		return func(ctx context.Context, method string, body json.RawMessage) (any, error) {
			return b.gatewayCall(ctx, node, method, body)
		}
	}
	return nil
}

func (b *Broker) serverCall(node, method string, body json.RawMessage) (any, error) {
	if method != control.MethodServerReport {
		return nil, control.NewError(control.CodeInternal, "servers may not call "+method)
	}
	var r control.ServerReport
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode report from %s: %w", node, err)
	}
	b.serverReport(node, r)
	return nil, nil
}

func (b *Broker) gatewayCall(ctx context.Context, node, method string, body json.RawMessage) (any, error) {
	switch method {
	case control.MethodPlace:
		var req control.PlaceRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("decode place from %s: %w", node, err)
		}
		req.Gateway = node // a gateway speaks only for itself
		return b.Place(ctx, req)
	case control.MethodSessionStarted:
		var s control.SessionInfo
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("decode session from %s: %w", node, err)
		}
		s.Gateway = node
		b.sessionStarted(s)
	case control.MethodSessionEnded:
		var s control.SessionEnded
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("decode session end from %s: %w", node, err)
		}
		b.sessionEnded(s)
	case control.MethodSessionDetached:
		var s control.SessionInfo
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("decode session detach from %s: %w", node, err)
		}
		b.sessionDetached(node, s)
	case control.MethodSessionsList, control.MethodAppsList:
		var req control.UserRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("decode %s from %s: %w", method, node, err)
		}
		if req.User == "" {
			return nil, control.NewError(control.CodeInternal, method+" needs a user")
		}
		if err := b.lockedUser(req.User); err != nil {
			b.Audit.Emit("refused", "", req.User, "gateway", node, "call", method, "reason", err.Error())
			return nil, err
		}
		if method == control.MethodSessionsList {
			return b.UserSessions(req.User, node), nil
		}
		return b.UserApps(req.User), nil
	case control.MethodGatewayReport:
		var r control.GatewayReport
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("decode report from %s: %w", node, err)
		}
		b.gatewayReport(node, r)
	default:
		return nil, control.NewError(control.CodeInternal, "gateways may not call "+method)
	}
	return nil, nil
}
