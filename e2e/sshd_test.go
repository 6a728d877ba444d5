package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
)

// sshdPath is where Debian's openssh-server puts sshd; sshd wants an
// absolute path to re-execute itself.
const sshdPath = "/usr/sbin/sshd"

// SSHD is a private stock OpenSSH server on loopback, to compare with.
type SSHD struct {
	Addr    string
	User    string        // the login: the user running the tests
	HostKey ssh.PublicKey // its host key
	PID     int           // the listening sshd's process
}

// haveSSHD reports whether a stock sshd can be started, and why not.
func haveSSHD() (bool, string) {
	if _, err := os.Stat(sshdPath); err != nil {
		return false, sshdPath + " is not installed (openssh-server); CI installs it"
	}
	return true, ""
}

// StartSSHD runs `sshd -D -e -f CONFIG` admitting the authorized keys for
// the current user, and stops it at cleanup. It skips when there is no
// sshd.
func StartSSHD(tb testing.TB, authorized ...ssh.PublicKey) *SSHD {
	tb.Helper()
	if ok, why := haveSSHD(); !ok {
		tb.Skip(why)
	}
	me, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd running as root needs its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	dir := tb.TempDir()
	hostKey := sshtest.WriteKey(tb, filepath.Join(dir, "host_ed25519")).PublicKey()
	var keys []byte
	for _, k := range authorized {
		keys = append(keys, ssh.MarshalAuthorizedKey(k)...)
	}
	writeFile(tb, filepath.Join(dir, "authorized_keys"), keys)
	addr := freeAddrs(tb, 1)[0]
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "sshd_config")
	writeFile(tb, conf, []byte(sshdConfig(port, dir, me.Uid == "0")))
	return runSSHD(tb, conf, &SSHD{Addr: addr, User: me.Username, HostKey: hostKey})
}

func sshdConfig(port, dir string, root bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Port %s\nListenAddress 127.0.0.1\n", port)
	fmt.Fprintf(&b, "HostKey %s\n", filepath.Join(dir, "host_ed25519"))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(dir, "authorized_keys"))
	b.WriteString("PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n" +
		"KbdInteractiveAuthentication no\nPrintMotd no\nPrintLastLog no\nLogLevel ERROR\n")
	if root {
		b.WriteString("PermitRootLogin yes\n")
	}
	return b.String()
}

// runSSHD starts sshd with conf and waits until it accepts connections.
func runSSHD(tb testing.TB, conf string, s *SSHD) *SSHD {
	tb.Helper()
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", conf)
	var mu sync.Mutex
	var logs bytes.Buffer
	cmd.Stdout = lockedWriter{&mu, &logs}
	cmd.Stderr = lockedWriter{&mu, &logs}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start sshd: %v", err)
	}
	s.PID = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() { cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if conn, err := net.Dial("tcp", s.Addr); err == nil {
			conn.Close()
			return s
		}
		select {
		case <-exited:
			mu.Lock()
			defer mu.Unlock()
			tb.Fatalf("sshd exited: %s", logs.Bytes())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatal("sshd did not listen within 10s")
		}
	}
}

func writeFile(tb testing.TB, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}
