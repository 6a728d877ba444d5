package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"switchyard/internal/sshtest"
)

func TestPTYSessionSeesTermSizeAndRunsWhereBrokerSays(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := Open(t, client, "pid", "xterm-256color", 31, 97)
	r.WaitFor("31 97")
	out, _ := r.Output()
	if !strings.Contains(out, "term=xterm-256color") {
		t.Fatalf("TERM did not reach the app: %q", out)
	}
	pid := regexp.MustCompile(`pid=(\d+)`).FindStringSubmatch(out)
	if pid == nil {
		t.Fatalf("no pid in %q", out)
	}
	var found bool
	c.Eventually("the broker's status to show the session's PID", func() bool {
		for _, s := range c.Status().Sessions {
			if strconv.Itoa(s.PID) == pid[1] && s.User == "alice" && s.App == "pid" && s.Gateway == "gw1" && s.Server != "" {
				found = true
			}
		}
		return found
	})
	fmt.Fprintf(r.Stdin, "hello\r")
	r.WaitFor("got:hello")
}

func TestWindowChangeReachesAppAsSIGWINCH(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := Open(t, client, "winch", "vt100", 24, 80)
	r.WaitFor("ready")
	if err := r.Session.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	r.WaitFor("size=50 132")
	io.WriteString(r.Stdin, "\x03") // Ctrl-C through the PTY's line discipline
	r.WaitFor("got-int")
	if status, _ := r.Wait(); status != 130 {
		t.Fatalf("exit status %d, want 130", status)
	}
}

func TestExitStatusAndSignal(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "bob", c.Bob)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if status, _ := Open(t, client, "status", "xterm", 24, 80).Wait(); status != 7 {
		t.Fatalf("pty: exit status %d, want 7", status)
	}
	if status, _ := Open(t, client, "status", "", 0, 0).Wait(); status != 7 {
		t.Fatalf("batch: exit status %d, want 7", status)
	}
	r := Open(t, client, "suicide", "xterm", 24, 80)
	if _, sig := r.Wait(); sig != "TERM" {
		out, _ := r.Output()
		t.Fatalf("exit signal %q, want TERM (output %q)", sig, out)
	}
}

func TestRawPTYBytesPassUnchanged(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "alice", c.Alice)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r := Open(t, client, "raw", "xterm", 24, 80)
	r.Wait()
	out, _ := r.Output()
	if out != "a\nb\r\nc" {
		t.Fatalf("PTY bytes changed in transit: got %q, want %q", out, "a\nb\r\nc")
	}
}

func TestBatchIsExactAndSeparate(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	client, err := c.Dial("gw1", "cat", c.Alice) // login names the app
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	if err := s.Start(""); err != nil {
		t.Fatal(err)
	}
	const size = 100 << 20
	sent, got := sha256.New(), sha256.New()
	go func() {
		io.Copy(io.MultiWriter(stdin, sent), io.LimitReader(rand.Reader, size))
		stdin.Close() // EOF must reach cat, which then exits 0
	}()
	n, err := io.Copy(got, stdout)
	if err != nil || n != size {
		t.Fatalf("received %d bytes (%v), want %d", n, err, size)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("cat did not exit cleanly: %v", err)
	}
	if fmt.Sprintf("%x", sent.Sum(nil)) != fmt.Sprintf("%x", got.Sum(nil)) {
		t.Fatal("sha256 of the bytes back differs from the bytes sent")
	}

	r := Open(t, client, "split", "", 0, 0)
	r.Wait()
	out, errOut := r.Output()
	if out != "out\n" || errOut != "err\n" {
		t.Fatalf("stdout %q stderr %q, want \"out\\n\" and \"err\\n\"", out, errOut)
	}
}

func TestUnknownForbiddenAndArgs(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	tests := []struct {
		login, cmd string
		status     int
		stderr     string
		stdout     string
	}{
		{"alice", "nosuchapp", 64, `switchyard: no app named "nosuchapp"`, ""},
		{"bob", "secret", 77, "switchyard: user bob may not run secret", ""},
		{"alice", "status now", 64, "takes no arguments", ""},
		{"alice", "echo one two", 0, "", "one two\n"},
	}
	for _, tt := range tests {
		t.Run(tt.login+" "+tt.cmd, func(t *testing.T) {
			signer := c.Alice
			if tt.login == "bob" {
				signer = c.Bob
			}
			client, err := c.Dial("gw1", tt.login, signer)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			r := Open(t, client, tt.cmd, "", 0, 0)
			status, _ := r.Wait()
			out, errOut := r.Output()
			if status != tt.status || !strings.Contains(errOut, tt.stderr) || out != tt.stdout {
				t.Fatalf("status %d stdout %q stderr %q; want %d, %q, stderr containing %q", status, out, errOut, tt.status, tt.stdout, tt.stderr)
			}
			if strings.Count(errOut, "\n") > 1 {
				t.Fatalf("user error is more than one line: %q", errOut)
			}
		})
	}
}

func TestWrongKeyAndWrongUserRefused(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	if _, err := c.Dial("gw1", "alice", sshtest.NewSigner(t)); err == nil {
		t.Fatal("an unknown key was admitted")
	}
	if _, err := c.Dial("gw1", "alice", c.Bob); err == nil {
		t.Fatal("bob's key logged in as alice")
	}
}
