package sshgate

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"switchyard/internal/sshtest"
)

// opensshClient runs the stock ssh binary against the test gateway.
type opensshClient struct {
	e       *env
	keyFile string
	port    string
}

func newOpenSSH(t *testing.T, e *env) *opensshClient {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh binary")
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	signer := sshtest.WriteKey(t, keyFile)
	dir := e.srv.directory().(*fakeDir)
	e.srv.SetDirectory(&fakeDir{
		keys:  map[string]string{string(signer.PublicKey().Marshal()): "alice"},
		users: dir.users,
		apps:  dir.apps,
	})
	_, port, _ := net.SplitHostPort(e.addr)
	return &opensshClient{e: e, keyFile: keyFile, port: port}
}

// run returns stdout, stderr and ssh's exit code.
func (c *opensshClient) run(t *testing.T, flags ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	args := []string{
		"-F", "/dev/null", "-i", c.keyFile, "-p", c.port,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
	}
	cmd := exec.CommandContext(ctx, "ssh", append(args, flags...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return stdout.String(), stderr.String(), ee.ExitCode()
	default:
		t.Fatalf("ssh %v: %v\n%s", flags, err, stderr.String())
		return "", "", 0
	}
}

func TestOpenSSHClient(t *testing.T) {
	e := newEnv(t)
	c := newOpenSSH(t, e)
	host := "127.0.0.1"

	if out, errOut, code := c.run(t, "-T", "htop@"+host); code != 0 || out != "app=htop user=alice args=\n" {
		t.Errorf("ssh htop@gw: code %d stdout %q stderr %q", code, out, errOut)
	}
	if out, errOut, code := c.run(t, "-tt", "alice@"+host, "raw"); code != 0 || out != "a\nb\r\nc" {
		t.Errorf("ssh -tt gw raw: code %d stdout %q stderr %q", code, out, errOut)
	}
	if _, _, code := c.run(t, "-T", "alice@"+host, "exit7"); code != 7 {
		t.Errorf("exit7: code %d, want 7", code)
	}
	if out, errOut, code := c.run(t, "-T", "alice@"+host); code != 64 || out != "" ||
		!strings.Contains(errOut, "switchyard: no app named; try: ssh -t APP@HOST or ssh HOST APP\n") {
		t.Errorf("no app: code %d stdout %q stderr %q", code, out, errOut)
	}
	if _, _, code := c.run(t, "-T", "bob@"+host, "htop"); code != 255 {
		t.Errorf("login as bob with alice's key: code %d, want 255 (refused)", code)
	}
}
