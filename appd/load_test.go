package appd

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"switchyard/control"
)

// fakeProc writes a canned proc tree: loadavg, stat and one stat per pid.
func fakeProc(t *testing.T, dir, loadavg, stat string, pids map[int]string) {
	t.Helper()
	write := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "loadavg"), loadavg)
	write(filepath.Join(dir, "stat"), stat)
	for pid, text := range pids {
		write(filepath.Join(dir, itoa(pid), "stat"), text)
	}
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// pidStat is the /proc/PID/stat line of a session's leader (its own
// session) with utime and stime, and a command name with a space and a
// parenthesis in it.
func pidStat(pid int, utime, stime int) string {
	return memberStat(pid, pid, utime, stime, 0, 0)
}

// memberStat is the /proc/PID/stat line of a process of session sid with
// utime, stime, cutime and cstime.
func memberStat(pid, sid int, utime, stime, cutime, cstime int) string {
	return itoa(pid) + " (my) app) S 1 " + itoa(sid) + " " + itoa(sid) + " 0 -1 4194560 100 0 0 0 " +
		itoa(utime) + " " + itoa(stime) + " " + itoa(cutime) + " " + itoa(cstime) +
		" 20 0 1 0 12345 1000000 200 18446744073709551615\n"
}

func TestLoadProbe(t *testing.T) {
	dir := t.TempDir()
	sessions := []control.SessionInfo{{PID: 101, App: "build"}, {PID: 102, App: "build"}, {PID: 103, App: "shell"}, {PID: 999, App: "gone"}}
	// user nice system idle iowait irq softirq steal guest guest_nice
	fakeProc(t, dir, "3.00 2.00 1.00 1/100 4242\n", "cpu  1000 0 1000 7000 1000 0 0 0 500 0\ncpu0 1 2 3 4\n",
		map[int]string{101: pidStat(101, 100, 0), 102: pidStat(102, 50, 50), 103: pidStat(103, 10, 0)})
	p := &LoadProbe{Root: dir, CPUs: 4, Set: func() map[string]float64 { return map[string]float64{"db": 0.25} }}
	t0 := time.Unix(1000, 0)
	l := p.Measure(t0, sessions)
	if l.Avg != 0.75 || l.CPU != 0.2 || l.CPUs != 4 {
		t.Fatalf("first measure: %+v, want the load average 0.75 and the CPU in use since boot, 0.2", l)
	}
	if len(l.AppCPU) != 1 || l.AppCPU["db"] != 0.25 {
		t.Fatalf("first measure learned %v, want only the set db 0.25", l.AppCPU)
	}
	// 2 s later: 1000 more jiffies, 250 of them idle; build's two
	// sessions used 2 and 1 CPUs, shell's 0.1.
	fakeProc(t, dir, "3.00 2.00 1.00 1/100 4242\n", "cpu  1500 0 1250 7200 1050 0 0 0 600 0\n",
		map[int]string{101: pidStat(101, 400, 100), 102: pidStat(102, 150, 150), 103: pidStat(103, 30, 0)})
	l = p.Measure(t0.Add(2*time.Second), sessions)
	if l.CPU != 0.75 {
		t.Fatalf("CPU in use %v, want 0.75", l.CPU)
	}
	if math.Abs(l.AppCPU["build"]-1.5) > 1e-9 || math.Abs(l.AppCPU["shell"]-0.1) > 1e-9 || l.AppCPU["db"] != 0.25 {
		t.Fatalf("learned %v, want build 1.5, shell 0.1, db 0.25", l.AppCPU)
	}
	// Another 2 s: build idle, smoothed.
	fakeProc(t, dir, "0.40 2.00 1.00 1/100 4242\n", "cpu  1500 0 1250 8000 1250 0 0 0 600 0\n",
		map[int]string{101: pidStat(101, 400, 100), 102: pidStat(102, 150, 150), 103: pidStat(103, 30, 0)})
	l = p.Measure(t0.Add(4*time.Second), sessions)
	if l.CPU != 0 || l.Avg != 0.1 {
		t.Fatalf("idle: %+v", l)
	}
	if want := 1.5 * (1 - appSmoothing); math.Abs(l.AppCPU["build"]-want) > 1e-9 {
		t.Fatalf("build %v, want %v", l.AppCPU["build"], want)
	}
	// A primed probe's first measure is a delta: 300 jiffies since the
	// priming, 150 of them idle.
	primed := &LoadProbe{Root: dir, CPUs: 4}
	primed.Prime(t0)
	fakeProc(t, dir, "0.40 2.00 1.00 1/100 4242\n", "cpu  1550 0 1350 8100 1300 0 0 0 600 0\n", nil)
	if l := primed.Measure(t0.Add(minSample), nil); l.CPU != 0.5 {
		t.Fatalf("a primed probe's first measure: CPU %v, want 0.5", l.CPU)
	}
	// Unreadable: busy.
	if err := os.Remove(filepath.Join(dir, "stat")); err != nil {
		t.Fatal(err)
	}
	if l = p.Measure(t0.Add(6*time.Second), sessions); l.CPU != UnknownLoad {
		t.Fatalf("unreadable stat: CPU %v, want %v", l.CPU, UnknownLoad)
	}
}

