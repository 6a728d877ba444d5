package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// argon2idHash is the PHC string of password with m=64 MiB, t=1, p=1.
func argon2idHash(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 1, 64<<10, 1, 32)
	return "$argon2id$v=19$m=65536,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
}

// procStatusKB reads a "VmHWM:"-style field of /proc/PID/status, in KiB.
func procStatusKB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// dialFrom opens an SSH connection to addr from the loopback source src.
func dialFrom(src, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: cfg.Timeout}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// TestPasswordFloodMemory sends 1,000 concurrent wrong passwords, from 20
// loopback addresses, to a gateway process whose user has an argon2id
// hash of 64 MiB, while alice logs in with her key once a second. The
// per-address limits are raised so that every attempt reaches the
// password check (the gateway's failed-login count proves it); the
// gateway's peak RSS must stay under 300 MB. The flood is stopped, and
// the gateway killed, as soon as the peak passes the bound, so that an
// unbounded gateway fails the test instead of exhausting the machine.
func TestPasswordFloodMemory(t *testing.T) {
	const attempts, sources, boundKB = 1000, 20, 300 * 1000
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"}, procOptions{
		GatewayConfig: map[string]string{"gw1": "password_auth = true\nauth_fail_limit = 100000\nmax_conns_per_source = 5000\n"},
		UserConfig:    map[string]string{"alice": fmt.Sprintf("password_hash = %q\n", argon2idHash("right"))},
	})
	gw, pid := c.cfg.Gateways["gw1"].Listen, c.PID("gw1")
	baseKB, _ := procStatusKB(pid, "VmRSS")

	var over atomic.Int64 // the peak (kB) seen over the bound
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { // watchdog: the bound, checked every 10 ms
		defer close(watched)
		for {
			if hwm, err := procStatusKB(pid, "VmHWM"); err == nil && hwm > boundKB {
				over.Store(int64(hwm))
				syscall.Kill(pid, syscall.SIGKILL)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	var logins, loginFails atomic.Int64
	loginDone := make(chan struct{})
	go func() { // alice, with her key, once a second during the flood
		defer close(loginDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			client, err := ssh.Dial("tcp", gw, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(c.Alice)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
			logins.Add(1)
			if err != nil {
				loginFails.Add(1)
				t.Logf("key login during the flood failed: %v", err)
			} else {
				client.Close()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	var wg sync.WaitGroup
	var refused, otherErr atomic.Int64
	for i := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("127.0.0.%d", 10+i%sources)
			client, err := dialFrom(src, gw, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password(fmt.Sprintf("wrong%d", i))},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second})
			switch {
			case err == nil:
				client.Close()
				t.Errorf("wrong password %d accepted", i)
			case strings.Contains(err.Error(), "unable to authenticate"):
				refused.Add(1)
			default:
				otherErr.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-watched
	<-loginDone
	if kb := over.Load(); kb > 0 {
		t.Fatalf("gateway peak RSS %d kB passed %d kB during the flood (killed; %d attempts refused so far)", kb, boundKB, refused.Load())
	}
	hwm, err := procStatusKB(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gateway RSS before %d kB, peak %d kB; %d of %d wrong passwords refused, %d other errors; %d key logins, %d failed",
		baseKB, hwm, refused.Load(), attempts, otherErr.Load(), logins.Load(), loginFails.Load())
	if refused.Load() != attempts {
		t.Errorf("%d of %d wrong passwords refused as such (%d other errors)", refused.Load(), attempts, otherErr.Load())
	}
	if loginFails.Load() > 0 || logins.Load() == 0 {
		t.Errorf("%d of %d key logins failed during the flood", loginFails.Load(), logins.Load())
	}
	c.Eventually("the gateway to report every attempt as a failed login", func() bool {
		st, err := c.status()
		return err == nil && len(st.Gateways) == 1 && st.Gateways[0].AuthFailures >= attempts
	})
}

// TestAgentOtherKeysFirst logs in 30 times within a minute with the stock
// ssh and a real ssh-agent holding 6 keys, the authorized one added (so
// offered) last: refused offers must not count toward the per-address
// block (20 failed logins; the window is an hour here, so that the
// test's pace cannot matter).
func TestAgentOtherKeysFirst(t *testing.T) {
	for _, bin := range []string{"ssh", "ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed; CI installs openssh-client", bin)
		}
	}
	dir := shortTempDir(t)
	var keys []string
	for i := range 6 {
		key := filepath.Join(dir, fmt.Sprintf("k%d", i))
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", fmt.Sprintf("k%d", i), "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		keys = append(keys, key)
	}
	pub, err := os.ReadFile(keys[5] + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"},
		GatewayConfig: map[string]string{"gw1": "auth_fail_limit = 20\nauth_fail_window = \"1h\"\n"},
		Extra:         fmt.Sprintf("[user.carol]\nkeys = [%q]\ngroups = [\"staff\"]\n", strings.TrimSpace(string(pub)))})
	o := GatewayOpenSSH(t, c, "gw1")

	sock := filepath.Join(dir, "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agentCmd.Process.Kill(); agentCmd.Wait() })
	c.Eventually("ssh-agent's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	env := append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	for _, key := range keys {
		add := exec.Command("ssh-add", "-q", key)
		add.Env = env
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v\n%s", key, err, out)
		}
	}
	list := exec.Command("ssh-add", "-l")
	list.Env = env
	out, err := list.CombinedOutput()
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); err != nil || len(lines) != 6 || !strings.HasSuffix(lines[5], "k5 (ED25519)") {
		t.Fatalf("ssh-add -l (want the authorized k5 last of 6): %v\n%s", err, out)
	}

	ok := 0
	start := time.Now()
	for i := range 30 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-p", o.Port, "-o", "IdentitiesOnly=no",
			"-o", "IdentityAgent="+sock, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile="+o.known, "-o", "GlobalKnownHostsFile=/dev/null", o.At("carol"), "echo", "hi")
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err == nil && stdout.String() == "hi\n" {
			ok++
		} else {
			t.Logf("login %d: %v, stdout %q, stderr %q", i+1, err, stdout.String(), stderr.String())
		}
	}
	t.Logf("%d of 30 logins succeeded in %v, each after 5 refused agent keys", ok, time.Since(start).Round(time.Millisecond))
	if ok != 30 {
		t.Fatalf("%d of 30 logins succeeded", ok)
	}
}

