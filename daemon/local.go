package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"

	"switchyard/broker"
	"switchyard/config"
)

// Local runs a whole cluster in one process for trying Switchyard on one
// machine: the broker, every gateway and every server of the config, with
// keys generated on first run into the state directory. It prints the ssh
// line to try and runs until ctx ends. It is Demo without -ha.
func Local(ctx context.Context, args []string, env Env) error { return Demo(nil)(ctx, args, env) }

// Demo is the demo command. With -ha it first starts a three-member etcd
// (startEtcd) in this process, and three brokers on it as processes of
// their own, so that a user can kill -9 the leader and watch the others
// take over.
func Demo(startEtcd EtcdStarter) RunFunc {
	return func(ctx context.Context, args []string, env Env) error {
		if len(args) > 0 && args[0] == haBrokerArg {
			return Broker(withParent(ctx), args[1:], env)
		}
		return demo(ctx, args, env, startEtcd)
	}
}

func demo(ctx context.Context, args []string, env Env, startEtcd EtcdStarter) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	path := fs.String("config", "config.toml.example", "cluster config `file`")
	state := fs.String("state", defaultStateDir(), "state `dir` for keys and logs")
	ha := fs.Bool("ha", false, "high availability: an embedded 3-member etcd and three brokers, each its own process")
	if err := parse(fs, args); err != nil {
		return err
	}
	unlock, err := lockState(*state)
	if err != nil {
		return err
	}
	defer unlock()
	if *ha {
		if startEtcd == nil {
			return fmt.Errorf("%w: -ha: this binary has no embedded etcd; use go run ./cmd/demo -ha", ErrUsage)
		}
		// The demo's etcd is made afresh on each start, on new ports: the
		// data of an earlier run names the old ones and would never form a
		// cluster again.
		dir := filepath.Join(*state, "etcd")
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("demo -ha: %w", err)
		}
		endpoints, stop, err := startEtcd(dir, 3)
		if err != nil {
			return err
		}
		defer stop() // last: the brokers hand their leases back first
		if *path, err = haConfig(*path, *state, endpoints); err != nil {
			return err
		}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	cfg.StateDir = *state
	login, err := prepareState(cfg, env.stdout())
	if err != nil {
		return err
	}
	logPath := filepath.Join(*state, "cluster.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	env.Stderr = logf
	var procs *brokerProcs
	if *ha {
		if procs, err = startBrokerProcs(ctx, cfg, *path, logf); err != nil {
			return err
		}
		defer procs.wait()
		env.Reload = procs.forward(ctx, env.Reload)
	}
	errc, wait := startAll(ctx, cfg, *path, env, !*ha)
	defer wait()
	if err := waitHealthy(ctx, cfg, errc); err != nil {
		return err
	}
	out := env.stdout()
	fmt.Fprintf(out, "Switchyard is running: %d broker(s), %d gateway(s), %d app server(s). Logs: %s\n",
		len(cfg.BrokerNames()), len(cfg.Gateways), len(cfg.Servers), logPath)
	for _, name := range gatewayNames(cfg) {
		fmt.Fprintf(out, "Try:  %s\n", sshLine(cfg, name, login, "top"))
	}
	fmt.Fprintf(out, "Status: go run ./cmd/broker status -config %s -state %s\n", *path, *state)
	if procs != nil {
		fmt.Fprintf(out, "Brokers: %s. Kill the leader (kill -9 PID; status shows who leads): another takes over within\n"+
			"about 5 s; the demo starts a killed broker again %s later.\n", procs.PIDs(cfg.BrokerNames()), haRestartDelay)
	}
	fmt.Fprintln(out, "Stop with Ctrl-C.")
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// lockState takes the demo's lock on its state dir, creating the dir, so
// that a second demo on the same dir fails at once with a clear line
// rather than after reporting a cluster that is the first demo's.
func lockState(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "demo.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state dir %s is in use by another demo: stop it, or give this one -state DIR", dir)
		}
		return nil, fmt.Errorf("demo: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "switchyard")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "switchyard")
	}
	return filepath.Join(os.TempDir(), "switchyard")
}

