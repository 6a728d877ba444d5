package appd

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"switchyard/control"
)

// TestMain lets the test binary play the processes these tests need
// besides itself: the exec shim (ExecArg), appd's keeper (KeeperArg) and
// an appd that spawns one app and waits to be killed (spawnerEnv).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ExecArg {
		RunExec()
	}
	if len(os.Args) > 1 && os.Args[1] == KeeperArg {
		if _, err := RunKeeper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(spawnerEnv) != "" {
		runSpawner()
	}
	os.Exit(m.Run())
}

// startGroup starts an app as appd does, in a session of its own (its
// pid is its session and process group id), with a child in its process
// group and one in a process group of its own, as a shell with job control
// makes them, and waits for the three. It returns the app's pid; cleanup
// kills what is left.
func startGroup(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", `sleep 1000 & perl -e 'setpgrp(0, 0); exec "sleep", 1002' & exec sleep 1001`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id := cmd.Process.Pid
	t.Cleanup(func() {
		for _, pid := range groupMembers(id) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	go cmd.Wait()
	waitUntil(t, "three processes in the session, one in a group of its own", func() bool {
		return len(groupMembers(id)) == 3 && len(groupOnly(id)) == 2
	})
	return id
}

// groupOnly lists the live processes of process group pgid.
func groupOnly(pgid int) []int {
	var out []int
	for _, pid := range groupMembers(pgid) {
		if _, pgrp, _, ok := readStat(pid, make([]byte, 512)); ok && pgrp == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// groupMembers lists the live processes (zombies excluded) of app id: in
// its session or its process group.
func groupMembers(id int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 3 && f[0] != "Z" && (f[2] == strconv.Itoa(id) || f[3] == strconv.Itoa(id)) {
			out = append(out, pid)
		}
	}
	return out
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// waitUntil polls cond until it holds or waitTimeout passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// testKeeper starts a keeper as appd does, from this test binary, at a
// socket in a fresh directory, holding apps for hold once appd goes, and
// returns appd's link to it. Cleanup kills the keeper.
func testKeeper(t *testing.T, hold time.Duration) (*Keeper, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.sock")
	k, held, err := ConnectKeeper(path, os.Args[0], hold, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 0 {
		t.Fatalf("a new keeper holds %d sessions", len(held))
	}
	if k.Version() != keeperProtocol {
		t.Fatalf("the keeper speaks version %d, want %d", k.Version(), keeperProtocol)
	}
	pid := k.PID()
	t.Cleanup(func() { k.Close(); syscall.Kill(pid, syscall.SIGKILL) })
	return k, path
}

func TestKeeperKillsRegisteredGroupsWhenAppdGoes(t *testing.T) {
	k, _ := testKeeper(t, time.Minute)
	registered, removed, never := startGroup(t), startGroup(t), startGroup(t)
	for _, pgid := range []int{registered, removed} {
		if err := k.Add(pgid); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Remove(removed); err != nil {
		t.Fatal(err)
	}
	// Messages that are not the protocol's are ignored, never kill(-1).
	for _, junk := range [][]byte{{opAdd}, []byte("G{\"pid\":1}"), []byte("G{\"pid\":0}"), []byte("K{\"pid\":-1,\"sig\":9}"), []byte("Z{}")} {
		if err := unix.Sendmsg(k.fd, junk, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(groupMembers(registered)); got != 3 {
		t.Fatalf("registered app has %d live processes before appd went, want 3", got)
	}
	pid := k.PID()
	k.Close() // appd goes: nothing is held, so the keeper exits
	waitUntil(t, "the registered app to be gone", func() bool { return len(groupMembers(registered)) == 0 })
	waitUntil(t, "the keeper to exit", func() bool { return !alive(pid) })
	if got := len(groupMembers(removed)); got != 3 {
		t.Errorf("removed app has %d live processes, want 3 (untouched)", got)
	}
	if got := len(groupMembers(never)); got != 3 {
		t.Errorf("unregistered app has %d live processes, want 3 (untouched)", got)
	}
	if err := k.Add(registered); err == nil {
		t.Error("Add after Close succeeded")
	}
}

// TestKeeperProcess: the keeper runs in a session of its own, stays
// small, and refuses a second appd while one is connected.
func TestKeeperProcess(t *testing.T) {
	k, path := testKeeper(t, time.Minute)
	pid := k.PID()
	sid, err := unix.Getsid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if own, _ := unix.Getsid(0); sid != pid || sid == own {
		t.Errorf("keeper %d is in session %d, want its own (ours is %d)", pid, sid, own)
	}
	pss, private := smapsRollup(t, pid)
	t.Logf("keeper %d (this test binary): Pss %d KiB, private %d KiB", pid, pss, private)
	if !raceEnabled && private > 16<<10 {
		t.Errorf("keeper has %d KiB of private memory, want at most 16 MiB", private)
	}
	if _, _, err := ConnectKeeper(path, os.Args[0], time.Minute, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a second appd connected while the first is")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("keeper socket %s: %v, mode %v; want private to its user", path, err, fi.Mode())
	}
}

// smapsRollup returns Pss and the private memory (clean and dirty) of pid,
// in KiB, from /proc/PID/smaps_rollup.
func smapsRollup(t *testing.T, pid int) (pss, private int) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Pss:":
			pss = v
		case "Private_Clean:", "Private_Dirty:":
			private += v
		}
	}
	return pss, private
}

// TestManagerRegistersAppsWithKeeper: a running app's whole process group
// is killed when the keeper's socket closes; an app that ended has been
// removed, so what it left in its group is not.
// TestManagerRegistersAppsWithKeeper: a PTY app the keeper started ends
// with its whole session when appd stops for good (Quit); what a batch
// app that ended left behind is not the keeper's to kill.
func TestManagerRegistersAppsWithKeeper(t *testing.T) {
	k, _ := testKeeper(t, time.Minute)
	m := newTestManager(t, map[string]App{
		"group": sh("set -m; sleep 1000 & echo pid=$$; wait"), // job control: the child gets a group of its own
		"ended": sh("sleep 1000 </dev/null >/dev/null 2>&1 & echo pid=$$"),
	})
	m.Keeper = k
	c := dialManager(t, m)
	ended := spawn(t, c, control.SpawnRequest{App: "ended", User: "alice"})
	if status := ended.exitStatus(); status != 0 {
		t.Fatalf("ended: exit status %d", status)
	}
	waitLen(t, m, 0)
	t.Cleanup(func() { syscall.Kill(-ended.started.PID, syscall.SIGKILL) })
	running := spawn(t, c, ptyReq("group"))
	running.waitOutput("pid=")
	pgid := running.started.PID
	t.Cleanup(func() {
		for _, pid := range groupMembers(pgid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	waitUntil(t, "the app's child in a group of its own", func() bool { return len(groupMembers(pgid)) == 2 })

	if ppid := procPPID(t, pgid); ppid != k.PID() {
		t.Errorf("PTY app %d has parent %d, want the keeper %d", pgid, ppid, k.PID())
	}
	k.Quit() // appd stops for good
	waitUntil(t, "the running app's group to be gone", func() bool { return len(groupMembers(pgid)) == 0 })
	if got := len(groupMembers(ended.started.PID)); got != 1 {
		t.Errorf("the ended app's leftover group has %d live processes, want 1 (not the keeper's to kill)", got)
	}
}

// spawnerEnv makes the test binary an appd that starts spawnerApps
// `sleep`s with startBatch, as user nobody, each from a goroutine of its
// own, prints their pids and waits to be killed.
const spawnerEnv = "SWITCHYARD_TEST_SPAWNER"

const spawnerApps = 5

func runSpawner() {
	acct, err := runAs("sleep", App{User: "nobody"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	pids := make(chan string, spawnerApps)
	for range spawnerApps {
		go func() {
			s := &session{cmd: exec.Command("sleep", "1000")}
			if err := onSpawnThread(func() error { return s.startBatch(acct.cred) }); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			pids <- strconv.Itoa(s.cmd.Process.Pid)
		}()
	}
	var out []string
	for range spawnerApps {
		out = append(out, <-pids)
	}
	// Threads come and go in appd: locked goroutines that end take
	// theirs with them.
	for range 20 {
		done := make(chan struct{})
		go func() { runtime.LockOSThread(); close(done) }()
		<-done
	}
	fmt.Println(strings.Join(out, " "))
	select {}
}

// TestAppDiesWithAppd checks Pdeathsig as appd sets it: apps started as
// another user (Credential) get SIGKILL when appd is killed, and not
// before, though threads of appd ended meanwhile.
func TestAppDiesWithAppd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the app as nobody")
	}
	appd := exec.Command(os.Args[0], "-test.run=^$")
	appd.Env = append(os.Environ(), spawnerEnv+"=1")
	out, err := appd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := appd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { appd.Process.Kill(); appd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("spawner: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("spawner said %q", line)
		}
		pids = append(pids, pid)
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Errorf("app %d died with a thread of appd", pid)
		}
		if uid := procUID(t, pid); uid == 0 {
			t.Errorf("app %d runs as root, want nobody", pid)
		}
	}
	appd.Process.Kill()
	appd.Wait()
	waitUntil(t, "the apps to die with appd", func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
}

// procUID returns the real uid of pid.
func procUID(t *testing.T, pid int) int { return procStatus(t, pid, "Uid:") }

// procPPID returns the parent of pid.
func procPPID(t *testing.T, pid int) int { return procStatus(t, pid, "PPid:") }

// procStatus returns the first number of the line of /proc/PID/status
// that starts with key.
func procStatus(t *testing.T, pid int, key string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatalf("no %s line", key)
	return 0
}

// TestKeeperLostOrStalledNeverBlocksSpawns: a keeper that stopped reading
// (SIGSTOP) makes a send fail after keeperSendTimeout instead of stalling
// appd, then every later send fails at once; and apps still start with a
// keeper that was killed.
func TestKeeperLostOrStalledNeverBlocksSpawns(t *testing.T) {
	stalled, _ := testKeeper(t, time.Minute) // never resumed: killed by cleanup, so that it acts on nothing it was sent
	syscall.Kill(stalled.PID(), syscall.SIGSTOP)
	own := startGroup(t) // the only group registered, in case
	sent := 0
	for ; sent < 1_000_000 && stalled.Add(own) == nil; sent++ {
	}
	if err := stalled.Add(own); err == nil {
		t.Fatalf("sends to a stopped keeper still succeed after %d messages", sent)
	}
	t.Logf("a stopped keeper took %d messages before sends failed", sent)

	dead, _ := testKeeper(t, time.Minute)
	syscall.Kill(dead.PID(), syscall.SIGKILL)
	waitUntil(t, "the keeper to die", func() bool { return !alive(dead.PID()) })
	waitUntil(t, "appd to notice", func() bool { return !dead.Spawns() })
	m := newTestManager(t, map[string]App{"echo": sh("echo hello")})
	m.Keeper = dead
	c := dialManager(t, m)
	s := spawn(t, c, control.SpawnRequest{App: "echo", User: "alice"})
	if status := s.exitStatus(); status != 0 {
		t.Fatalf("app under a dead keeper: exit status %d", status)
	}
	p := spawn(t, c, ptyReq("echo")) // PTY apps too: appd starts them itself
	if status := p.exitStatus(); status != 0 {
		t.Fatalf("PTY app under a dead keeper: exit status %d", status)
	}
	if err := dead.Add(own); err == nil {
		t.Error("send to a dead keeper succeeded")
	}
}
