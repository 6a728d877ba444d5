package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
)

// rawBanner opens a TCP connection to addr and reports whether the
// server sent its SSH version line (false: closed before the handshake).
func rawBanner(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return conn, err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

func TestLimitHandshakeTimeout(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, GatewayConfig: map[string]string{"gw1": "handshake_timeout = \"300ms\"\n"}})
	conn, ok := rawBanner(t, c.GatewayAddr("gw1"))
	if !ok {
		t.Fatal("no banner")
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, conn) // returns at the server's close
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a connection that never authenticated is still open")
	}
	c.WaitLog("handshake timed out", "after=300ms")
}

func TestLimitMaxAuthTries(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, GatewayConfig: map[string]string{"gw1": "max_auth_tries = 1\n"}})
	_, err := ssh.Dial("tcp", c.GatewayAddr("gw1"), &ssh.ClientConfig{User: "alice", HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Auth: []ssh.AuthMethod{ssh.PublicKeys(sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t), c.Alice)}, Timeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "too many authentication failures") {
		t.Fatalf("dial: %v, want too many authentication failures", err)
	}
}

func TestLimitAuthFailThrottle(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"},
		GatewayConfig: map[string]string{"gw1": "auth_fail_limit = 2\nauth_fail_window = \"1h\"\n"}})
	stranger := sshtest.NewSigner(t)
	for range 2 {
		if client, err := c.Dial("gw1", "alice", stranger); err == nil {
			client.Close()
			t.Fatal("stranger accepted")
		}
	}
	c.WaitLog("client address blocked: too many failed logins", "client=127.0.0.1")
	if client, err := c.Dial("gw1", "alice", c.Alice); err == nil {
		client.Close()
		t.Fatal("a blocked address was let in")
	}
	if _, ok := rawBanner(t, c.GatewayAddr("gw1")); ok {
		t.Fatal("a blocked address got an SSH banner")
	}
	c.WaitLog("connection refused", "too many failed logins; blocked for")
}

func TestLimitConnsPerSource(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, GatewayConfig: map[string]string{"gw1": "max_conns_per_source = 2\n"}})
	first, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Dial("gw1", "bob", c.Bob)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, ok := rawBanner(t, c.GatewayAddr("gw1")); ok {
		t.Fatal("a third connection from 127.0.0.1 was admitted")
	}
	c.WaitLog("connection refused", "too many connections from this address (2)")
	first.Close()
	c.Eventually("a slot to free up", func() bool {
		client, err := c.Dial("gw1", "alice", c.Alice)
		if err == nil {
			client.Close()
		}
		return err == nil
	})
}

func TestLimitSessionsPerUser(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, GatewayConfig: map[string]string{"gw1": "max_sessions_per_user = 2\n"}})
	var held []*Run
	for range 2 {
		client, err := c.Dial("gw1", "alice", c.Alice)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		r := Open(t, client, "cat", "", 0, 0)
		io.WriteString(r.Stdin, "up\n")
		r.WaitFor("up")
		held = append(held, r)
	}
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, errOut, status := runEcho(t, client)
	if status != 69 || errOut != "switchyard: too many sessions for user alice (2)\n" {
		t.Fatalf("third session: status %d, stderr %q", status, errOut)
	}
	bob, err := c.Dial("gw1", "bob", c.Bob)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if out, _, status := runEcho(t, bob); out != "hello\n" || status != 0 {
		t.Fatalf("bob: %q, status %d", out, status)
	}
	held[0].Stdin.Close()
	held[0].Wait()
	// The gateway frees the slot just after the client sees the exit.
	c.Eventually("a session slot for alice after one ended", func() bool {
		out, _, status := runEcho(t, client)
		return out == "hello\n" && status == 0
	})
}

func TestLimitChannelsPerConn(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, GatewayConfig: map[string]string{"gw1": "max_channels_per_conn = 1\n"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := Open(t, client, "cat", "", 0, 0)
	io.WriteString(r.Stdin, "up\n")
	r.WaitFor("up")
	_, err = client.NewSession()
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage || oce.Message != "switchyard: too many sessions on this connection (1)" {
		t.Fatalf("second session: %v", err)
	}
	r.Stdin.Close()
	r.Wait()
	c.Eventually("a channel slot after the first session ended", func() bool {
		s, err := client.NewSession()
		if err == nil {
			s.Close()
		}
		return err == nil
	})
}

func TestLimitIdleTimeout(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}, ExtraApps: []string{"sleepy", "sleepypty"},
		Extra: "[app.sleepy]\nargv = [\"cat\"]\nuser = \"nobody\"\nidle_timeout = \"400ms\"\n" +
			"[app.sleepypty]\nargv = [\"cat\"]\nuser = \"nobody\"\nidle_timeout = \"400ms\"\ngrace = \"1m\"\n"})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := Open(t, client, "sleepy", "", 0, 0)
	io.WriteString(r.Stdin, "still here\n")
	r.WaitFor("still here")
	status, _ := r.Wait()
	if _, errOut := r.Output(); status != 69 || errOut != "switchyard: idle for 400ms; session ended\n" {
		t.Fatalf("batch: status %d, stderr %q", status, errOut)
	}
	r = Open(t, client, "sleepypty", "xterm", 24, 80)
	status, _ = r.Wait()
	_, errOut := r.Output()
	var id string
	c.Eventually("the idle PTY session to be detached, resumable", func() bool {
		for _, s := range c.Status().Sessions {
			if s.App == "sleepypty" && !s.Detached.IsZero() {
				id = s.ID
				return true
			}
		}
		return false
	})
	_, port, _ := net.SplitHostPort(c.GatewayAddr("gw1"))
	if want := "switchyard: idle for 400ms; session detached, resume with: ssh -t -p " + port + " alice@127.0.0.1 resume " + id + "\r\n"; status != 69 || errOut != want {
		t.Fatalf("pty: status %d, stderr %q, want %q", status, errOut, want)
	}
}
