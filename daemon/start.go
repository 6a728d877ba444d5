package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"switchyard/audit"
	"switchyard/config"
	"switchyard/control"
	"switchyard/transport"
)

// nodeKind is what the start-up of a daemon knows of its kind of node.
type nodeKind struct {
	binary   string // the binary, as the flag set and reload name it: appd, slave, broker
	nodeHelp string // usage of -node
	defNode  string // default of -node
	table    string // what -node must name, for the error: "a [server.NAME]"
	is       func(cfg *config.Config, node string) bool
}

var (
	appdKind = nodeKind{binary: "appd", nodeHelp: "this server's `name` in the config (required)",
		table: "a [server.NAME]", is: func(cfg *config.Config, n string) bool { _, ok := cfg.Servers[n]; return ok }}
	slaveKind = nodeKind{binary: "slave", nodeHelp: "this gateway's `name` in the config (required)",
		table: "a [gateway.NAME]", is: func(cfg *config.Config, n string) bool { _, ok := cfg.Gateways[n]; return ok }}
	brokerKind = nodeKind{binary: "broker", nodeHelp: "this broker's node `name`: broker, or a [brokers.NAME]",
		defNode: config.DefaultBroker, table: "a broker ([broker] or [brokers.NAME])", is: (*config.Config).IsBroker}
)

// commonCommand returns the subcommand every daemon binary has (check,
// reload) that args name, or nil.
func commonCommand(k nodeKind, args []string) func(context.Context, Env) error {
	switch {
	case len(args) > 0 && args[0] == "check":
		return func(_ context.Context, env Env) error { return Check(args[1:], env) }
	case len(args) > 0 && args[0] == "reload":
		return func(ctx context.Context, env Env) error {
			return reloadCommand(ctx, k.binary, k.defNode, args[1:], env)
		}
	}
	return nil
}

// daemonRun is one run of a daemon, from its flags to its return: what
// Appd, Slave and Broker share. startDaemon reads the flags and the
// config and logs the start; the daemon then wires its own parts, starts
// its loops with loop, and serves with serving; close, deferred, stops
// the loops, closes what the run opened and logs the stop.
type daemonRun struct {
	env  Env
	c    common
	node string
	cfg  *config.Config // as loaded at start
	log  *slog.Logger

	// ctx is the loops' context: it ends when serving returns, or at
	// close, and with the daemon's own.
	ctx     context.Context
	cancel  context.CancelFunc
	loops   sync.WaitGroup
	closers []func() // run by close, last added first
	stopped func()   // logs "stopped"

	// probe reads the node's state under the locks its work takes (a
	// gateway's or appd's counters, the broker's readiness); the
	// watchdog pings systemd only while it returns in time. Nil
	// probes nothing.
	probe func()
}

// startDaemon parses a daemon's flags (-node and the common ones), loads
// the config, checks that -node names a node of kind k in it, and logs
// the start with the node's logger.
func startDaemon(ctx context.Context, k nodeKind, args []string, env Env) (*daemonRun, error) {
	r := &daemonRun{env: env}
	fs := flag.NewFlagSet(k.binary, flag.ContinueOnError)
	r.c.register(fs)
	node := fs.String("node", k.defNode, k.nodeHelp)
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	cfg, err := r.c.load()
	if err != nil {
		return nil, err
	}
	if !k.is(cfg, *node) {
		return nil, fmt.Errorf("%w: -node %q is not %s in %s", ErrUsage, *node, k.table, cfg.Path)
	}
	log, err := r.c.logger(env.stderr(), *node)
	if err != nil {
		return nil, err
	}
	r.node, r.cfg, r.log = *node, cfg, log
	r.stopped = lifecycle(ctx, log, cfg)
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r, nil
}

// close stops the loops and waits for them, runs the closers, last added
// first, and logs the stop.
func (r *daemonRun) close() {
	r.cancel()
	r.loops.Wait()
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.stopped()
}

// onClose has close run f, after the loops have returned.
func (r *daemonRun) onClose(f func()) { r.closers = append(r.closers, f) }

// loop runs f in the background until r.ctx ends; close waits for it.
func (r *daemonRun) loop(f func(ctx context.Context)) {
	r.loops.Add(1)
	go func() {
		defer r.loops.Done()
		f(r.ctx)
	}()
}

