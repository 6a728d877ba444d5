package e2e

import (
	"strings"
	"testing"
)

// An argument list longer than appd's 64 KiB spawn request cap is the
// user's mistake: status 64 and one plain line, and appd is never asked.
func TestOverlongCommandIsAUsageError(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := Open(t, client, "echo"+strings.Repeat(" word", 20000), "", 0, 0)
	status, _ := r.Wait()
	if _, errOut := r.Output(); status != 64 || errOut != "switchyard: command too long: at most 64 KiB with its environment\n" {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
	c.logMu.Lock()
	logs := c.logs.String()
	c.logMu.Unlock()
	if strings.Contains(logs, "spawn request is") || strings.Contains(logs, "placed") {
		t.Errorf("the over-long command reached the broker or appd:\n%s", logs)
	}
	if out, _, status := runEcho(t, client); out != "hello\n" || status != 0 {
		t.Errorf("a short echo after it: %q, status %d", out, status)
	}
}
