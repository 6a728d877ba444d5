package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"text/template"
	"time"

	"switchyard/broker"
	"switchyard/config"
	"switchyard/daemon"
	"switchyard/internal/sshtest"
)

// switchyardTarget runs a cluster (broker, gateway gw1, server s1) in this
// process through daemon.Local, the demo's entry point, and returns alice's
// target on gw1. NewCluster needs a *testing.T; benchmarks have a
// *testing.B. Logs go to cluster.log in the state dir, not to the test.
func switchyardTarget(tb testing.TB) Target { return switchyardTargetWith(tb, "") }

// switchyardTargetWith is switchyardTarget with extra top-level config
// lines.
func switchyardTargetWith(tb testing.TB, extra string) Target {
	tb.Helper()
	dir := tb.TempDir()
	lns := map[string]net.Listener{}
	open := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ln.Close() })
		lns[ln.Addr().String()] = ln
		return ln.Addr().String()
	}
	alice, bob := sshtest.NewSigner(tb), sshtest.NewSigner(tb)
	path := filepath.Join(dir, "config.toml")
	writeConfig(tb, path, map[string]any{
		"State": dir, "Broker": open(), "Admin": open(), "Interval": "1s",
		"Gateways": map[string]string{"gw1": open()}, "Servers": map[string]string{"s1": open()},
		"AliceKey": authorized(alice), "BobKey": authorized(bob), "Max": 1000, "Extra": extra,
	})
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatalf("bench config: %v", err)
	}
	env := daemon.Env{Listen: func(_, addr string) (net.Listener, error) {
		if ln, ok := lns[addr]; ok {
			return ln, nil
		}
		return nil, fmt.Errorf("bench cluster has no listener for %s", addr)
	}}
	env.Stdout = io.Discard // the demo's "try this" lines
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Local(ctx, []string{"-config", path, "-state", dir}, env) }()
	tb.Cleanup(func() { cancel(); <-done })
	waitUp(tb, path, done)
	host, err := config.EnsureKey(cfg.Resolve(cfg.Gateways["gw1"].HostKey))
	if err != nil {
		tb.Fatal(err)
	}
	gw := cfg.Gateways["gw1"].Listen
	return Target{Addr: gw, Login: "alice", Signer: alice, HostKey: host.PublicKey(), Cmd: switchyardCmds}
}

func writeConfig(tb testing.TB, path string, data map[string]any) {
	var buf bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(configTmpl)).Execute(&buf, data); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// waitUp polls the broker's status until every server is healthy and
// every gateway connected, for at most 15 s.
func waitUp(tb testing.TB, path string, done <-chan error) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out bytes.Buffer
		err := daemon.Broker(context.Background(), []string{"status", "-json", "-config", path}, daemon.Env{Stdout: &out})
		var st broker.Status
		if (err == nil || errors.Is(err, daemon.ErrDegraded)) && json.Unmarshal(out.Bytes(), &st) == nil && allHealthy(st) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("bench cluster not healthy after 15s (last: %v)", err)
		}
		select {
		case err := <-done:
			tb.Fatalf("bench cluster stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func allHealthy(st broker.Status) bool {
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
	return len(st.Servers) > 0 && len(st.Gateways) > 0
}
