package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"switchyard/config"
	"switchyard/internal/loopport"
)

// EtcdStarter starts an embedded etcd cluster of n members with its data
// under dir, for the demo's -ha mode, and returns its client endpoints
// and how to stop it. cmd/demo passes one (internal/etcdembed); the
// daemons' binaries carry no etcd server.
type EtcdStarter func(dir string, n int) (endpoints []string, stop func(), err error)

// haBrokerArg, first on the demo's command line, runs one broker of the
// -ha demo: the demo starts its brokers as processes of their own, so
// that a user can kill -9 the leader and watch.
const haBrokerArg = "-switchyard-broker"

// haBrokers are the brokers of the -ha demo besides "broker".
var haBrokers = []string{"b2", "b3"}

// haRestartDelay is how long the -ha demo waits before starting a broker
// that died (killed by hand, to watch a failover) again.
const haRestartDelay = 5 * time.Second

// haConfig writes the -ha demo's config: the file at path with two more
// brokers on free loopback ports and an [etcd] table naming endpoints,
// into the state directory. It returns the new file's path.
func haConfig(path, state string, endpoints []string) (string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	var b strings.Builder
	b.Write(src)
	b.WriteString("\n# Added by `demo -ha`: two more brokers and the embedded etcd.\n")
	addrs, err := loopport.Pick(len(haBrokers)) // below the ephemeral range: no connect takes one meanwhile
	if err != nil {
		return "", err
	}
	for i, name := range haBrokers {
		fmt.Fprintf(&b, "[brokers.%s]\nlisten = %q\n", name, addrs[i])
	}
	fmt.Fprintf(&b, "[etcd]\nendpoints = [%s]\nprefix = \"/switchyard-demo/\"\n", quoteAll(endpoints))
	out := filepath.Join(state, "config-ha.toml")
	if err := os.WriteFile(out, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	return out, nil
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// brokerProcs runs every broker of cfg as a process of its own (this
// binary, with haBrokerArg), each started again haRestartDelay after it
// dies, until ctx ends. log receives their output.
type brokerProcs struct {
	mu   sync.Mutex
	pids map[string]int
	wg   sync.WaitGroup
}

func startBrokerProcs(ctx context.Context, cfg *config.Config, path string, log io.Writer) (*brokerProcs, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("demo -ha: own binary: %w", err)
	}
	p := &brokerProcs{pids: map[string]int{}}
	for _, name := range cfg.BrokerNames() {
		args := []string{haBrokerArg, "-config", path, "-state", cfg.StateDir, "-node", name}
		cmd, err := p.start(exe, args, name, log)
		if err != nil {
			return nil, err
		}
		p.wg.Add(1)
		go p.supervise(ctx, cmd, exe, args, name, log)
	}
	return p, nil
}

func (p *brokerProcs) start(exe string, args []string, name string, log io.Writer) (*exec.Cmd, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("demo -ha: start broker %s: %w", name, err)
	}
	p.mu.Lock()
	p.pids[name] = cmd.Process.Pid
	p.mu.Unlock()
	return cmd, nil
}

// supervise waits for cmd; when it dies before ctx ends, it starts the
// broker again after haRestartDelay. When ctx ends it stops the broker.
func (p *brokerProcs) supervise(ctx context.Context, cmd *exec.Cmd, exe string, args []string, name string, log io.Writer) {
	defer p.wg.Done()
	for {
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-ctx.Done():
			cmd.Process.Signal(os.Interrupt)
			<-exited
			return
		case err := <-exited:
			fmt.Fprintf(log, "demo: broker %s (pid %d) exited (%v); starting it again in %s\n", name, cmd.Process.Pid, err, haRestartDelay)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(haRestartDelay):
		}
		next, err := p.start(exe, args, name, log)
		if err != nil {
			fmt.Fprintf(log, "demo: %v\n", err)
			return
		}
		cmd = next
	}
}

// PIDs returns "broker pid 123, b2 pid 124, ..." in config order.
func (p *brokerProcs) PIDs(names []string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s pid %d", n, p.pids[n])
	}
	return strings.Join(parts, ", ")
}

// withParent returns a context that ends when this process's parent (the
// demo) is gone, however it ended: a broker of the -ha demo never
// outlives it.
func withParent(ctx context.Context) context.Context {
	parent := os.Getppid()
	ctx, cancel := context.WithCancel(ctx)
	go every(ctx, 500*time.Millisecond, func() {
		if os.Getppid() != parent {
			cancel()
		}
	})
	return ctx
}

// forward passes each signal from in to every broker process and on to
// the channel it returns, for the in-process daemons.
func (p *brokerProcs) forward(ctx context.Context, in <-chan os.Signal) <-chan os.Signal {
	if in == nil {
		return nil
	}
	out := make(chan os.Signal, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-in:
				p.mu.Lock()
				for _, pid := range p.pids {
					if proc, err := os.FindProcess(pid); err == nil {
						proc.Signal(sig)
					}
				}
				p.mu.Unlock()
				select {
				case out <- sig:
				default:
				}
			}
		}
	}()
	return out
}

// wait blocks until every supervisor has returned.
func (p *brokerProcs) wait() { p.wg.Wait() }
