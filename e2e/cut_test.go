package e2e

import (
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/internal/testutil"
)

func TestNetworkCutDetachesAndResumes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"},
		GatewayConfig: map[string]string{"gw1": "alive_interval = \"200ms\"\nalive_count_max = 2"}})
	proxy, cut := testutil.Partition(t, c.GatewayAddr("gw1"))
	client, err := ssh.Dial("tcp", proxy, &ssh.ClientConfig{
		User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(c.Alice)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := Open(t, client, "pid", "xterm", 24, 80)
	r.WaitFor("24 80")
	pid := lastPID(t, r)
	c.SessionOf(pid, control.StateAttached)
	cut()
	// The gateway stops hearing keepalive replies (every 200ms, 2 missed)
	// and closes the connection; appd detaches the session.
	c.SessionOf(pid, control.StateDetached)

	again, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	back := Open(t, again, "resume", "xterm", 24, 80)
	back.Stdin.Write([]byte("after-cut\r"))
	back.WaitFor("got:after-cut")
	if got := c.SessionOf(pid, control.StateAttached).PID; got != pid {
		t.Fatalf("resumed pid %d, want %d", got, pid)
	}
}