func TestParseProc(t *testing.T) {
	for _, tt := range []struct {
		in          string
		total, idle uint64
		ok          bool
	}{
		{"cpu  1 2 3 4 5 6 7 8 9 10\n", 36, 9, true},
		{"cpu  1 2 3 4\n", 10, 4, true},
		{"cpu0 1 2 3 4 5\n", 0, 0, false},
		{"cpu  1 x 3 4 5\n", 0, 0, false},
		{"", 0, 0, false},
	} {
		total, idle, ok := ParseProcStat([]byte(tt.in))
		if total != tt.total || idle != tt.idle || ok != tt.ok {
			t.Errorf("ParseProcStat(%q) = %d, %d, %v", tt.in, total, idle, ok)
		}
	}
	if v, ok := ParsePIDStat([]byte(memberStat(7, 3, 12, 30, 5, 1))); v != (PIDStat{Session: 3, Ticks: 48}) || !ok {
		t.Errorf("ParsePIDStat = %+v, %v", v, ok)
	}
	for _, in := range []string{"", "7 (x", "7 (x) S 1 2", "7 (x) S 1 2 3 0 -1 0 0 0 0 0 1 2 3",
		"7 (x) S 1 2 x 0 -1 0 0 0 0 0 1 2 3 4", "7 (x) S 1 2 3 0 -1 0 0 0 0 0 1 2 -3 4"} {
		if _, ok := ParsePIDStat([]byte(in)); ok {
			t.Errorf("ParsePIDStat(%q) ok", in)
		}
	}
	for _, tt := range []struct {
		in   string
		err  error
		cpus int
		want float64
	}{
		{"2.00 1 1 1/1 1\n", nil, 4, 0.5}, {"", nil, 4, UnknownLoad}, {"x", nil, 4, UnknownLoad},
		{"-1 1", nil, 4, UnknownLoad}, {"1 1", errors.New("no"), 4, UnknownLoad}, {"1 1", nil, 0, UnknownLoad},
	} {
		if got := ParseLoadavg([]byte(tt.in), tt.err, tt.cpus); got != tt.want {
			t.Errorf("ParseLoadavg(%q, %v, %d) = %v, want %v", tt.in, tt.err, tt.cpus, got, tt.want)
		}
	}
	if v := CPUInUse(100, 50, 100, 50); v != UnknownLoad {
		t.Errorf("no time passed: %v", v)
	}
}

// TestParseMemAvailable reads a whole /proc/meminfo, as a 6.x kernel
// writes it (testdata/meminfo), and refuses what is not its format.
func TestParseMemAvailable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "meminfo"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ParseMemAvailable(b), uint64(24223860*1024); got != want {
		t.Errorf("testdata/meminfo: %d, want %d", got, want)
	}
	for _, in := range []string{
		"",
		"MemTotal:       24683748 kB\nMemFree:        23024208 kB\n", // before Linux 3.14
		"MemAvailable:   x kB\n",
		"MemAvailable:   12 MB\n",
		"MemAvailable:   99999999999999999999 kB\n",
		"MemAvailable:\n",
	} {
		if got := ParseMemAvailable([]byte(in)); got != 0 {
			t.Errorf("ParseMemAvailable(%q) = %d, want 0", in, got)
		}
	}
	if got := ParseMemAvailable([]byte("MemAvailable: 3 kB")); got != 3072 {
		t.Errorf("a last line without a newline: %d, want 3072", got)
	}
}

// TestLoadProbeMemAvailable: Measure reports meminfo under Root, and 0
// once it cannot be read.
func TestLoadProbeMemAvailable(t *testing.T) {
	dir := t.TempDir()
	fakeProc(t, dir, "1.00 1 1 1/1 1\n", "cpu  1 0 1 7 1 0 0 0\n", nil)
	b, err := os.ReadFile(filepath.Join("testdata", "meminfo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meminfo"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &LoadProbe{Root: dir, CPUs: 1}
	if l := p.Measure(time.Unix(1000, 0), nil); l.MemAvail != 24223860*1024 {
		t.Errorf("MemAvail %d, want %d", l.MemAvail, 24223860*1024)
	}
	if err := os.Remove(filepath.Join(dir, "meminfo")); err != nil {
		t.Fatal(err)
	}
	if l := p.Measure(time.Unix(1002, 0), nil); l.MemAvail != 0 {
		t.Errorf("MemAvail %d without meminfo, want 0", l.MemAvail)
	}
}
