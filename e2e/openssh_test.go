package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// These tests drive the stock OpenSSH client, as users do.

func TestOpenSSHBatchIsExact(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	o := GatewayOpenSSH(t, c, "gw1")
	alice := o.Key(t, "alice", c.Alice)
	in := filepath.Join(t.TempDir(), "in")
	data := make([]byte, 8<<20)
	if _, err := io.ReadFull(rand.Reader, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, errOut, code := o.Run(t, f, alice, "-T", o.At("cat"))
	if code != 0 {
		t.Fatalf("ssh -T cat@gw < file: exit %d, stderr %q", code, errOut)
	}
	if len(out) != len(data) || sha256.Sum256(out) != sha256.Sum256(data) {
		t.Fatalf("got %d bytes back, want the %d sent (sha256 differs)", len(out), len(data))
	}
}

func TestOpenSSHExitStatus(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	o := GatewayOpenSSH(t, c, "gw1")
	bob := o.Key(t, "bob", c.Bob)
	if _, errOut, code := o.Run(t, nil, bob, "-T", o.At("status")); code != 7 {
		t.Errorf("ssh status@gw: exit %d, want 7 (stderr %q)", code, errOut)
	}
	out, errOut, code := o.Run(t, nil, bob, "-T", o.At("bob"), "nosuchapp")
	lines := strings.Split(strings.TrimSuffix(string(errOut), "\n"), "\n")
	if code != 64 || len(out) != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "switchyard: ") {
		t.Errorf("ssh gw nosuchapp: exit %d stdout %q stderr %q; want 64, nothing, one line \"switchyard: ...\"", code, out, errOut)
	}
}

func TestOpenSSHWrongKeyRefused(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	o := GatewayOpenSSH(t, c, "gw1")
	_, errOut, code := o.Run(t, nil, o.Stranger(t), "-T", o.At("alice"), "cat")
	if code != 255 || !bytes.Contains(errOut, []byte("Permission denied")) {
		t.Fatalf("unknown key: exit %d stderr %q; want 255 and permission denied", code, errOut)
	}
}

func TestOpenSSHInteractiveInTmux(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	o := GatewayOpenSSH(t, c, "gw1")
	alice := o.Key(t, "alice", c.Alice)
	x := NewTmux(t)

	x.Start("pid", 100, 30, append([]string{"ssh"}, o.Args(alice, "-tt", o.At("pid"))...))
	screen := x.WaitText("pid", "30 100")
	term := regexp.MustCompile(`term=(\S*)`).FindStringSubmatch(screen)
	want := strings.TrimSpace(x.Cmd("show-options", "-gv", "default-terminal"))
	if term == nil || term[1] == "" || term[1] != want {
		t.Fatalf("TERM did not reach the app (want %q from tmux); pane shows:\n%s", want, screen)
	}

	x.Start("winch", 100, 30, append([]string{"ssh"}, o.Args(alice, "-tt", o.At("winch"))...))
	x.WaitText("winch", "ready")
	x.Cmd("resize-window", "-t", "winch", "-x", "120", "-y", "40")
	x.WaitText("winch", "size=40 120")
	x.Cmd("send-keys", "-t", "winch", "C-c")
	x.WaitText("winch", "got-int")
	if status := x.WaitExit("winch"); status != 130 {
		t.Fatalf("ssh exited %d after Ctrl-C, want 130 (the app's status)", status)
	}
}

func TestOpenSSHFullScreenTop(t *testing.T) {
	if _, err := exec.LookPath("top"); err != nil {
		t.Skip("top is not installed (procps)")
	}
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"}})
	o := GatewayOpenSSH(t, c, "gw1")
	alice := o.Key(t, "alice", c.Alice)
	x := NewTmux(t)
	x.Start("top", 100, 30, append([]string{"ssh"}, o.Args(alice, "-t", o.At("top"))...))
	x.WaitScreen("top", "top's header", func(s string) bool {
		return strings.Contains(s, "load average") && strings.Contains(s, "Tasks:")
	})
	x.Cmd("send-keys", "-t", "top", "q")
	if status := x.WaitExit("top"); status != 0 {
		t.Fatalf("ssh exited %d after q in top, want 0; pane shows:\n%s", status, x.Screen("top"))
	}
}
