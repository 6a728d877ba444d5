package e2e

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/broker"
	"switchyard/config"
	"switchyard/daemon"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// testApps are the apps every test cluster defines. Tests may use sh -c
// here because the config defines the command; users only name apps.
const testApps = `
[app.cat]
argv = ["cat"]
user = "nobody"
[app.echo]
argv = ["echo"]
user = "nobody"
allow_args = true
[app.pid]
argv = ["sh", "-c", "echo pid=$$; echo term=$TERM; stty size; while read l; do echo got:$l; done"]
user = "nobody"
[app.status]
argv = ["sh", "-c", "exit 7"]
user = "nobody"
[app.suicide]
argv = ["sh", "-c", "echo bye; kill -TERM $$"]
user = "nobody"
[app.split]
argv = ["sh", "-c", "echo out; echo err >&2"]
user = "nobody"
[app.raw]
argv = ["sh", "-c", "stty raw -echo -onlcr; printf 'a\\nb\\r\\nc'"]
user = "nobody"
[app.winch]
argv = ["sh", "-c", "trap 'echo size=$(stty size)' WINCH; trap 'echo got-int; exit 130' INT; echo ready; while :; do sleep 0.05; done"]
user = "nobody"
[app.secret]
argv = ["true"]
user = "nobody"
[app.top]
argv = ["top"]
user = "nobody"
[app.zeros]
argv = ["sh", "-c", "head -c 67108864 /dev/zero"]
user = "nobody"
[app.echoraw]
argv = ["sh", "-c", "stty raw -echo; echo ready; exec cat"]
user = "nobody"
[app.ticker]
description = "prints its pid, a tick every 100ms"
argv = ["sh", "-c", "trap 'echo marker-$i' USR1; i=0; while :; do i=$((i+1)); echo tick=$i pid=$$; sleep 0.1; done"]
user = "nobody"
[app.brief]
description = "counter with a short grace period"
argv = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo tick=$i pid=$$; sleep 0.1; done"]
user = "nobody"
grace = "300ms"
`

// testAdminToken is the admin_token of test clusters, whose TCP admin
// listener ("admin" in Cluster.lns) requires it; `broker status` uses the
// admin socket in the state directory.
const testAdminToken = "e2e-admin-token-0123456789"

const configTmpl = `
state_dir = "{{.State}}"
[broker]
listen = "{{.Broker}}"
admin_tcp = "{{.Admin}}"
admin_token = "` + testAdminToken + `"
report_interval = "{{.Interval}}"
{{with .BrokerExtra}}{{.}}{{end}}
{{range $name, $addr := .Gateways}}
[gateway.{{$name}}]
listen = "{{$addr}}"
{{with $.GatewayExtra}}{{index . $name}}{{end}}
{{end}}
{{range $name, $addr := .Servers}}
[server.{{$name}}]
listen = "{{$addr}}"
max_sessions = {{$.Max}}
{{with $.ServerExtra}}{{index . $name}}{{end}}
{{end}}
{{with .Extra}}{{.}}{{end}}
[group.staff]
apps = ["cat", "echo", "pid", "status", "suicide", "split", "raw", "winch", "top", "zeros", "echoraw", "ticker", "brief"{{range .ExtraApps}}, "{{.}}"{{end}}]
[user.alice]
keys = ["{{.AliceKey}}"]
groups = ["staff"]
apps = ["secret"]
{{with .UserExtra}}{{index . "alice"}}{{end}}
[user.bob]
keys = ["{{.BobKey}}"]
groups = ["staff"]
{{with .UserExtra}}{{index . "bob"}}{{end}}
` + testApps

// testLimits returns config lines raising the gateway limits that extra
// does not set itself: test clusters play many users, and attackers, as
// one user from one address (127.0.0.1), which the defaults (50
// connections per address, 20 sessions per user, 10 per connection, 20
// failed logins) would rightly refuse. e2e/limits_test.go sets each limit
// it tests.
func testLimits(extra string) string {
	var b strings.Builder
	for _, kv := range [][2]string{{"max_conns_per_source", "5000"}, {"auth_fail_limit", "100000"},
		{"max_sessions_per_user", "5000"}, {"max_channels_per_conn", "1000"},
		// A lenient keepalive: a test client starved of CPU (race detector,
		// a loaded machine) must not be taken for a cut network. The
		// network-cut test sets its own, short one.
		{"alive_interval", `"2s"`}, {"alive_count_max", "3"},
		// A short ride-through: tests that kill an app server wait this
		// long for the user's line; the ride-through tests set their own.
		{"ride_through", `"2s"`}} {
		if !strings.Contains(extra, kv[0]+" =") {
			fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
		}
	}
	return b.String()
}

// Cluster is one in-process Switchyard cluster on loopback.
type Cluster struct {
	t        testing.TB
	Dir      string
	Config   string // config file path
	cfg      *config.Config
	Alice    ssh.Signer
	Bob      ssh.Signer
	lns      map[string]net.Listener
	cancels  map[string]context.CancelFunc
	dones    map[string]chan error
	reloads  map[string]chan os.Signal
	mu       sync.Mutex
	interval time.Duration
	logFmt   string      // -log-format
	quiet    atomic.Bool // set once the test is over: no more logging
	logMu    sync.Mutex
	logs     bytes.Buffer // every daemon's log, for WaitLog
}

