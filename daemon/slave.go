package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/brokerlink"
	"switchyard/config"
	"switchyard/control"
	"switchyard/sshgate"
	"switchyard/transport"
	"switchyard/tui"
	"switchyard/userdir"
)

// The gateway finds these through its Directory and Placer.
var (
	_ sshgate.CertAuthority = (*userdir.Directory)(nil)
	_ sshgate.Revocations   = (*userdir.Directory)(nil)
	_ sshgate.Passwords     = (*userdir.Directory)(nil)
	_ sshgate.AppLimits     = (*userdir.Directory)(nil)
	_ sshgate.Placer        = brokerlink.Placer{}
)

// Slave runs the gateway binary: `slave -node NAME [flags]`, `slave check`.
func Slave(ctx context.Context, args []string, env Env) error {
	if len(args) > 0 && args[0] == "check" {
		return Check(args[1:], env)
	}
	if len(args) > 0 && args[0] == "reload" {
		return reloadCommand(ctx, "slave", "", args[1:], env)
	}
	var c common
	fs := flag.NewFlagSet("slave", flag.ContinueOnError)
	c.register(fs)
	node := fs.String("node", "", "this gateway's `name` in the config (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	spec, ok := cfg.Gateways[*node]
	if !ok {
		return fmt.Errorf("%w: -node %q is not a [gateway.NAME] in %s", ErrUsage, *node, cfg.Path)
	}
	log, err := c.logger(env.stderr(), *node)
	if err != nil {
		return err
	}
	defer lifecycle(ctx, log, cfg)()
	auditLog, readAudit := openAudit(cfg, *node, env, log)
	defer auditLog.Close()
	g, err := newGatewayNode(*node, cfg, log, readAudit)
	if err != nil {
		return err
	}
	hostKey, err := ensureKey(log, cfg.Resolve(spec.HostKey))
	if err != nil {
		return err
	}
	h, err := inherit()
	if err != nil {
		return err
	}
	ln, err := h.listen(env, "listen", spec.Listen)
	if err != nil {
		return fmt.Errorf("gateway listen %s: %w", spec.Listen, err)
	}
	srv := &sshgate.Server{Name: *node, HostSigners: []ssh.Signer{hostKey}, Directory: g.dir(),
		Placer: brokerlink.Placer{Brokers: g.links}, Opener: g.pool, Logger: log, Capacity: spec.Capacity, NoApp: picker,
		AliveInterval: spec.AliveInterval, AliveCountMax: spec.AliveCountMax, PasswordAuth: spec.PasswordAuth,
		HandshakeTimeout: spec.HandshakeTimeout, MaxAuthTries: spec.MaxAuthTries,
		AuthFailLimit: spec.AuthFailLimit, AuthFailWindow: spec.AuthFailWindow,
		MaxConnsPerSource: spec.MaxConnsPerSource, MaxSessionsPerUser: spec.MaxSessionsPerUser,
		MaxChannelsPerConn: spec.MaxChannelsPerConn, Audit: auditLog, RideThrough: spec.RideThrough}
	g.srv = srv
	var internalLn net.Listener
	if spec.Internal != "" {
		if internalLn, err = h.listen(env, "internal", spec.Internal); err != nil {
			ln.Close()
			return fmt.Errorf("gateway internal listen %s: %w", spec.Internal, err)
		}
	}
	var adminLn net.Listener
	if spec.Admin != "" {
		if adminLn, err = h.listen(env, "admin", spec.Admin); err != nil {
			ln.Close()
			if internalLn != nil {
				internalLn.Close()
			}
			return fmt.Errorf("gateway admin listen %s: %w", spec.Admin, err)
		}
	}
	admin := serveNodeAdmin(adminLn, spec.Admin, g.collector(), readyWhenReporting(g.stats, g.interval))
	defer admin.close()
	internal := g.serveInternal(internalLn)
	runCtx, cancel := context.WithCancel(ctx)
	reportCtx, stopReports := context.WithCancel(runCtx)
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); watchdog(runCtx, log, func() bool { return true }) }()
	go func() { defer wg.Done(); g.links.Run(runCtx) }()
	go func() { defer wg.Done(); every(reportCtx, g.interval(), func() { g.reportVia(reportCtx) }) }()
	go func() { defer wg.Done(); reloadLoop(runCtx, env, &c, g.conf, g.apply) }()
	log.Info("gateway serving", "listen", ln.Addr().String(), "admin", admin.addrs, "inherited", h != nil, "pid", os.Getpid())
	env.ready()
	g.announce(h)
	run := &gatewayRun{g: g, env: env, args: args, ln: ln, internalLn: internalLn, adminLn: adminLn, admin: admin,
		stopReports: stopReports}
	err = run.serve(ctx)
	if internal != nil {
		internal.Close()
	}
	cancel()
	wg.Wait()
	g.pool.Close()
	if errors.Is(err, sshgate.ErrServerClosed) {
		return nil
	}
	return err
}

// announce tells the predecessor, if any, and systemd (Type=notify) that
// this process serves; a successor becomes the unit's main process.
func (g *gatewayNode) announce(h *handover) {
	if err := h.serving(); err != nil {
		g.log.Warn("upgrade handshake", "err", err)
	}
	state := "READY=1"
	if h != nil {
		state = fmt.Sprintf("MAINPID=%d\nREADY=1", os.Getpid())
	}
	if err := sdNotify(state); err != nil {
		g.log.Warn("systemd notify", "err", err)
	}
}

