package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/daemon"
)

// netns makes a network namespace joined to the host by a veth pair:
// host side hostIP/24, namespace side nsIP/24. cut takes the host side
// down: packets vanish both ways with no FIN and no RST, a partition.
func netns(t *testing.T) (ns, hostIP, nsIP string, cut func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2)")
	}
	id := os.Getpid() % 10000
	ns, host, peer := fmt.Sprintf("sy%d", id), fmt.Sprintf("syh%d", id), fmt.Sprintf("syn%d", id)
	hostIP, nsIP = "10.213.7.1", "10.213.7.2"
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", host).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", host, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns},
		{"addr", "add", hostIP + "/24", "dev", host},
		{"link", "set", host, "up"},
		{"-n", ns, "addr", "add", nsIP + "/24", "dev", peer},
		{"-n", ns, "link", "set", peer, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := run(args...); err != nil {
			t.Skipf("cannot build a network namespace here: %v", err)
		}
	}
	return ns, hostIP, nsIP, func() {
		if err := run("link", "set", host, "down"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFaultPartitionedServer puts appd s1 in its own network namespace
// and cuts its link mid-session: the user is told in one line, the broker
// marks s1 down, and new sessions go to s2.
func TestFaultPartitionedServer(t *testing.T) {
	ns, hostIP, nsIP, cut := netns(t)
	ports := freeAddrs(t, 2)
	port := func(a string) string { return a[strings.LastIndexByte(a, ':')+1:] }
	c := newProcCluster(t, []string{"gw1"}, []string{"s1", "s2"}, procOptions{
		Addr:   map[string]string{"broker": hostIP + ":" + port(ports[0]), "s1": nsIP + ":" + port(ports[1])},
		Prefix: map[string][]string{"s1": {"ip", "netns", "exec", ns}},
	})
	client := c.Dial("gw1")
	// A session on s1, the server about to be cut off: drain s2 meanwhile.
	drain := func(verb string) {
		if err := daemon.Broker(context.Background(), []string{verb, "-config", c.Config, "s2"}, daemon.Env{Stdout: io.Discard}); err != nil {
			t.Fatalf("%s s2: %v", verb, err)
		}
	}
	drain("drain")
	r := Open(t, client, "pid", "xterm", 24, 80)
	r.WaitFor("24 80")
	if got := c.serverOf(lastPID(t, r)); got != "s1" {
		t.Fatalf("session placed on %s with s2 drained", got)
	}
	drain("undrain")
	start := time.Now()
	cut()
	status, _ := r.Wait()
	_, errOut := r.Output()
	if status != 69 || !strings.HasPrefix(errOut, "switchyard: lost the link to server s1; if the app still runs it is detached, resume with: ssh -t ") {
		t.Fatalf("after the partition: status %d, stderr %q", status, errOut)
	}
	t.Logf("the user was told %v after the cut", time.Since(start).Round(100*time.Millisecond))
	c.Eventually("s1 marked down", func() bool { return !c.serverUp("s1") })
	for range 3 {
		x := Open(t, client, "pid", "xterm", 24, 80)
		x.WaitFor("24 80")
		if got := c.serverOf(lastPID(t, x)); got != "s2" {
			t.Fatalf("placed on %s while s1 is cut off", got)
		}
		x.Session.Close()
	}
	c.Signal("s1", syscall.SIGKILL) // its app ends with its PTY
}
