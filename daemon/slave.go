package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
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
	if run := commonCommand(slaveKind, args); run != nil {
		return run(ctx, env)
	}
	r, err := startDaemon(ctx, slaveKind, args, env)
	if err != nil {
		return err
	}
	defer r.close()
	node, log, cfg := r.node, r.log, r.cfg
	spec := cfg.Gateways[node]
	auditLog, readAudit := r.audit()
	signer, err := r.nodeKey()
	if err != nil {
		return err
	}
	g, err := newGatewayNode(r.identity(signer), cfg, log, readAudit)
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
	inherited := func(name string) func(string) (net.Listener, error) {
		return func(addr string) (net.Listener, error) { return h.listen(env, name, addr) }
	}
	ln, err := r.listen("gateway listen", spec.Listen, inherited("listen"))
	if err != nil {
		return err
	}
	srv := &sshgate.Server{Name: node, HostSigners: []ssh.Signer{hostKey}, Directory: g.dir(),
		Placer: brokerlink.Placer{Brokers: g.links}, Opener: g.pool, Logger: log, Capacity: spec.Capacity, NoApp: picker,
		AliveInterval: spec.AliveInterval, AliveCountMax: spec.AliveCountMax, PasswordAuth: spec.PasswordAuth,
		HandshakeTimeout: spec.HandshakeTimeout, MaxAuthTries: spec.MaxAuthTries,
		AuthFailLimit: spec.AuthFailLimit, AuthFailWindow: spec.AuthFailWindow,
		MaxConnsPerSource: spec.MaxConnsPerSource, MaxSessionsPerUser: spec.MaxSessionsPerUser,
		MaxChannelsPerConn: spec.MaxChannelsPerConn, Audit: auditLog, RideThrough: spec.RideThrough}
	g.srv = srv
	internalLn, err := r.listenIf("gateway internal listen", spec.Internal, inherited("internal"))
	if err != nil {
		return err
	}
	adminLn, err := r.listenIf("gateway admin listen", spec.Admin, inherited("admin"))
	if err != nil {
		return err
	}
	admin := r.nodeAdmin(adminLn, spec.Admin, g.collector(), readyWhenReporting(g.stats, g.interval))
	internal := g.serveInternal(internalLn)
	reports, stopReports := context.WithCancel(r.ctx) // a draining process stops its reports first
	r.brokers(g.links, reports, g.interval(), g.report)
	r.reloads(g.conf, g.apply)
	r.probe = func() { g.srv.Stats() }
	run := &gatewayRun{g: g, env: env, args: args, ln: ln, internalLn: internalLn, adminLn: adminLn, admin: admin,
		stopReports: stopReports}
	err = r.serving(ctx, "gateway serving",
		[]any{"listen", ln.Addr().String(), "admin", admin.addrs, "inherited", h != nil, "pid", os.Getpid()},
		func() { g.announce(h) }, func(ctx context.Context) error {
			err := run.serve(ctx)
			if internal != nil {
				internal.Close()
			}
			return err
		})
	r.waitLoops()
	g.pool.Close()
	return untilClosed(err, sshgate.ErrServerClosed)
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

func newGatewayNode(id transport.Identity, cfg *config.Config, log *slog.Logger, readAudit auditReader) (*gatewayNode, error) {
	g := &gatewayNode{name: id.Name, log: log, signer: id.Signer, stats: newNodeStats()}
	if err := g.load(cfg); err != nil {
		return nil, err
	}
	g.conf = newNodeConfig(kindGateway, id.Name, cfg, log)
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
	relay := &sshgate.Relay{Name: g.name, Opener: g.pool, Resolve: g.serverAddr, Logger: g.log,
		Admit: g.srv.Acquire, Done: g.srv.Release}
	srv := nodeServer(g.signer, g.log, transport.EachChannel(relay.ServeChannel), func() map[string]string { return *g.peers.Load() })
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
// Window changes reach it from the session's request loop, latest only.
func picker(ctx context.Context, t sshgate.Terminal, m sshgate.Menu) (sshgate.Choice, error) {
	var items tui.Items
	for _, s := range m.Sessions {
		items.Sessions = append(items.Sessions, tui.Session{ID: s.ID, App: s.App, Server: s.Server, Started: s.Started, Detached: s.Detached})
	}
	for _, a := range m.Apps {
		items.Apps = append(items.Apps, tui.App{Name: a.Name, Description: a.Description, Available: a.Available, Hint: a.Hint})
	}
	sizes := make(chan tui.Size, 1)
	t.OnResize(func(p control.PtySpec) { // calls come one at a time: the send never blocks
		select {
		case <-sizes:
		default:
		}
		sizes <- tui.Size{Width: int(p.Cols), Height: int(p.Rows)}
	})
	defer t.OnResize(nil)
	c, err := tui.Run(ctx, items, tui.Options{In: t.In, Out: t.Out, Term: t.Pty.Term,
		Width: int(t.Pty.Cols), Height: int(t.Pty.Rows), Resize: sizes, User: t.User})
	return sshgate.Choice{App: c.App, Resume: c.SessionID}, err
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
