package appd

import (
	"bufio"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"switchyard/control"
	"switchyard/internal/testutil"
)

const procStat = "cpu  1000 0 1000 7000 1000 0 0 0 0 0\n"

// TestLoadProbeSessionMembers: a session's CPU is that of all its
// processes, children reaped in between included, and not that of another
// session.
func TestLoadProbeSessionMembers(t *testing.T) {
	dir := t.TempDir()
	sessions := []control.SessionInfo{{PID: 101, App: "script"}}
	fakeProc(t, dir, "1.00 1 1 1/1 1\n", procStat, map[int]string{
		101: memberStat(101, 101, 1, 1, 0, 0), 150: memberStat(150, 101, 50, 0, 0, 0),
		151: memberStat(151, 101, 10, 0, 0, 0), 200: memberStat(200, 200, 1000, 0, 0, 0)})
	p := &LoadProbe{Root: dir, CPUs: 2}
	t0 := time.Unix(1000, 0)
	p.Measure(t0, sessions)
	// 2 s later: 150 ran 30 ticks more and was reaped by the leader (its
	// 80 ticks now in the leader's cutime), 151 ran 20 more, 152 was born
	// and ran 5; 200, another session, ran 2000.
	if err := os.RemoveAll(filepath.Join(dir, "150")); err != nil {
		t.Fatal(err)
	}
	fakeProc(t, dir, "1.00 1 1 1/1 1\n", procStat, map[int]string{
		101: memberStat(101, 101, 1, 1, 70, 10), 151: memberStat(151, 101, 30, 0, 0, 0),
		152: memberStat(152, 101, 3, 2, 0, 0), 200: memberStat(200, 200, 3000, 0, 0, 0)})
	l := p.Measure(t0.Add(2*time.Second), sessions)
	if want := 0.55 / 2; math.Abs(l.AppCPU["script"]-want) > 1e-9 {
		t.Fatalf("learned %v, want script %v", l.AppCPU, want)
	}
}

// TestLoadProbeShortInterval: a second report a moment after the first
// (appd reports to each broker in turn) carries what the first measured,
// however many ticks fell in between.
func TestLoadProbeShortInterval(t *testing.T) {
	dir := t.TempDir()
	sessions := []control.SessionInfo{{PID: 101, App: "tick"}}
	fakeProc(t, dir, "1.00 1 1 1/1 1\n", procStat, map[int]string{101: pidStat(101, 0, 0)})
	p := &LoadProbe{Root: dir, CPUs: 2}
	t0 := time.Unix(1000, 0)
	p.Measure(t0, sessions)
	fakeProc(t, dir, "1.00 1 1 1/1 1\n", "cpu  1100 0 1100 7150 1050 0 0 0 0 0\n", map[int]string{101: pidStat(101, 2, 0)})
	t1 := t0.Add(2 * time.Second)
	first := p.Measure(t1, sessions)
	if first.CPU != 0.5 || math.Abs(first.AppCPU["tick"]-0.01) > 1e-9 {
		t.Fatalf("after 2 s: %+v, want CPU 0.5, tick 0.01", first)
	}
	// 1 ms later: one more tick (10 CPUs over 1 ms), and a busy /proc/stat.
	fakeProc(t, dir, "1.00 1 1 1/1 1\n", "cpu  1102 0 1100 7150 1050 0 0 0 0 0\n", map[int]string{101: pidStat(101, 3, 0)})
	again := p.Measure(t1.Add(time.Millisecond), sessions)
	if again.CPU != first.CPU || again.AppCPU["tick"] != first.AppCPU["tick"] {
		t.Fatalf("1 ms later: %+v, want what was measured at 2 s: %+v", again, first)
	}
	// A second after the first report, that tick is learned over the second.
	l := p.Measure(t1.Add(time.Second), sessions)
	if want := 0.01; math.Abs(l.AppCPU["tick"]-want) > 1e-9 {
		t.Fatalf("a second later: tick %v, want %v", l.AppCPU["tick"], want)
	}
}

// TestLoadProbeBound: a session's rate is at most the CPUs there are (a
// long-lived child's whole life lands in its parent's cutime when it is
// reaped), and a session whose processes left it counts as idle.
func TestLoadProbeBound(t *testing.T) {
	dir := t.TempDir()
	sessions := []control.SessionInfo{{PID: 101, App: "build"}, {PID: 102, App: "daemon"}}
	fakeProc(t, dir, "1.00 1 1 1/1 1\n", procStat, map[int]string{
		101: pidStat(101, 0, 0), 102: pidStat(102, 0, 0), 103: memberStat(103, 102, 500, 0, 0, 0)})
	p := &LoadProbe{Root: dir, CPUs: 4}
	t0 := time.Unix(1000, 0)
	p.Measure(t0, sessions)
	// 103 called setsid(2): its 500 ticks leave session 102.
	fakeProc(t, dir, "1.00 1 1 1/1 1\n", procStat, map[int]string{
		101: memberStat(101, 101, 0, 0, 100000, 0), 102: pidStat(102, 1, 0), 103: memberStat(103, 103, 700, 0, 0, 0)})
	l := p.Measure(t0.Add(2*time.Second), sessions)
	if l.AppCPU["build"] != 4 || l.AppCPU["daemon"] != 0 {
		t.Fatalf("learned %v, want build 4 (all CPUs), daemon 0", l.AppCPU)
	}
}

