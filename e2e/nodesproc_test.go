package e2e

import (
	"bytes"
	"cmp"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runReload runs `BIN reload` of the built binaries against the process
// cluster and returns its stdout, stderr and exit status.
func (c *ProcCluster) runReload(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(buildBinaries(t), bin), append([]string{"reload", "-config", c.Config}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// The reload command (systemd's ExecReload) signals the running node and
// waits for its answer: exit 0 when it applied the file, 1 with the
// reason when it refused it (a key that needs a restart, an invalid
// file), without touching another process when -pid is not the node's.
func TestReloadCommandWaitsForTheNode(t *testing.T) {
	c := NewProcCluster(t, []string{"gw1"}, []string{"s1"})
	for _, r := range []struct{ bin, node string }{{"broker", ""}, {"slave", "gw1"}, {"appd", "s1"}} {
		args := []string{"-pid", strconv.Itoa(c.PID(cmp.Or(r.node, "broker")))}
		if r.node != "" {
			args = append(args, "-node", r.node)
		}
		out, errOut, code := c.runReload(t, r.bin, args...)
		if code != 0 || !strings.Contains(out, ": reloaded; runs config "+c.cfg.Hash) {
			t.Fatalf("%s reload: exit %d, stdout %q, stderr %q", r.bin, code, out, errOut)
		}
	}
	b, err := os.ReadFile(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	moved := bytes.Replace(b, []byte(`listen = "`+c.cfg.Gateways["gw1"].Listen+`"`), []byte(`listen = "127.0.0.1:1"`), 1)
	if err := os.WriteFile(c.Config, moved, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := c.runReload(t, "slave", "-node", "gw1", "-pid", strconv.Itoa(c.PID("gw1")))
	if code != 1 || !strings.Contains(errOut, "reload refused by node gw1; it keeps running config "+c.cfg.Hash+": restart needed: gateway.gw1.listen") {
		t.Fatalf("slave reload of a moved listen: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := c.runReload(t, "appd", "-node", "s1"); code != 0 {
		t.Fatalf("appd reload (its keys unchanged): exit %d, %q", code, errOut)
	}
	_, errOut, code = c.runReload(t, "slave", "-node", "gw1", "-pid", "1")
	if code != 1 || !strings.Contains(errOut, "recorded pid "+strconv.Itoa(c.PID("gw1"))+", not 1") {
		t.Fatalf("slave reload -pid 1: exit %d, stderr %q", code, errOut)
	}
	if err := os.WriteFile(c.Config, append(moved, []byte("\n[broker\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = c.runReload(t, "broker")
	if code != 1 || !strings.Contains(errOut, "reload refused") || !strings.Contains(errOut, "config.toml:") {
		t.Fatalf("broker reload of an invalid file: exit %d, stderr %q", code, errOut)
	}
}

// Each daemon tells systemd it is ready (READY=1) and, when systemd
// asks for a watchdog (WATCHDOG_USEC), pings it (WATCHDOG=1), through
// NOTIFY_SOCKET.
func TestSystemdReadyAndWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	counts := map[string]int{}
	buf := make([]byte, 256)
	deadline := time.Now().Add(15 * time.Second)
	for counts["READY=1"] < 3 || counts["WATCHDOG=1"] < 9 {
		conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %v: %v", counts, err)
		}
		counts[string(buf[:n])]++
	}
	t.Logf("notifications: %v", counts)
}
