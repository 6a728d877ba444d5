package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// newerThanAudit are algorithms that ssh-audit 2.5.0 (Debian 12's) reports
// as "unknown" only because they postdate it: the ML-KEM hybrid key
// exchange (OpenSSH 9.9's default) and the strict-KEX marker that closes
// the Terrapin attack (OpenSSH 9.6). Both are wanted; removing either would
// make the listener weaker, not better.
var newerThanAudit = map[string]bool{
	"mlkem768x25519-sha256":        true,
	"kex-strict-s-v00@openssh.com": true,
}

// TestSSHAuditFindsNothingWeak runs ssh-audit against the gateway's user
// listener and the internal listeners of appd and the broker: no failure,
// and no warning but the "unknown algorithm" notes above.
func TestSSHAuditFindsNothingWeak(t *testing.T) {
	if _, err := exec.LookPath("ssh-audit"); err != nil {
		t.Skip("ssh-audit not installed (.ci/run installs it)")
	}
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	for _, node := range []string{"gw1", "s1", "broker"} {
		t.Run(node, func(t *testing.T) {
			addr := c.lns[node].Addr().String()
			host, port, _ := strings.Cut(addr, ":")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, _ := exec.CommandContext(ctx, "ssh-audit", "-b", "-n", "-p", port, host).CombinedOutput()
			var bad []string
			for _, line := range strings.Split(string(out), "\n") {
				if !strings.Contains(line, "[warn]") && !strings.Contains(line, "[fail]") {
					continue
				}
				alg := strings.Fields(strings.TrimSpace(line[strings.Index(line, ")")+1:]))
				if len(alg) > 0 && newerThanAudit[alg[0]] && strings.HasSuffix(line, "[warn] unknown algorithm") {
					continue
				}
				bad = append(bad, line)
			}
			if !strings.Contains(string(out), "(kex) curve25519-sha256") {
				t.Fatalf("ssh-audit did not audit %s (%s):\n%s", node, addr, out)
			}
			if len(bad) > 0 {
				t.Fatalf("ssh-audit on %s (%s):\n%s\nfull output:\n%s", node, addr, strings.Join(bad, "\n"), out)
			}
		})
	}
}
