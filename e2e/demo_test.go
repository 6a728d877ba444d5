package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchyard/broker"
	"switchyard/internal/testutil"
)

// demoRun is the README's first command, running: `demo` built from
// cmd/demo, on a copy of config.toml.example moved to free ports.
type demoRun struct {
	cmd    *exec.Cmd
	config string
	state  string
	out    []string // its stdout up to "Stop with Ctrl-C."
}

// The demo binary, built once per test run beside the daemons'.
var (
	demoOnce sync.Once
	demoExe  string
	demoErr  error
)

// startDemo builds and starts the demo with args and waits until it
// prints that it runs. HOME is a fresh directory, so the demo makes its
// own user key rather than taking the tester's.
func startDemo(t *testing.T, args ...string) *demoRun {
	t.Helper()
	dir := t.TempDir()
	demoOnce.Do(func() {
		demoExe = filepath.Join(buildBinaries(t), "demo")
		if out, err := exec.Command("go", "build", "-o", demoExe, "../cmd/demo").CombinedOutput(); err != nil {
			demoErr = fmt.Errorf("go build ./cmd/demo: %v\n%s", err, out)
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	exe := demoExe
	src, err := os.ReadFile("../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	ports := []string{"127.0.0.1:7000", "127.0.0.1:2222", "127.0.0.1:7201", "127.0.0.1:2223", "127.0.0.1:7101", "127.0.0.1:7102"}
	for i, addr := range freeAddrs(t, len(ports)) {
		if !strings.Contains(text, `"`+ports[i]+`"`) {
			t.Fatalf("config.toml.example no longer uses %s; update this test", ports[i])
		}
		text = strings.ReplaceAll(text, `"`+ports[i]+`"`, `"`+addr+`"`)
	}
	d := &demoRun{config: filepath.Join(dir, "config.toml"), state: filepath.Join(dir, "state")}
	if err := os.WriteFile(d.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(exe, append([]string{"-config", d.config, "-state", d.state}, args...)...)
	d.cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"))
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = os.Stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		d.cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited before it ran; printed:\n%s", strings.Join(d.out, "\n"))
			}
			d.out = append(d.out, line)
			if line == "Stop with Ctrl-C." {
				go func() {
					for range lines {
					}
				}()
				return d
			}
		case <-timeout:
			log, _ := os.ReadFile(filepath.Join(d.state, "cluster.log"))
			t.Fatalf("demo not running after 90s; printed:\n%s\nits log ends:\n%s", strings.Join(d.out, "\n"),
				log[max(0, len(log)-4000):])
		}
	}
}

// line returns the first printed line starting with prefix.
func (d *demoRun) line(t *testing.T, prefix string) string {
	t.Helper()
	for _, l := range d.out {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("demo printed no %q line:\n%s", prefix, strings.Join(d.out, "\n"))
	return ""
}

// login runs the printed "Try:" line as a batch command, `echo hello`
// as the demo user, and returns its output and exit status.
func (d *demoRun) login(t *testing.T) (string, int) {
	t.Helper()
	return d.runAs(t, "echo", "hello")
}

// runAs runs the printed "Try:" line as a batch command, cmd as the demo
// user, and returns its output and exit status.
func (d *demoRun) runAs(t *testing.T, cmd ...string) (string, int) {
	t.Helper()
	try := strings.Fields(strings.TrimPrefix(d.line(t, "Try:"), "Try:"))
	args := []string{"-T", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
	for i := 1; i < len(try)-1; i++ { // drop "ssh", "-t" and "top@HOST"
		if try[i] != "-t" {
			args = append(args, try[i])
		}
	}
	host := try[len(try)-1][strings.Index(try[len(try)-1], "@")+1:]
	out, err := exec.Command("ssh", append(append(args, "demo@"+host), cmd...)...).CombinedOutput()
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), status
}

// stop interrupts the demo as Ctrl-C would and checks it exits 0.
func (d *demoRun) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(os.Interrupt)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("demo after Ctrl-C: %v", err)
	}
}

// TestDemoFirstCommand: the README's first command brings up a cluster
// and prints an ssh line that works with the stock client; Ctrl-C stops
// it cleanly.
func TestDemoFirstCommand(t *testing.T) {
	needOpenSSH(t)
	d := startDemo(t)
	if out, status := d.login(t); status != 0 || out != "hello\n" {
		t.Fatalf("the printed ssh line: status %d, output %q", status, out)
	}
	// A second demo on the same state dir says so and exits 1, without
	// claiming to run (and the first still serves).
	second := exec.Command(demoExe, "-config", d.config, "-state", d.state)
	printed, err := second.CombinedOutput()
	if second.ProcessState == nil || second.ProcessState.ExitCode() != 1 ||
		string(printed) != "demo: state dir "+d.state+" is in use by another demo: stop it, or give this one -state DIR\n" {
		t.Fatalf("a second demo on the same state: %v, printed %q", err, printed)
	}
	if out, status := d.login(t); status != 0 || out != "hello\n" {
		t.Fatalf("after the second demo: status %d, output %q", status, out)
	}
	// One SIGHUP reloads every part of the demo: an app added to the file
	// is known to the broker, the gateway and the app servers alike.
	f, err := os.OpenFile(d.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n[app.late]\nargv = [\"echo\", \"late\"]\nuser = \"nobody\"\n")
	f.Close()
	d.cmd.Process.Signal(syscall.SIGHUP)
	var out string
	var status int
	if !testutil.Poll(10*time.Second, func() bool {
		out, status = d.runAs(t, "late")
		return status == 0 && out == "late\n"
	}) {
		t.Fatalf("after one SIGHUP the new app still fails: status %d, output %q", status, out)
	}
	d.stop(t)
}

// TestDemoHAKillTheLeader: `demo -ha` runs three brokers on an embedded
// etcd as processes of their own; kill -9 of the leader, as the demo
// invites, leaves logins working, and Ctrl-C leaves no broker behind.
func TestDemoHAKillTheLeader(t *testing.T) {
	needOpenSSH(t)
	d := startDemo(t, "-ha")
	m := regexp.MustCompile(`(\w+) pid (\d+)`).FindAllStringSubmatch(d.line(t, "Brokers:"), -1)
	pids := map[string]int{}
	for _, g := range m {
		pids[g[1]], _ = strconv.Atoi(g[2])
	}
	if len(pids) != 3 {
		t.Fatalf("brokers printed: %v", m)
	}
	if out, status := d.login(t); status != 0 || out != "hello\n" {
		t.Fatalf("before the kill: status %d, output %q", status, out)
	}
	bin := buildBinaries(t)
	raw, err := exec.Command(filepath.Join(bin, "broker"), "status", "-json", "-config", filepath.Join(d.state, "config-ha.toml"),
		"-state", d.state).Output()
	if err != nil {
		t.Fatal(err)
	}
	var st broker.Status
	if err := json.Unmarshal(raw, &st); err != nil || st.HA == nil || pids[st.HA.Leader] == 0 {
		t.Fatalf("status names no running leader (%v): %s", err, raw)
	}
	syscall.Kill(pids[st.HA.Leader], syscall.SIGKILL)
	start := time.Now()
	out, status := d.login(t) // the gateway waits for the new leader
	t.Logf("first login after kill -9 of leader %s: status %d after %v", st.HA.Leader, status, time.Since(start).Round(time.Millisecond))
	if status != 0 || out != "hello\n" {
		t.Fatalf("after the kill: status %d, output %q", status, out)
	}
	d.stop(t)
	for name, pid := range pids {
		if name != st.HA.Leader && syscall.Kill(pid, 0) == nil {
			t.Errorf("broker %s (pid %d) outlived the demo", name, pid)
		}
	}
	// Run again on the same state directory, as a user would.
	again := startDemo(t, "-ha", "-state", d.state)
	if out, status := again.login(t); status != 0 || out != "hello\n" {
		t.Fatalf("second run: status %d, output %q", status, out)
	}
	again.stop(t)
}

// needOpenSSH skips a test when there is no ssh binary.
func needOpenSSH(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		tb.Skip("the OpenSSH client (ssh) is not installed; CI installs openssh-client")
	}
}