// appSession is an app run as appd runs it (in a session of its own)
// under sh, waiting for "go" on its input.
type appSession struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startAppSession(t *testing.T, script string) *appSession {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &appSession{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	return a
}

func (a *appSession) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(a.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// leaderTicks is utime+stime+cutime+cstime of pid, from /proc.
func leaderTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	st, ok := ParsePIDStat(b)
	if !ok {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return st.Ticks
}

// tickSlack is how far a sum of four /proc times, each rounded down to a
// clock tick, may fall from the exact sum: under four ticks a reading.
const tickSlack = 4.0 / clockTicks

// TestLoadProbeForkingApp: sessions of a shell that forks sleep 100 times
// (the work is all in short-lived children) are learned at the CPU the
// kernel says they used, and well under the CPUs there are.
func TestLoadProbeForkingApp(t *testing.T) {
	const n = 4
	// 100 sleeps of 10 ms: the work lasts over a second, so the probe
	// learns from it (minLearn).
	script := `read go; i=0; while [ $i -lt 100 ]; do echo >/dev/null; sleep 0.01; i=$((i+1)); done; echo done; read quit`
	var apps []*appSession
	var sessions []control.SessionInfo
	for range n {
		a := startAppSession(t, script)
		apps = append(apps, a)
		sessions = append(sessions, control.SessionInfo{PID: a.cmd.Process.Pid, App: "ticker"})
	}
	p := &LoadProbe{}
	t0 := time.Now()
	p.Measure(t0, sessions)
	var before float64 // CPU seconds the sessions used before t0: sh starting, blocked reading
	for _, a := range apps {
		before += float64(leaderTicks(t, a.cmd.Process.Pid)) / clockTicks
		a.say(t, "go")
	}
	for _, a := range apps {
		if line := testutil.Recv(t, a.lines, waitTimeout, "the loop's end"); line != "done" {
			t.Fatalf("app said %q, want done", line)
		}
	}
	t1 := time.Now()
	l := p.Measure(t1, sessions)
	again := p.Measure(time.Now(), sessions) // the next broker's report
	var used float64                         // CPU seconds, from wait4(2): each app and its reaped children
	for _, a := range apps {
		a.say(t, "quit")
		if err := a.cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		used += (a.cmd.ProcessState.UserTime() + a.cmd.ProcessState.SystemTime()).Seconds()
	}
	used -= before
	est, cpus := l.AppCPU["ticker"], float64(p.cpus())
	learned := est * n * t1.Sub(t0).Seconds() // CPU seconds the estimate stands for
	t.Logf("%d sessions on %v CPUs: learned %.4f CPU a session (%.3f s of CPU; wait4 says %.3f s), then %.4f",
		n, cpus, est, learned, used, again.AppCPU["ticker"])
	if !(est > 0) || est >= cpus/4 {
		t.Errorf("learned %v CPU a session, want above 0 and well under the %v CPUs", est, cpus)
	}
	if slack := n*tickSlack + 0.02; math.Abs(learned-used) > slack {
		t.Errorf("learned %.3f s of CPU over the interval, wait4 says the sessions used %.3f s (slack %.3f s)", learned, used, slack)
	}
	if a := again.AppCPU["ticker"]; !(a <= est) {
		t.Errorf("the next report's estimate %v, want at most %v (nothing ran since)", a, est)
	}
}

// TestLoadProbeBusyApp: a session spinning in sh is learned at what it
// used, bounded by one CPU, however much of one the machine gave it.
func TestLoadProbeBusyApp(t *testing.T) {
	a := startAppSession(t, `read go; while :; do :; done`)
	pid := a.cmd.Process.Pid
	sessions := []control.SessionInfo{{PID: pid, App: "spin"}}
	p := &LoadProbe{}
	t0 := time.Now()
	p.Measure(t0, sessions)
	start := leaderTicks(t, pid) // blocked reading: stays put until "go"
	a.say(t, "go")
	// A second of CPU takes a second at least: the probe learns (minLearn).
	testutil.Eventually(t, 30*time.Second, "a second of CPU", func() bool { return leaderTicks(t, pid) >= start+clockTicks })
	lo := leaderTicks(t, pid)
	t1 := time.Now()
	l := p.Measure(t1, sessions)
	hi := leaderTicks(t, pid)
	dt := t1.Sub(t0).Seconds()
	est := l.AppCPU["spin"]
	low, high := float64(lo-start)/clockTicks/dt-tickSlack/dt, float64(hi-start)/clockTicks/dt+tickSlack/dt
	t.Logf("learned %.3f CPU; /proc says %.3f-%.3f", est, low, high)
	if est < low || est > high {
		t.Errorf("learned %.3f CPU, /proc says the session used %.3f to %.3f", est, low, high)
	}
	if est > 1+tickSlack/dt {
		t.Errorf("learned %.3f CPU for one spinning process", est)
	}
}

// BenchmarkSessionTicks scans this machine's /proc for one session's
// processes, as each learning interval does.
func BenchmarkSessionTicks(b *testing.B) {
	want := map[int]bool{os.Getpid(): true}
	for b.Loop() {
		sessionTicks("/proc", want)
	}
}