// gatewayNode is one running gateway: its links to the broker and servers
// and its current config.
type gatewayNode struct {
	name   string
	log    *slog.Logger
	signer ssh.Signer
	cfg    atomic.Pointer[config.Config]
	d      atomic.Pointer[userdir.Directory]
	peers  atomic.Pointer[map[string]string] // other gateways' node keys → names, for the internal listener
	links  *transport.Brokers
	pool   *transport.Pool
	srv    *sshgate.Server
	conf   *nodeConfig
	stats  *nodeStats
}

func newGatewayNode(name string, cfg *config.Config, log *slog.Logger, readAudit auditReader) (*gatewayNode, error) {
	signer, err := ensureKey(log, cfg.NodeSignerPath(name))
	if err != nil {
		return nil, err
	}
	g := &gatewayNode{name: name, log: log, signer: signer, stats: newNodeStats()}
	if err := g.load(cfg); err != nil {
		return nil, err
	}
	g.conf = newNodeConfig(kindGateway, name, cfg, log)
	id := transport.Identity{Name: name, Signer: signer}
	g.pool = &transport.Pool{Identity: id, Keys: g.nodeKey}
	g.links = brokerlink.Links(&g.cfg, id, log, withAuditRead(readAudit, nil), g.report) // brokers read the audit trail
	return g, nil
}

// load builds the user directory from cfg and makes cfg current.
func (g *gatewayNode) load(cfg *config.Config) error {
	d, err := userdir.New(cfg)
	if err != nil {
		return err
	}
	var others []string
	for _, n := range gatewayNames(cfg) {
		if n != g.name {
			others = append(others, n)
		}
	}
	peers := nodeKeys(cfg, others, g.log)
	g.d.Store(d)
	g.peers.Store(&peers)
	g.cfg.Store(cfg)
	return nil
}

// serveInternal serves the gateway's internal listener, if there is one:
// other gateways, and only they, relay sessions through it to the servers
// this gateway reaches. Its address is read at start only; the admitted
// keys and the servers follow reloads.
func (g *gatewayNode) serveInternal(ln net.Listener) *transport.Server {
	if ln == nil {
		return nil
	}
	// A relayed session takes a capacity slot here like one of our own:
	// it is reported, and the broker sends no more than capacity allows.
	relay := &transport.Relay{Name: g.name, Open: g.pool.OpenChannel, Resolve: g.serverAddr, Logger: g.log,
		Admit: g.srv.Acquire, Done: g.srv.Release}
	srv := &transport.Server{Signer: g.signer, Logger: g.log, Handler: relay.HandleConn,
		Authorize: authorizer(func() map[string]string { return *g.peers.Load() }),
		Peers:     func() int { return len(*g.peers.Load()) }}
	go srv.Serve(ln)
	g.log.Info("gateway relaying for other gateways", "internal", ln.Addr().String())
	return srv
}

// serverAddr returns the address of a server this gateway reaches.
func (g *gatewayNode) serverAddr(server string) (string, bool) {
	cfg := g.cfg.Load()
	s, ok := cfg.Servers[server]
	if !ok || !cfg.Gateways[g.name].Reaches(server) {
		return "", false
	}
	return s.Listen, true
}

// apply installs a reloaded config; one whose users' keys cannot be read
// is refused, and the running one kept.
func (g *gatewayNode) apply(cfg *config.Config) error {
	if err := g.load(cfg); err != nil {
		return err
	}
	g.srv.SetDirectory(g.dir())
	return nil
}

func (g *gatewayNode) dir() sshgate.Directory { return g.d.Load() }

func (g *gatewayNode) nodeKey(name string) (ssh.PublicKey, error) { return g.cfg.Load().NodeKey(name) }

func (g *gatewayNode) interval() time.Duration { return g.cfg.Load().Broker.ReportInterval }

// picker is the gateway's sshgate.NoAppFunc: the tui picker on the
// session's terminal, offering the user's detached sessions and apps.
func picker(ctx context.Context, t sshgate.Terminal, m sshgate.Menu) (sshgate.Choice, error) {
	var items tui.Items
	for _, s := range m.Sessions {
		items.Sessions = append(items.Sessions, tui.Session{ID: s.ID, App: s.App, Server: s.Server, Started: s.Started, Detached: s.Detached})
	}
	for _, a := range m.Apps {
		items.Apps = append(items.Apps, tui.App{Name: a.Name, Description: a.Description, Available: a.Available, Hint: a.Hint})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sizes := make(chan tui.Size, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case p := <-t.Resize:
				select {
				case sizes <- tui.Size{Width: int(p.Cols), Height: int(p.Rows)}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	c, err := tui.Run(ctx, items, tui.Options{In: t.In, Out: t.Out, Term: t.Pty.Term,
		Width: int(t.Pty.Cols), Height: int(t.Pty.Rows), Resize: sizes, User: t.User})
	return sshgate.Choice{App: c.App, Resume: c.SessionID}, err
}

// reportVia reports to every broker whose link is up.
func (g *gatewayNode) reportVia(ctx context.Context) {
	g.links.Each(ctx, func(_ string, p *control.Peer) { g.report(ctx, p) })
}

func (g *gatewayNode) report(ctx context.Context, p *control.Peer) {
	spec := g.cfg.Load().Gateways[g.name]
	st := g.conf.state()
	r := control.GatewayReport{Capacity: spec.Capacity, Version: Version, ConfigHash: st.Hash,
		RestartNeeded: st.RestartNeeded, Address: spec.Address, Internal: spec.Internal}
	if g.srv != nil {
		r.Sessions, r.AuthFailures = g.srv.Sessions(), g.srv.AuthFailures()
	}
	if err := p.Notify(ctx, control.MethodGatewayReport, r); err != nil {
		g.log.Debug("report not sent", "err", err)
		return
	}
	g.stats.reported()
}
