package e2e

import (
	"os"
	"regexp"
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

// The echo example of config.toml.example runs as its description says,
// with the stock ssh client, through an app configured as the example's.
func TestConfigExampleEchoCommand(t *testing.T) {
	example, err := os.ReadFile("../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(example), "\n[app.echo]\n")
	section, _, _ = strings.Cut(section, "\n\n")
	m := regexp.MustCompile(`description = ".*: ssh (\S+)@gateway ([^"]+)"`).FindStringSubmatch(section)
	if m == nil || !strings.Contains(section, `argv = ["echo"]`) || !strings.Contains(section, "allow_args = true") {
		t.Fatalf("config.toml.example's [app.echo] changed:\n%s", section)
	}
	login, command := m[1], strings.Fields(m[2])
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}}) // its [app.echo] is the example's
	o := GatewayOpenSSH(t, c, "gw1")
	args := append([]string{o.At(login)}, command...)
	out, errOut, code := o.Run(t, nil, o.Key(t, login, c.Alice), args...)
	if want := strings.Join(command[1:], " ") + "\n"; code != 0 || string(out) != want {
		t.Fatalf("ssh %s@gateway %s: exit %d, stdout %q, stderr %q; want %q", login, m[2], code, out, errOut, want)
	}
}