// startAll runs every daemon of cfg in its own goroutine. errc receives the
// first daemon error; wait blocks until all have returned.
func startAll(ctx context.Context, cfg *config.Config, path string, env Env, withBroker bool) (<-chan error, func()) {
	errc := make(chan error, 1+len(cfg.Gateways)+len(cfg.Servers))
	var wg sync.WaitGroup
	var reloads []chan os.Signal // one per daemon: each SIGHUP reaches them all
	run := func(name string, f RunFunc, args ...string) {
		reload := make(chan os.Signal, 1)
		reloads = append(reloads, reload)
		denv := env
		denv.Reload = reload
		wg.Add(1)
		go func() {
			defer wg.Done()
			args = append([]string{"-config", path, "-state", cfg.StateDir}, args...)
			if err := f(ctx, args, denv); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	if withBroker {
		run("broker", Broker)
	}
	for _, s := range serverNames(cfg) {
		run(s, Appd, "-node", s)
	}
	for _, g := range gatewayNames(cfg) {
		run(g, Slave, "-node", g)
	}
	go fanOut(ctx, env.Reload, reloads)
	return errc, wg.Wait
}

// fanOut passes each signal from in to every one of outs (dropping it for
// one that has a reload pending already) until ctx ends.
func fanOut(ctx context.Context, in <-chan os.Signal, outs []chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig, ok := <-in:
			if !ok {
				return
			}
			for _, out := range outs {
				select {
				case out <- sig:
				default:
				}
			}
		}
	}
}

// waitHealthy polls the brokers' status until every server is up, every
// gateway connected and a broker leads, or a daemon fails, or 15 s pass.
func waitHealthy(ctx context.Context, cfg *config.Config, errc <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var st broker.Status
		err := firstAnswer(adminClients(cfg, ""), func(a adminClient) (err error) {
			st, _, err = a.status(ctx)
			return err
		})
		if err == nil && allUp(st.Servers, st.Gateways) && (st.HA == nil || st.HA.Leader != "") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not healthy after 15s (last: %v); see the log", err)
		}
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// prepareState creates every node key, the demo user's key and a
// known_hosts file for the gateways. It returns the -i option for ssh
// ("" when the user's own key is used).
func prepareState(cfg *config.Config, out io.Writer) (identity string, err error) {
	for _, n := range cfg.NodeNames() {
		if _, err := config.EnsureKey(cfg.NodeSignerPath(n)); err != nil {
			return "", err
		}
	}
	identity, err = demoUserKey(cfg)
	if err != nil {
		return "", err
	}
	return identity, writeKnownHosts(cfg)
}

// demoUserKey writes keys/demo.pub from ~/.ssh/id_ed25519.pub when present,
// else from a key generated into the state dir (whose path it returns).
func demoUserKey(cfg *config.Config) (string, error) {
	pub := cfg.Resolve("keys/demo.pub")
	if home, err := os.UserHomeDir(); err == nil {
		if b, err := os.ReadFile(filepath.Join(home, ".ssh", "id_ed25519.pub")); err == nil {
			return "", os.WriteFile(pub, b, 0o644)
		}
	}
	priv := cfg.Resolve("keys/demo")
	if _, err := config.EnsureKey(priv); err != nil {
		return "", err
	}
	return priv, nil
}

func writeKnownHosts(cfg *config.Config) error {
	var b []byte
	for _, name := range gatewayNames(cfg) {
		g := cfg.Gateways[name]
		s, err := config.EnsureKey(cfg.Resolve(g.HostKey))
		if err != nil {
			return err
		}
		if _, _, err := net.SplitHostPort(g.Address); err != nil {
			return fmt.Errorf("gateway %s address %q: %w", name, g.Address, err)
		}
		// knownhosts writes "host" for port 22 and "[host]:port" otherwise,
		// as OpenSSH matches them.
		b = append(b, knownhosts.Line([]string{g.Address}, s.PublicKey())+"\n"...)
	}
	return os.WriteFile(cfg.Resolve("known_hosts"), b, 0o644)
}

func sshLine(cfg *config.Config, gateway, identity, app string) string {
	host, port, _ := net.SplitHostPort(cfg.Gateways[gateway].Address)
	line := "ssh -t -p " + port
	if identity != "" {
		line += " -i " + identity
	}
	return line + " -o UserKnownHostsFile=" + cfg.Resolve("known_hosts") + " " + app + "@" + host
}

func allUp(servers []brokerServer, gateways []brokerGateway) bool {
	for _, s := range servers {
		if !s.Healthy {
			return false
		}
	}
	for _, g := range gateways {
		if !g.Connected {
			return false
		}
	}
	return len(servers) > 0
}