// ClusterOptions shape a test cluster.
type ClusterOptions struct {
	Gateways    []string
	Servers     []string
	Interval    time.Duration // report interval; 200ms if zero
	MaxSessions int           // each server's max_sessions; 50 if zero

	// Extra config lines: in [broker], in a gateway's or a server's table
	// by node name, and top-level tables (e.g. [region.X]) after the
	// nodes'.
	BrokerConfig  string
	GatewayConfig map[string]string
	ServerConfig  map[string]string
	Extra         string
	ExtraApps     []string          // apps defined in Extra that group staff may run
	UserConfig    map[string]string // extra lines in [user.alice] or [user.bob], by user
	// Internal lists the gateways that get an internal listener (for
	// relays), opened on 127.0.0.1:0 like the others.
	Internal []string
	// LogFormat is every daemon's -log-format; text if empty.
	LogFormat string
	// Admin lists the gateways and servers that get an admin listener
	// (metrics, health), likewise; AdminAddr names its address.
	Admin []string
}

// NewCluster writes a config for opts, opens every listener on
// 127.0.0.1:0, and starts all daemons. Everything stops at test cleanup.
func NewCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if len(opts.Gateways) == 0 {
		opts.Gateways = []string{"gw1"}
	}
	if len(opts.Servers) == 0 {
		opts.Servers = []string{"s1", "s2"}
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = 50
	}
	if opts.Interval == 0 {
		opts.Interval = 200 * time.Millisecond
	}
	c := &Cluster{t: t, Dir: t.TempDir(), lns: map[string]net.Listener{}, cancels: map[string]context.CancelFunc{},
		dones: map[string]chan error{}, reloads: map[string]chan os.Signal{}, Alice: sshtest.NewSigner(t), Bob: sshtest.NewSigner(t), interval: opts.Interval,
		logFmt: cmp.Or(opts.LogFormat, "text")}
	t.Cleanup(func() { c.quiet.Store(true) }) // runs last
	data := map[string]any{
		"State": c.Dir, "Broker": c.listen("broker"), "Admin": c.listen("admin"), "Interval": opts.Interval.String(),
		"Gateways": map[string]string{}, "Servers": map[string]string{},
		"AliceKey": authorized(c.Alice), "BobKey": authorized(c.Bob), "Max": opts.MaxSessions,
		"BrokerExtra": opts.BrokerConfig, "ServerExtra": opts.ServerConfig, "Extra": opts.Extra,
		"ExtraApps": opts.ExtraApps, "UserExtra": opts.UserConfig,
	}
	gwExtra := map[string]string{}
	for g, extra := range opts.GatewayConfig {
		gwExtra[g] = extra
	}
	for _, g := range opts.Gateways {
		gwExtra[g] += "\n" + testLimits(gwExtra[g])
	}
	for _, g := range opts.Internal {
		gwExtra[g] += fmt.Sprintf("\ninternal = %q\n", c.listen(g+"/internal"))
	}
	srvExtra := map[string]string{}
	for n, extra := range opts.ServerConfig {
		srvExtra[n] = extra
	}
	for _, n := range opts.Admin {
		line := fmt.Sprintf("\nadmin = %q\n", c.listen(n+"/admin"))
		if slices.Contains(opts.Gateways, n) {
			gwExtra[n] += line
		} else {
			srvExtra[n] += line
		}
	}
	data["GatewayExtra"], data["ServerExtra"] = gwExtra, srvExtra
	for _, g := range opts.Gateways {
		data["Gateways"].(map[string]string)[g] = c.listen(g)
	}
	for _, s := range opts.Servers {
		data["Servers"].(map[string]string)[s] = c.listen(s)
	}
	c.Config = filepath.Join(c.Dir, "config.toml")
	var buf bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(configTmpl)).Execute(&buf, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Config, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(c.Config)
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	c.cfg = cfg
	for _, n := range cfg.NodeNames() {
		if _, err := config.EnsureKey(cfg.NodeSignerPath(n)); err != nil {
			t.Fatal(err)
		}
	}
	c.Start("broker")
	for _, s := range opts.Servers {
		c.Start(s)
	}
	for _, g := range opts.Gateways {
		c.Start(g)
	}
	c.WaitHealthy()
	return c
}