// TestLogFloodBounded floods a gateway from one address with 400
// connections that hang up at once or log in with a 100 KB login name and
// a key nobody authorized, after 10 that stall until the handshake times
// out; the address is soon blocked and further connections are refused.
// The gateway's log must stay a few lines, summaries included, none over
// 1 KiB.
func TestLogFloodBounded(t *testing.T) {
	const attacker, flood = "127.0.0.9", 400
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1"},
		GatewayConfig: map[string]string{"gw1": "handshake_timeout = \"1s\"\nauth_fail_limit = 20\n"}})
	addr := c.GatewayAddr("gw1")
	c.logMu.Lock()
	from := c.logs.Len()
	c.logMu.Unlock()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attacker)}, Timeout: 10 * time.Second}
	for range 10 {
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	longLogin := strings.Repeat("\x1b[2J", 25000) // 100 KB of terminal escapes
	stranger := sshtest.NewSigner(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range flood {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if i%2 == 0 {
				if conn, err := d.Dial("tcp", addr); err == nil {
					conn.Close()
				}
				return
			}
			client, err := dialFrom(attacker, addr, &ssh.ClientConfig{User: longLogin, Auth: []ssh.AuthMethod{ssh.PublicKeys(stranger)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
			if err == nil {
				client.Close()
				t.Errorf("a stranger logged in")
			}
		}()
	}
	wg.Wait()
	newLines := func() []string {
		c.logMu.Lock()
		defer c.logMu.Unlock()
		return strings.Split(strings.TrimSpace(c.logs.String()[from:]), "\n")
	}
	summarised := func() bool {
		all := strings.Join(newLines(), "\n")
		for _, event := range []string{"connection refused", "auth refused", "closed before authenticating"} {
			if !strings.Contains(all, "more "+event+" from "+attacker) {
				return false
			}
		}
		return strings.Contains(all, "handshake timed out")
	}
	// The summaries come when their 10 s windows end; the lines are
	// counted then (or after 15 s without them, to report the count).
	if !testutil.Poll(15*time.Second, summarised) {
		t.Errorf("the flood's summary lines (or its handshake timeouts) are missing")
	}
	count, longest := 0, 0
	for _, line := range newLines() {
		longest = max(longest, len(line))
		if strings.Contains(line, attacker) {
			count++
		}
	}
	t.Logf("%d connections from %s: %d gateway log lines about it, longest line %d bytes", flood+10, attacker, count, longest)
	if count > 40 {
		t.Errorf("%d log lines for a flood from one address, want at most 40", count)
	}
	if longest > 1024 {
		t.Errorf("a log line of %d bytes", longest)
	}
}
