package appd

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// threads returns the number of OS threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// Not parallel: other tests' processes would move the thread count.
func TestPTYSessionsHoldNoThread(t *testing.T) {
	m := newTestManager(t, map[string]App{"sleep": {Argv: []string{"sleep", "600"}, User: "nobody"}})
	c := dialManager(t, m)
	spawn(t, c, ptyReq("sleep")) // the threads appd needs anyway exist now
	before := threads(t)
	const n = 64
	for range n {
		spawn(t, c, ptyReq("sleep"))
	}
	waitLen(t, m, n+1)
	// Spawning may add a few threads (fork and exec block theirs); a
	// thread per session waiting for its app would add n.
	after := threads(t)
	t.Logf("threads: %d, then %d with %d more sessions", before, after, n)
	if after-before >= n/4 {
		t.Errorf("threads went from %d to %d with %d more sessions", before, after, n)
	}
}

func TestNotifyExitOfAZombie(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo // wait until it is a zombie, leaving it one
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan bool, 1)
	if err := notifyExit(cmd.Process.Pid, func(zombie bool) { got <- zombie }); err != nil {
		t.Fatalf("notifyExit: %v", err)
	}
	if !<-got {
		t.Error("notifyExit said the process might not be a zombie")
	}
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("Wait = %v, exit code %d, want 7", err, cmd.ProcessState.ExitCode())
	}
}

func TestReapWithoutPidfd(t *testing.T) {
	t.Parallel()
	s := &session{cmd: exec.Command("sh", "-c", "exit 5"), exited: make(chan struct{})}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.reapBlocking()
	<-s.exited
	if s.result != (exitResult{status: 5}) || s.signal(unix.SIGHUP) != errReaped {
		t.Errorf("result %+v, reaped %v; want exit 5, reaped", s.result, s.signal(unix.SIGHUP) == errReaped)
	}
}