func authorized(s ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// listen opens a loopback listener for a node and returns its address.
func (c *Cluster) listen(name string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	c.lns[name] = ln
	c.t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// reopen gives a node a fresh listener on its old address (after a stop).
func (c *Cluster) reopen(name string) {
	addr := c.lns[name].Addr().String()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatalf("reopen %s on %s: %v", name, addr, err)
	}
	c.lns[name] = ln
}

// Start runs one daemon by node name ("broker", a gateway or a server).
func (c *Cluster) Start(name string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	run, args := c.runFor(name)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	reload := make(chan os.Signal, 1)
	c.reloads[name] = reload
	env := daemon.Env{
		Stdout: io.Discard, Stderr: testLog{c, name},
		Listen: c.listener, Reload: reload,
		Ready: func() { close(ready) },
	}
	go func() {
		done <- run(ctx, append([]string{"-config", c.Config, "-log-level", "debug", "-log-format", c.logFmt}, args...), env)
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		c.t.Fatalf("%s did not start: %v", name, err)
	}
	c.cancels[name], c.dones[name] = cancel, done
	c.t.Cleanup(func() { c.Stop(name) })
}

func (c *Cluster) runFor(name string) (daemon.RunFunc, []string) {
	switch {
	case name == "broker":
		return daemon.Broker, nil
	case c.cfg.Gateways[name].Listen != "":
		return daemon.Slave, []string{"-node", name}
	default:
		return daemon.Appd, []string{"-node", name}
	}
}

// listener hands a daemon the listener opened for its address.
func (c *Cluster) listener(network, addr string) (net.Listener, error) {
	for _, ln := range c.lns {
		if ln.Addr().String() == addr {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("test cluster has no listener for %s", addr)
}

// Reload sends the named daemons what SIGHUP would (all if none named).
func (c *Cluster) Reload(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(names) == 0 {
		for n := range c.reloads {
			names = append(names, n)
		}
	}
	for _, n := range names {
		c.reloads[n] <- syscall.SIGHUP
	}
}

// Stop ends one daemon and waits for it, then readies a listener on the
// same address so it can be started again.
func (c *Cluster) Stop(name string) {
	c.mu.Lock()
	cancel, done := c.cancels[name], c.dones[name]
	delete(c.cancels, name)
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("%s ended with %v", name, err)
		}
	case <-time.After(20 * time.Second):
		c.t.Errorf("%s did not stop within 20s", name)
	}
	ln := c.lns[name]
	if name == "broker" {
		c.lns["admin"].Close()
		c.reopen("admin")
	}
	for _, sub := range []string{"/internal", "/admin"} {
		if iln, ok := c.lns[name+sub]; ok {
			iln.Close()
			c.reopen(name + sub)
		}
	}
	ln.Close()
	c.reopen(name)
}

// Status asks the broker for its status view.
func (c *Cluster) Status() broker.Status {
	c.t.Helper()
	var out bytes.Buffer
	env := daemon.Env{Stdout: &out}
	if err := daemon.Broker(context.Background(), []string{"status", "-json", "-config", c.Config}, env); err != nil && !errors.Is(err, daemon.ErrDegraded) {
		c.t.Fatalf("broker status: %v", err)
	}
	return decodeStatus(c.t, out.Bytes())
}

// WaitHealthy waits until the broker sees every server healthy and every
// gateway connected.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	c.Eventually("cluster healthy", func() bool {
		st, err := c.tryStatus()
		if err != nil {
			return false
		}
		for _, s := range st.Servers {
			if !s.Healthy {
				return false
			}
		}
		for _, g := range st.Gateways {
			if !g.Connected {
				return false
			}
		}
		return true
	})
}

func (c *Cluster) tryStatus() (broker.Status, error) {
	var out bytes.Buffer
	err := daemon.Broker(context.Background(), []string{"status", "-json", "-config", c.Config}, daemon.Env{Stdout: &out})
	if err != nil && !errors.Is(err, daemon.ErrDegraded) {
		return broker.Status{}, err
	}
	return decodeStatus(c.t, out.Bytes()), nil
}

// Eventually polls cond until it holds or 15 s pass.
func (c *Cluster) Eventually(what string, cond func() bool) {
	c.t.Helper()
	testutil.Eventually(c.t, 15*time.Second, what, cond)
}

// WaitLog waits until some daemon has logged a line containing every one
// of parts.
func (c *Cluster) WaitLog(parts ...string) {
	c.t.Helper()
	c.Eventually("a log line with "+strings.Join(parts, ", "), func() bool {
		c.logMu.Lock()
		defer c.logMu.Unlock()
		for _, line := range strings.Split(c.logs.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	})
}

// AdminAddr is the admin listener's address of a gateway or server
// started with ClusterOptions.Admin.
func (c *Cluster) AdminAddr(name string) string { return c.lns[name+"/admin"].Addr().String() }

// GatewayAddr is the user-facing address of a gateway.
func (c *Cluster) GatewayAddr(name string) string { return c.lns[name].Addr().String() }

// Dial opens an SSH connection to a gateway as login with signer.
func (c *Cluster) Dial(gateway, login string, signer ssh.Signer) (*ssh.Client, error) {
	return ssh.Dial("tcp", c.GatewayAddr(gateway), &ssh.ClientConfig{
		User:            login,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
}

// testLog sends a daemon's log lines to the test log.
type testLog struct {
	c    *Cluster
	name string
}

func (w testLog) Write(p []byte) (int, error) {
	w.c.logMu.Lock()
	w.c.logs.Write(p)
	w.c.logMu.Unlock()
	if !w.c.quiet.Load() {
		w.c.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}