// waitLoops waits for the loops, once serving has returned.
func (r *daemonRun) waitLoops() { r.loops.Wait() }

// nodeKey loads the node's own key, creating it on first start.
func (r *daemonRun) nodeKey() (ssh.Signer, error) {
	return ensureKey(r.log, r.cfg.NodeSignerPath(r.node))
}

// identity is the node's name and key, for dialing other nodes.
func (r *daemonRun) identity(signer ssh.Signer) transport.Identity {
	return transport.Identity{Name: r.node, Signer: signer}
}

// logWarnings logs what check would warn of in the config.
func (r *daemonRun) logWarnings() {
	for _, w := range r.cfg.Warnings() {
		r.log.Warn("config", "warning", w.String())
	}
}

// audit opens the node's audit trail (see openAudit), closed at close.
func (r *daemonRun) audit() (*audit.Log, auditReader) {
	l, read := openAudit(r.cfg, r.node, r.env, r.log)
	r.onClose(func() { l.Close() })
	return l, read
}

// listen opens addr with open (env.listen, or a gateway's inherited
// listener), for what ("appd listen"). The listener is closed at close,
// if its server has not closed it.
func (r *daemonRun) listen(what, addr string, open func(addr string) (net.Listener, error)) (net.Listener, error) {
	ln, err := open(addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, addr, err)
	}
	r.onClose(func() { ln.Close() })
	return ln, nil
}

// listenIf is listen for an optional address: "" opens nothing and
// returns nil.
func (r *daemonRun) listenIf(what, addr string, open func(addr string) (net.Listener, error)) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	return r.listen(what, addr, open)
}

// nodeAdmin serves a gateway's or appd's admin listener, if ln is not nil
// (see serveNodeAdmin), until close.
func (r *daemonRun) nodeAdmin(ln net.Listener, addr string, c prometheus.Collector, ready func() error) *adminServers {
	admin := serveNodeAdmin(ln, addr, c, ready)
	r.onClose(admin.close)
	return admin
}

// reloads reloads the config on each SIGHUP (see reloadLoop), applying it
// with apply, until the loops stop.
func (r *daemonRun) reloads(n *nodeConfig, apply func(*config.Config) error) {
	r.loop(func(ctx context.Context) { reloadLoop(ctx, r.env, &r.c, n, apply) })
}

// brokers keeps the links to the brokers up and, every interval until
// reports ends, sends report over each link that is up. reports is r.ctx,
// or a context the daemon ends sooner.
func (r *daemonRun) brokers(links *transport.Brokers, reports context.Context, interval time.Duration,
	report func(context.Context, *control.Peer)) {
	r.loop(func(ctx context.Context) { links.Run(ctx) })
	r.loop(func(context.Context) {
		every(reports, interval, func() {
			links.Each(reports, func(_ string, p *control.Peer) { report(reports, p) })
		})
	})
}

// nodeServer is a node's internal SSH server, admitting the nodes whose
// keys map to their names in keys (read at each handshake).
func nodeServer(signer ssh.Signer, log *slog.Logger, handler transport.ConnHandler, keys func() map[string]string) *transport.Server {
	return &transport.Server{Signer: signer, Logger: log, Handler: handler, Authorize: authorizer(keys),
		Peers: func() int { return len(keys()) }}
}

// serving says that the daemon serves (the log line msg with attrs,
// env.Ready, and notify: systemd's READY=1 if nil), pings systemd's
// watchdog while r.probe answers, and runs serve until it returns; then it ends the loops'
// context. Call waitLoops, or return (close), to wait for them.
func (r *daemonRun) serving(ctx context.Context, msg string, attrs []any, notify func(), serve func(context.Context) error) error {
	r.loop(func(ctx context.Context) { watchdog(ctx, r.log, responsive(r.probe)) })
	r.log.Info(msg, attrs...)
	r.env.ready()
	if notify == nil {
		notify = func() { notifyReady(r.log) }
	}
	notify()
	err := serve(ctx)
	r.cancel()
	return err
}

// untilClosed is err, or nil when it only says the server was closed
// (closed: its package's ErrServerClosed).
func untilClosed(err, closed error) error {
	if errors.Is(err, closed) {
		return nil
	}
	return err
}
