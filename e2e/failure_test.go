package e2e

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
	"switchyard/transport"
)

func TestBrokerDownIsOneClearLine(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	c.Stop("broker")
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := Open(t, client, "cat", "", 0, 0)
	status, _ := r.Wait()
	_, errOut := r.Output()
	if status != 69 || errOut != "switchyard: broker unavailable\n" {
		t.Fatalf("status %d stderr %q; want 69 and \"switchyard: broker unavailable\"", status, errOut)
	}
}

func TestBrokerRestartKeepsSessionsAndRelearnsThem(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := Open(t, client, "pid", "xterm", 24, 80)
	r.WaitFor("24 80")
	c.Stop("broker")
	c.Start("broker")
	c.Eventually("the restarted broker to know the running session", func() bool {
		st, err := c.tryStatus()
		return err == nil && len(st.Sessions) == 1 && st.Sessions[0].PID > 0 && st.Sessions[0].App == "pid"
	})
	r.Stdin.Write([]byte("still-here\r"))
	r.WaitFor("got:still-here")
}

func TestServerDeathMidSessionAndFailover(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1", "s2"}})
	client, r, server := c.runningPID(t)
	c.Stop(server)
	status, _ := r.Wait()
	_, errOut := r.Output()
	if status != 69 || !strings.Contains(errOut, "switchyard: lost the link to server "+server+";") {
		t.Fatalf("status %d stderr %q; want 69 and a line saying the link to %s was lost", status, errOut, server)
	}
	c.Eventually("the broker to mark "+server+" down", func() bool {
		for _, s := range c.Status().Servers {
			if s.Name == server {
				return !s.Healthy
			}
		}
		return false
	})
	before := len(c.Status().Decisions)
	for range 4 {
		r := Open(t, client, "pid", "xterm", 24, 80)
		r.WaitFor("24 80")
		r.Session.Close()
	}
	after := c.Status().Decisions
	if len(after) != before+4 {
		t.Fatalf("%d decisions, want %d", len(after), before+4)
	}
	for _, d := range after[before:] {
		if d.Server == server || d.Server == "" {
			t.Fatalf("placement after %s died: %+v", server, d)
		}
	}
}

func TestUnlistedNodeKeyRefused(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	key, err := c.cfg.NodeKey("s1")
	if err != nil {
		t.Fatal(err)
	}
	// A stranger claiming to be gateway gw1 with its own key.
	_, err = transport.Dial(context.Background(), transport.Identity{Name: "gw1", Signer: sshtest.NewSigner(t)},
		"s1", c.lns["s1"].Addr().String(), key)
	if err == nil {
		t.Fatal("appd admitted a node key the config does not list")
	}
	bkey, _ := c.cfg.NodeKey("broker")
	_, err = transport.Dial(context.Background(), transport.Identity{Name: "s1", Signer: sshtest.NewSigner(t)},
		"broker", c.lns["broker"].Addr().String(), bkey)
	if err == nil {
		t.Fatal("broker admitted a node key the config does not list")
	}
}

// runningPID logs alice in at gw1, starts the pid app in a PTY, and
// returns the client, the run and the server the broker lists it on.
func (c *Cluster) runningPID(t *testing.T) (*ssh.Client, *Run, string) {
	t.Helper()
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	r := Open(t, client, "pid", "xterm", 24, 80)
	r.WaitFor("24 80")
	var server string
	c.Eventually("the session in the status view", func() bool {
		for _, s := range c.Status().Sessions {
			server = s.Server
		}
		return server != ""
	})
	return client, r, server
}
