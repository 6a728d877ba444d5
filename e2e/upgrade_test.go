package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyBinaries copies the built binaries into a directory of the test's
// own, whose slave the test may replace.
func copyBinaries(t *testing.T) string {
	t.Helper()
	src, dir := buildBinaries(t), t.TempDir()
	for _, name := range []string{"broker", "slave", "appd"} {
		copyFile(t, filepath.Join(src, name), filepath.Join(dir, name))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// replaceSlave builds the slave afresh to a temporary name in dir and
// renames it over dir/slave, as a package manager does: the running
// process keeps the old file.
func replaceSlave(t *testing.T, dir string) {
	t.Helper()
	tmp := filepath.Join(dir, ".slave.new")
	if out, err := exec.Command("go", "build", "-o", tmp, "../cmd/slave").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "slave")); err != nil {
		t.Fatal(err)
	}
}

var newPIDRE = regexp.MustCompile(`msg="upgrade: the new gateway process serves; this one drains".*new_pid=(\d+)`)

// upgrade sends SIGUSR2 to a gateway's process and waits until the new
// process it started serves. It returns the old process, which drains
// and exits by itself, and the new one's pid, killed at cleanup.
func (c *ProcCluster) upgrade(name string) (old *exec.Cmd, newPID int) {
	c.t.Helper()
	c.mu.Lock()
	old = c.procs[name]
	c.mu.Unlock()
	log := filepath.Join(c.Dir, name+".log")
	if err := old.Process.Signal(syscall.SIGUSR2); err != nil {
		c.t.Fatal(err)
	}
	c.Eventually("the new gateway process serves", func() bool {
		b, _ := os.ReadFile(log)
		m := newPIDRE.FindSubmatch(b)
		if m != nil {
			newPID, _ = strconv.Atoi(string(m[1]))
		}
		return m != nil
	})
	c.t.Cleanup(func() { syscall.Kill(newPID, syscall.SIGKILL) })
	return old, newPID
}

// upgradeDrain is the drain deadline of the upgrade test's gateway.
const upgradeDrain = 5 * time.Second

// TestGatewayUpgradeInPlace: a stock ssh client logs in 20 times a second
// through gw1, and 8 x/crypto clients as fast as they can, while gw1's
// binary is replaced by a new build and the running process gets
// SIGUSR2. The new process, from the new file, takes over the listening
// socket; no login fails or stalls. A PTY session opened
// before stays on the old process and works on; at the drain deadline the
// old process detaches it, its user gets the one line and exit 69, and
// exits itself; the session resumes through the new process, same app
// process.
func TestGatewayUpgradeInPlace(t *testing.T) {
	bin := copyBinaries(t)
	c := newProcCluster(t, []string{"gw1"}, []string{"s1"}, procOptions{Bin: bin,
		GatewayConfig: map[string]string{"gw1": testLimits("") + fmt.Sprintf("upgrade_drain = %q\n", upgradeDrain)}})
	o := c.openSSH("gw1")
	key := o.Key(t, "alice", c.Alice)
	pty := startSSH(t, o, key, "-tt", "-o", "LogLevel=ERROR", o.At("pid"))
	pid := ptyPID(t, pty)

	loop := startLogins(o, key, 50*time.Millisecond)
	c.Eventually("logins under way", func() bool { _, ok := loop.firstSuccessAfter(time.Time{}); return ok })
	replaceSlave(t, bin)
	ham := startHammer(c.cfg.Gateways["gw1"].Listen, c.Alice, 8)
	c.Eventually("parallel logins under way", func() bool { return ham.count() >= 8 })
	signalled := time.Now()
	old, newPID := c.upgrade("gw1")
	atUpgrade := ham.count()
	c.Eventually("parallel logins through the new process", func() bool { return ham.count() >= atUpgrade+40 })
	b, _ := os.ReadFile(filepath.Join(c.Dir, "gw1.log"))
	took := regexp.MustCompile(`new_pid=\d+ took=(\S+)`).FindSubmatch(b)
	t.Logf("new gateway process %d serving; the old one saw it ready %s after starting it", newPID, took[1])
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", newPID)); exe != filepath.Join(bin, "slave") {
		t.Errorf("the new process runs %q, want the new file %s", exe, filepath.Join(bin, "slave"))
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", old.Process.Pid)); !strings.HasSuffix(exe, "(deleted)") {
		t.Errorf("the old process runs %q, want the replaced (deleted) file", exe)
	}
	pty.Write("during-drain\r")
	pty.WaitFor("got:during-drain")
	n, errs := ham.halt()
	for _, err := range errs {
		t.Errorf("parallel login through the upgrade: %v", err)
	}
	t.Logf("%d parallel logins (8 clients) through the handover, %d failed", n, len(errs))

	exited := make(chan struct{})
	go func() { old.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(upgradeDrain + 30*time.Second):
		t.Fatal("the old gateway process did not exit after its drain deadline")
	}
	drained := time.Since(signalled)
	oldGone := time.Now()
	c.Eventually("a login through the new process alone", func() bool { _, ok := loop.firstSuccessAfter(oldGone); return ok })
	loop.waitEnded(time.Now())
	logins := loop.halt()
	failed := 0
	for _, x := range logins {
		if !x.ok {
			failed++
			t.Errorf("login failed: exit %d, stderr %q", x.code, x.stderr)
		}
	}
	t.Logf("%d logins through the upgrade (20/s), %d failed; old process exited %v after SIGUSR2 (drain %v)",
		len(logins), failed, drained.Round(time.Millisecond), upgradeDrain)
	if old.ProcessState.ExitCode() != 0 {
		t.Errorf("old process exit status %d, want 0", old.ProcessState.ExitCode())
	}

	code, _, errOut := pty.Wait()
	m := regexp.MustCompile(`switchyard: this gateway is being upgraded; resume with: (ssh -t -p \d+ alice@127\.0\.0\.1 resume (\S+))\r?\n`).FindStringSubmatch(errOut)
	if code != 69 || m == nil {
		t.Fatalf("PTY session at the drain deadline: exit %d, stderr %q; want 69 and the resume line", code, errOut)
	}
	if gone(pid) {
		t.Fatalf("the app %d ended with its gateway process", pid)
	}
	again := startSSH(t, o, key, "-tt", "-o", "LogLevel=ERROR", o.At("alice"), "resume", m[2])
	again.Write("resumed\r")
	again.WaitFor("got:resumed")
	c.Eventually("the new process logs the resumed session", func() bool {
		b, _ := os.ReadFile(filepath.Join(c.Dir, "gw1.log"))
		return regexp.MustCompile(`msg="session started".*pid=` + strconv.Itoa(pid) + ` id=` + regexp.QuoteMeta(m[2]) + ` .*resumed=true`).Match(b)
	})
}
