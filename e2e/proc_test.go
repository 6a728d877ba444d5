package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/broker"
	"switchyard/config"
	"switchyard/daemon"
	"switchyard/internal/loopport"
	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// binDir holds the three binaries, built once per test run.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func buildBinaries(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "switchyard-bin-")
		if binErr != nil {
			return
		}
		// As an install directory is: apps' users may run appd's exec
		// shim by its path.
		if binErr = os.Chmod(binDir, 0o755); binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir, "../cmd/broker", "../cmd/slave", "../cmd/appd").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// ProcCluster runs every daemon as its own process, so a test can kill -9
// one, stop it with SIGSTOP, or restart it, as a real fault would.
type ProcCluster struct {
	t      testing.TB
	Dir    string
	Config string
	cfg    *config.Config
	Alice  ssh.Signer
	procs  map[string]*exec.Cmd
	prefix map[string][]string // command prefix per node
	mu     sync.Mutex
}

// freeAddrs finds n distinct loopback ports nothing listens on, below
// the ephemeral range, so that no connection made meanwhile takes one
// before its process binds it (see loopport).
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	out, err := loopport.Pick(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// NewProcCluster writes a config for the given gateways and servers and
// starts one process per node; all are SIGKILLed at cleanup.
func NewProcCluster(t testing.TB, gateways, servers []string) *ProcCluster {
	t.Helper()
	return newProcCluster(t, gateways, servers, procOptions{})
}

// procOptions place nodes elsewhere than on 127.0.0.1: Addr overrides a
// node's listen address ("broker" included), Prefix runs its process
// under a command such as `ip netns exec NS`. Extra adds top-level config
// tables (such as [app.X]) and ExtraApps the apps of Extra that group
// staff may run.
type procOptions struct {
	Addr   map[string]string
	Prefix map[string][]string
	// Extra config lines in a gateway's table by node name, and in
	// [user.alice] or [user.bob] by user.
	GatewayConfig map[string]string
	UserConfig    map[string]string
	Extra         string
	ExtraApps     []string
	// Brokers are more brokers ([brokers.NAME] on loopback) started with
	// the one of [broker]; they need Etcd, the members' client URLs.
	Brokers []string
	Etcd    []string
	// Bin is the directory of the binaries; buildBinaries' if empty.
	Bin string
	// MaxSessions is each server's max_sessions; 50 if zero.
	MaxSessions int
	// ServerConfig is extra lines in a server's table by node name;
	// a server without any keeps its apps for procHandover once its
	// appd is gone, so that a test's keepers end soon after it.
	ServerConfig map[string]string
}

// procHandover is the [server.NAME] handover of test servers that do not
// set theirs.
const procHandover = "handover = \"3s\"\n"

// brokersConfig is the config text of opts' further brokers, listening
// on addrs, and of its [etcd] table.
func brokersConfig(opts procOptions, addrs []string) string {
	var b strings.Builder
	for i, name := range opts.Brokers {
		fmt.Fprintf(&b, "[brokers.%s]\nlisten = %q\n", name, addrs[i])
	}
	if len(opts.Etcd) > 0 {
		fmt.Fprintf(&b, "[etcd]\nendpoints = [\"%s\"]\n", strings.Join(opts.Etcd, `", "`))
	}
	return b.String()
}

func newProcCluster(t testing.TB, gateways, servers []string, opts procOptions) *ProcCluster {
	t.Helper()
	bin := buildBinaries(t)
	if opts.Bin != "" {
		bin = opts.Bin
	}
	c := &ProcCluster{t: t, Dir: t.TempDir(), Alice: sshtest.NewSigner(t), procs: map[string]*exec.Cmd{}, prefix: opts.Prefix}
	t.Cleanup(func() { // runs before the directory is removed
		if t.Failed() {
			logs, _ := exec.Command("sh", "-c", "tail -n 60 "+c.Dir+"/*.log").CombinedOutput()
			t.Logf("the nodes' last log lines:\n%s", logs)
		}
	})
	addrs := freeAddrs(t, 2+len(gateways)+len(servers)+len(opts.Brokers))
	extra := opts.Extra + "\n" + brokersConfig(opts, addrs[2+len(gateways)+len(servers):])
	data := map[string]any{"State": c.Dir, "Broker": addrs[0], "Admin": addrs[1], "Interval": "200ms",
		"Gateways": map[string]string{}, "Servers": map[string]string{}, "Max": cmp.Or(opts.MaxSessions, 50),
		"AliceKey": authorized(c.Alice), "BobKey": authorized(sshtest.NewSigner(t)),
		"GatewayExtra": opts.GatewayConfig, "UserExtra": opts.UserConfig, "Extra": extra, "ExtraApps": opts.ExtraApps,
		"ServerExtra": map[string]string{}}
	for _, s := range servers {
		data["ServerExtra"].(map[string]string)[s] = cmp.Or(opts.ServerConfig[s], procHandover)
	}
	for i, g := range gateways {
		data["Gateways"].(map[string]string)[g] = addrs[2+i]
	}
	for i, s := range servers {
		data["Servers"].(map[string]string)[s] = addrs[2+len(gateways)+i]
	}
	for node, addr := range opts.Addr {
		switch {
		case node == "broker":
			data["Broker"] = addr
		case slices.Contains(gateways, node):
			data["Gateways"].(map[string]string)[node] = addr
		default:
			data["Servers"].(map[string]string)[node] = addr
		}
	}
	c.Config = filepath.Join(c.Dir, "config.toml")
	writeConfig(t, c.Config, data)
	cfg, err := config.Load(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	c.cfg = cfg
	for _, n := range cfg.NodeNames() {
		if _, err := config.EnsureKey(cfg.NodeSignerPath(n)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for name, p := range c.procs {
			p.Process.Signal(syscall.SIGCONT)
			if _, ok := c.cfg.Servers[name]; ok {
				stopForGood(p) // its keeper ends the apps now, not after the hold
			}
			p.Process.Kill()
			p.Wait()
		}
	})
	for _, n := range append(append(append([]string{"broker"}, opts.Brokers...), servers...), gateways...) {
		c.Start(n, bin)
	}
	c.WaitUp()
	return c
}

// Start starts the named node's process.
func (c *ProcCluster) Start(name string, bin ...string) {
	c.t.Helper()
	dir := binDir
	if len(bin) > 0 {
		dir = bin[0]
	}
	exe, args := "appd", []string{"-node", name}
	switch {
	case name == "broker":
		exe, args = "broker", nil
	case c.cfg.IsBroker(name):
		exe = "broker"
	case c.cfg.Gateways[name].Listen != "":
		exe = "slave"
	}
	logf, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	argv := append(append(slices.Clone(c.prefix[name]), filepath.Join(dir, exe), "-config", c.Config, "-log-level", "debug"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.mu.Lock()
	c.procs[name] = cmd
	c.mu.Unlock()
}

// stopForGood sends SIGINT to an appd, which ends its apps and its
// keeper, and waits a few seconds for it to exit.
func stopForGood(p *exec.Cmd) {
	p.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { p.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// PID is the process id of a running node.
func (c *ProcCluster) PID(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[name].Process.Pid
}

// Signal sends sig to a node's process; SIGKILL also reaps it.
func (c *ProcCluster) Signal(name string, sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[name]
	if sig == syscall.SIGKILL {
		delete(c.procs, name)
	}
	c.mu.Unlock()
	if err := p.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %s: %v", name, err)
	}
	if sig == syscall.SIGKILL {
		p.Wait()
	}
}

func (c *ProcCluster) status() (broker.Status, error) {
	var out bytes.Buffer
	err := daemon.Broker(context.Background(), []string{"status", "-json", "-config", c.Config}, daemon.Env{Stdout: &out})
	if err != nil && !errors.Is(err, daemon.ErrDegraded) {
		return broker.Status{}, err
	}
	var st broker.Status
	return st, json.Unmarshal(out.Bytes(), &st)
}

// Eventually polls cond for at most 15 s.
func (c *ProcCluster) Eventually(what string, cond func() bool) {
	c.t.Helper()
	if !testutil.Poll(15*time.Second, cond) {
		logs, _ := exec.Command("sh", "-c", "tail -n 20 "+c.Dir+"/*.log").CombinedOutput()
		c.t.Fatalf("timed out waiting for %s\n%s", what, logs)
	}
}

// WaitUp waits for every server healthy and every gateway connected.
func (c *ProcCluster) WaitUp() {
	c.t.Helper()
	c.Eventually("cluster up", func() bool {
		st, err := c.status()
		return err == nil && allHealthy(st)
	})
}

func (c *ProcCluster) serverUp(name string) bool {
	st, err := c.status()
	if err != nil {
		return false
	}
	for _, s := range st.Servers {
		if s.Name == name {
			return s.Healthy
		}
	}
	return false
}

// Dial logs alice in at a gateway.
func (c *ProcCluster) Dial(gateway string) *ssh.Client {
	c.t.Helper()
	client, err := ssh.Dial("tcp", c.cfg.Gateways[gateway].Listen, &ssh.ClientConfig{
		User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(c.Alice)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		c.t.Fatalf("dial %s: %v", gateway, err)
	}
	c.t.Cleanup(func() { client.Close() })
	return client
}

// serverOf waits for the broker to list the session of pid and returns
// its server.
func (c *ProcCluster) serverOf(pid int) string {
	c.t.Helper()
	var server string
	c.Eventually(fmt.Sprintf("the broker to list pid %d", pid), func() bool {
		st, err := c.status()
		if err != nil {
			return false
		}
		for _, s := range st.Sessions {
			if s.PID == pid {
				server = s.Server
			}
		}
		return server != ""
	})
	return server
}

// gone reports whether pid has exited (a zombie counts as exited: PID 1
// in a container may never reap it).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// TestMain removes the binaries built for the process tests. Run with
// appd.ExecArg, the test binary is the exec shim of its in-process appds;
// with echodEnv set, BenchmarkEchoStages' SSH echo server.
func TestMain(m *testing.M) {
	if os.Getenv(echodEnv) != "" {
		runEchod() // a child of BenchmarkEchoStages
		return
	}
	daemon.AppdExecShim()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
