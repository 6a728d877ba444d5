package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/broker"
	"switchyard/brokerstate"
	"switchyard/config"
	"switchyard/selection"
	"switchyard/transport"
)

// Broker runs the broker binary: `broker [flags]`, `broker check`,
// `broker status`.
func Broker(ctx context.Context, args []string, env Env) error {
	if run := commonCommand(brokerKind, args); run != nil {
		return run(ctx, env)
	}
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return brokerStatus(ctx, args[1:], env)
		case "drain", "undrain":
			return brokerDrain(ctx, args[0], args[1:], env)
		case "replay", "watch": // record_cli.go
			return brokerRecordCLI(ctx, args[0], args[1:], env)
		}
		if run := controlCommand(args[0]); run != nil {
			return run(ctx, args[1:], env)
		}
	}
	r, err := startDaemon(ctx, brokerKind, args, env)
	if err != nil {
		return err
	}
	defer r.close()
	node, log, cfg := r.node, r.log, r.cfg
	signer, err := r.nodeKey()
	if err != nil {
		return err
	}
	store, lead, err := openBrokerState(ctx, cfg, node, log)
	if err != nil {
		return err
	}
	auditLog, readAudit := r.audit()
	r.onClose(func() { // once Keep has written what was queued
		if err := store.Close(); err != nil {
			log.Error("broker state not closed cleanly", "err", err.Error())
		}
	})
	nc := newNodeConfig(kindBroker, node, cfg, log)
	b := &broker.Broker{Logger: log, ReportInterval: cfg.Broker.ReportInterval, Store: store, Leadership: lead, Name: node,
		Collectors: []prometheus.Collector{nodeCollector{conf: nc}}, Audit: auditLog, ReadAudit: readAudit}
	var keys atomic.Pointer[map[string]string]
	apply := func(cfg *config.Config) error {
		b.SetCluster(clusterOf(cfg))
		k := nodeKeys(cfg, append(gatewayNames(cfg), serverNames(cfg)...), log)
		keys.Store(&k)
		return nil
	}
	apply(cfg)
	b.SetConfigState(cfg.Hash, nil)
	// Before anything is served: drains hold from the first placement,
	// and a redirected client finds its reservation.
	if err := b.Restore(r.ctx); err != nil {
		return err
	}
	r.loop(b.Keep)
	ln, err := r.listen("broker listen", cfg.BrokerListen(node), env.listen)
	if err != nil {
		return err
	}
	admin, err := serveAdmin(cfg, node, env, b)
	if err != nil {
		return err
	}
	r.onClose(admin.close)
	srv := nodeServer(signer, log, transport.ControlLinks(b, log), func() map[string]string { return *keys.Load() })
	nc.changed = func(st reloadState) { b.SetConfigState(st.Hash, st.RestartNeeded) }
	r.reloads(nc, apply)
	r.loop(b.WatchHealth)
	r.probe = func() { b.Ready() }
	err = r.serving(ctx, "broker serving", []any{"listen", ln.Addr().String(), "admin", admin.addrs}, nil,
		func(ctx context.Context) error {
			return serveUntil(ctx, func() error { return srv.Serve(ln) }, func() { srv.Close() })
		})
	return untilClosed(err, transport.ErrServerClosed)
}

// openBrokerState opens the store of what the broker must not forget,
// and says who leads. With [etcd], both come from etcd, where this broker
// campaigns as node; nothing then falls back to the file, and an etcd
// that cannot be reached, or whose prefix holds another cluster's or
// format's state, stops the broker. Without, a lone broker keeps
// brokerstate.File in state_dir and always leads.
func openBrokerState(ctx context.Context, cfg *config.Config, node string, log *slog.Logger) (brokerstate.Store, brokerstate.Leadership, error) {
	if !cfg.Etcd.Enabled() {
		store, err := brokerstate.OpenFile(cfg.Resolve(brokerstate.FileName), log)
		return store, brokerstate.Solo{Name: node, Since: time.Now()}, err
	}
	e := cfg.Etcd
	password, err := cfg.EtcdPassword()
	if err != nil {
		return nil, nil, err
	}
	resolve := func(p string) string {
		if p == "" {
			return ""
		}
		return cfg.Resolve(p)
	}
	store, err := brokerstate.OpenEtcd(ctx, brokerstate.EtcdConfig{Endpoints: e.Endpoints,
		CA: resolve(e.CA), Cert: resolve(e.Cert), Key: resolve(e.Key), Username: e.Username, Password: password,
		Prefix: e.Prefix, Cluster: e.Cluster, Name: node, DialTimeout: e.DialTimeout, LeaseTTL: e.LeaseTTL, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return store, store, nil
}

// clusterOf copies what the broker needs out of the config.
func clusterOf(cfg *config.Config) broker.Cluster {
	c := broker.Cluster{
		Servers:  map[string]broker.ServerSpec{},
		Gateways: map[string]broker.GatewaySpec{},
		Apps:     map[string]bool{},
		Allowed:  cfg.Allowed,
		IsUser:   func(name string) bool { _, ok := cfg.Users[name]; return ok },
	}
	for name, s := range cfg.Servers {
		c.Servers[name] = broker.ServerSpec{Addr: s.Listen, Region: s.Region, Apps: s.Apps,
			MaxSessions: s.MaxSessions, Draining: s.Draining}
	}
	c.Policy, c.RegionOf, c.Near = policyOf(cfg.Policy), cfg.RegionOf, map[string][]string{}
	for name, r := range cfg.Regions {
		c.Near[name] = r.Near
	}
	for name, g := range cfg.Gateways {
		spec := broker.GatewaySpec{Capacity: g.Capacity, Region: g.Region, Redirect: g.Redirect,
			Address: g.Address, Internal: g.Internal}
		if len(g.Reach) > 0 { // empty: every server
			spec.Reach = g.Reach
		}
		c.Gateways[name] = spec
	}
	c.Reservation = cfg.Broker.Reservation
	c.Descriptions = map[string]string{}
	for name, app := range cfg.Apps {
		c.Apps[name] = true
		c.Descriptions[name] = app.Description
	}
	return c
}

type (
	brokerServer  = broker.ServerStatus
	brokerGateway = broker.GatewayStatus
)

// policyOf turns the config's [policy] into a selection.Policy; a weight
// left at 0 takes its default.
func policyOf(p config.Policy) selection.Policy {
	aff, err := selection.ParseAffinity(p.Affinity)
	if err != nil {
		aff = selection.DefaultPolicy.Affinity // config validation already refused it
	}
	w := selection.DefaultWeights
	for _, f := range []struct {
		dst *float64
		v   float64
	}{
		{&w.Locality, p.LocalityWeight}, {&w.Affinity, p.AffinityWeight}, {&w.Load, p.LoadWeight},
	} {
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	return selection.Policy{Affinity: aff, Weights: w, SpillAt: p.SpillAt}
}
