package daemon

import (
	"cmp"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/appd"
	"switchyard/brokerlink"
	"switchyard/config"
	"switchyard/control"
	"switchyard/transport"
)

// Version is reported by every daemon.
const Version = "0.1.0"

// Appd runs the app server daemon: `appd -node NAME [flags]`, `appd check`.
func Appd(ctx context.Context, args []string, env Env) error {
	if run := commonCommand(appdKind, args); run != nil {
		return run(ctx, env)
	}
	r, err := startDaemon(ctx, appdKind, args, env)
	if err != nil {
		return err
	}
	defer r.close()
	node, log, cfg := r.node, r.log, r.cfg
	spec := cfg.Servers[node]
	signer, err := r.nodeKey()
	if err != nil {
		return err
	}
	r.logWarnings()
	cgroups := processCgroups(log) // first: its group must hold no other process of appd's
	keeper, held, err := processKeeper(log, cfg, node)
	if err != nil {
		return err
	}
	shim, err := processShim()
	if err != nil {
		return err
	}
	auditLog, readAudit := r.audit() // closed after Shutdown, which ends the sessions
	a := &appdNode{name: node, log: log, stats: newNodeStats(),
		mgr: &appd.Manager{Server: node, MaxSessions: spec.MaxSessions, Logger: log, Keeper: keeper,
			Shim: shim, Cgroups: cgroups, Audit: auditLog}}
	a.probe.Set = a.appCPU
	a.probe.Prime(time.Now()) // the first report's CPU in use is then a delta, not since boot
	a.apply(cfg)
	if len(held) > 0 {
		log.Info("sessions taken back from the keeper", "sessions", a.mgr.Adopt(held), "held", len(held))
	}
	a.conf = newNodeConfig(kindServer, node, cfg, log)
	ln, err := r.listen("appd listen", spec.Listen, env.listen)
	if err != nil {
		return err
	}
	adminLn, err := r.listenIf("appd admin listen", spec.Admin, env.listen)
	if err != nil {
		return err
	}
	admin := r.nodeAdmin(adminLn, spec.Admin, a.collector(), readyWhenReporting(a.stats, a.interval))
	srv := nodeServer(signer, log, a.handleConn, func() map[string]string { return *a.keys.Load() })
	// Brokers pre-launch apps, kill sessions and read the audit trail
	// through these links (the handler).
	links := brokerlink.Links(&a.cfg, r.identity(signer), log, withAuditRead(readAudit, a.mgr.Handler()), a.report)
	r.brokers(links, r.ctx, a.interval(), a.report)
	r.loop(a.mgr.RunRetention)
	r.reloads(a.conf, a.apply)
	r.probe = func() { a.mgr.Stats() }
	handover := false
	err = r.serving(ctx, "appd serving", []any{"listen", ln.Addr().String(), "admin", admin.addrs, "apps", strings.Join(spec.Apps, ",")},
		nil, func(ctx context.Context) error {
			return serveUntil(ctx, func() error { return srv.Serve(ln) }, func() {
				if handover = keeper.Spawns() && !env.stopForGood(); handover {
					log.Info("handing sessions over to the next appd", "sessions", a.mgr.Handover(), "keeper_pid", keeper.PID())
				}
				srv.Close()
			})
		})
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	a.mgr.Shutdown(shutdownCtx)
	done()
	r.waitLoops()
	if handover {
		keeper.Close() // the keeper holds the sessions for the next appd
	} else {
		keeper.Quit() // what is left of the apps ends now
	}
	return untilClosed(err, transport.ErrServerClosed)
}

// appdNode is one running appd: its session manager and current config.
type appdNode struct {
	name  string
	log   *slog.Logger
	mgr   *appd.Manager
	cfg   atomic.Pointer[config.Config]
	keys  atomic.Pointer[map[string]string] // gateways' keys → names
	conf  *nodeConfig
	stats *nodeStats

	probeMu sync.Mutex // reports to several brokers measure in turn
	probe   appd.LoadProbe
}

// apply installs a (re)loaded config: the apps this server offers, the
// gateways allowed to connect and, of them, those that reach this server
// and so may open sessions. Running sessions are untouched.
func (a *appdNode) apply(cfg *config.Config) error {
	spec := cfg.Servers[a.name]
	apps := make(map[string]appd.App, len(spec.Apps))
	for _, name := range spec.Apps {
		app := cfg.Apps[name]
		apps[name] = appd.App{Argv: app.Argv, Env: app.Env, Dir: app.Dir, User: app.User,
			AllowRoot: app.AllowRoot, AllowArgs: app.AllowArgs, Grace: app.GracePeriod(), Record: recordMode(cfg, name),
			Limits: appLimits(cfg.AppResources(name))}
	}
	if a.mgr.Keeper.Spawns() { // handover reloads
		a.mgr.Keeper.SetHold(cmp.Or(spec.Handover, appd.DefaultKeeperHold))
	}
	a.mgr.SetRecording(recordingOf(cfg))
	a.mgr.SetApps(apps)
	a.mgr.SetMaxSessions(spec.MaxSessions)
	a.mgr.SetGateways(reaching(cfg, a.name))
	keys := nodeKeys(cfg, gatewayNames(cfg), a.log)
	a.keys.Store(&keys)
	a.cfg.Store(cfg)
	return nil
}

// appCPU is the CPU estimate the config sets for each of this server's
// apps that has one (`cpu` in [app.NAME]).
func (a *appdNode) appCPU() map[string]float64 {
	cfg := a.cfg.Load()
	out := map[string]float64{}
	for _, name := range cfg.Servers[a.name].Apps {
		if v := cfg.Apps[name].CPU; v > 0 {
			out[name] = v
		}
	}
	return out
}

func (a *appdNode) interval() time.Duration { return a.cfg.Load().Broker.ReportInterval }

// handleConn serves one gateway connection: spawn and attach channels,
// from gateways that reach this server.
func (a *appdNode) handleConn(ctx context.Context, node string, conn *ssh.ServerConn, chans <-chan ssh.NewChannel) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		wg.Go(func() { a.mgr.HandleChannel(ctx, nc, node) })
	}
}

// reaching lists the gateways whose reach includes server.
func reaching(cfg *config.Config, server string) []string {
	var out []string
	for _, g := range gatewayNames(cfg) {
		if cfg.Gateways[g].Reaches(server) {
			out = append(out, g)
		}
	}
	return out
}

// report sends one heartbeat with load and every running session.
func (a *appdNode) report(ctx context.Context, p *control.Peer) {
	cfg := a.cfg.Load()
	spec := cfg.Servers[a.name]
	st := a.conf.state()
	sessions := a.mgr.Sessions()
	a.probeMu.Lock()
	l := a.probe.Measure(time.Now(), sessions)
	a.probeMu.Unlock()
	r := control.ServerReport{
		Load: l.Avg, CPU: l.CPU, CPUs: l.CPUs, AppCPU: l.AppCPU, MemAvail: l.MemAvail,
		MaxSessions: spec.MaxSessions, Apps: spec.Apps, Version: Version, Sessions: sessions,
		ConfigHash: st.Hash, RestartNeeded: st.RestartNeeded,
	}
	if err := p.Notify(ctx, control.MethodServerReport, r); err != nil {
		a.log.Debug("report not sent", "err", err)
		return
	}
	a.stats.reported()
}

// appLimits copies an app's resolved limits for appd.
func appLimits(r config.Resources) appd.Limits {
	return appd.Limits{OpenFiles: r.OpenFiles, OpenFilesHard: r.OpenFilesHard, Processes: r.Processes,
		Core: r.Core, Memory: r.Memory, CPU: r.CPU, Tasks: r.Tasks}
}
