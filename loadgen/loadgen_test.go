package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{ms(1, 2, 3, 4), 0, 1 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 90, 90 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
		}
	}
}

func TestSummarizeSorts(t *testing.T) {
	if Summarize(nil) != nil {
		t.Fatal("Summarize(nil) should be nil")
	}
	s := Summarize([]time.Duration{5, 1, 4, 2, 3})
	want := Summary{N: 5, P50: 3, P90: 5, P99: 5, Max: 5}
	if *s != want {
		t.Fatalf("got %+v, want %+v", *s, want)
	}
}

func TestParseProcSpecs(t *testing.T) {
	got, err := ParseProcSpecs("gateway=12, appd=34,appd=56,sshd=7+")
	if err != nil {
		t.Fatal(err)
	}
	want := []ProcSpec{{"gateway", 12, false}, {"appd", 34, false}, {"appd", 56, false}, {"sshd", 7, true}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if specs, err := ParseProcSpecs(""); err != nil || specs != nil {
		t.Fatalf("empty: %v, %v", specs, err)
	}
	for _, bad := range []string{"12", "=12", "gw=", "gw=x", "gw=0", "gw=-3", "gw=12,", "gw=1++"} {
		if _, err := ParseProcSpecs(bad); err == nil {
			t.Errorf("ParseProcSpecs(%q) accepted", bad)
		}
	}
}

const smapsRollup = `55d0c0a00000-7ffc8a1f7000 ---p 00000000 00:00 0                          [rollup]
Rss:               12852 kB
Pss:                9416 kB
Pss_Dirty:          7012 kB
Pss_Anon:           6964 kB
Shared_Clean:       4396 kB
Private_Dirty:      7012 kB
Swap:                  0 kB
SwapPss:               0 kB
`

func TestParseSmapsRollup(t *testing.T) {
	m, err := parseSmapsRollup(strings.NewReader(smapsRollup))
	if err != nil || m != (Mem{RSS: 12852, PSS: 9416}) {
		t.Fatalf("got %+v, %v", m, err)
	}
	if _, err := parseSmapsRollup(strings.NewReader("Rss: 1 kB\n")); err == nil {
		t.Fatal("no Pss line accepted")
	}
	if _, err := parseSmapsRollup(strings.NewReader("Rss: x kB\nPss: 1 kB\n")); err == nil {
		t.Fatal("bad number accepted")
	}
}

func TestParseStat(t *testing.T) {
	comm, ppid, err := parseStat([]byte("4242 (sshd: a (b)) S 17 4242 4242 0 -1 4194560"))
	if err != nil || comm != "sshd: a (b)" || ppid != 17 {
		t.Fatalf("got %q %d %v", comm, ppid, err)
	}
	if _, _, err := parseStat([]byte("4242 sshd S 17")); err == nil {
		t.Fatal("stat without (comm) accepted")
	}
}

// fakeProc writes a /proc-like tree: pid -> (comm, ppid, rss, pss).
func fakeProc(t *testing.T, procs map[int][4]string) string {
	t.Helper()
	dir := t.TempDir()
	for pid, p := range procs {
		d := filepath.Join(dir, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := strconv.Itoa(pid) + " (" + p[0] + ") S " + p[1] + " 1 1 0 -1\n"
		smaps := "Rss: " + p[2] + " kB\nPss: " + p[3] + " kB\n"
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "smaps_rollup"), []byte(smaps), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMeasureTreeCountsSameProgramOnly(t *testing.T) {
	dir := fakeProc(t, map[int][4]string{
		10: {"sshd", "1", "100", "50"},  // the listener
		11: {"sshd", "10", "200", "20"}, // per connection
		12: {"sshd", "11", "300", "30"}, // the user's sshd
		13: {"sh", "12", "400", "40"},   // the app: not sshd's memory
		14: {"sshd", "13", "500", "5"},  // an sshd below the app still counts
		20: {"slave", "1", "1000", "900"},
		30: {"appd", "1", "10", "9"},
		31: {"appd", "1", "20", "8"},
	})
	specs, _ := ParseProcSpecs("sshd=10+,gateway=20,appd=30,appd=31")
	mems, counts, err := measure(dir, specs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Mem{"sshd": {1100, 105}, "gateway": {1000, 900}, "appd": {30, 17}}
	wantN := map[string]int{"sshd": 4, "gateway": 1, "appd": 2}
	for name, m := range want {
		if mems[name] != m || counts[name] != wantN[name] {
			t.Errorf("%s: got %+v in %d procs, want %+v in %d", name, mems[name], counts[name], m, wantN[name])
		}
	}
	if _, _, err := measure(dir, []ProcSpec{{Name: "gone", PID: 99}}); err == nil {
		t.Error("a missing process was not an error")
	}
	rows := memRows(specs, map[string]Mem{"appd": {10, 7}}, mems, nil, counts, 2)
	if len(rows) != 3 || rows[2].Name != "appd" || len(rows[2].PIDs) != 2 || rows[2].PerSessionPSS != 5 {
		t.Errorf("memRows: %+v", rows)
	}
}

// validConfig is a Config that passes Validate.
func validConfig(mode string) Config {
	c, err := ParseFlags(mode, []string{"-addr", "127.0.0.1:22", "-user", "u", "-key", "k", "-insecure-host-key", "-cmd", "cat"}, io.Discard)
	if err != nil {
		panic(err)
	}
	return c
}

func TestValidate(t *testing.T) {
	for _, m := range modes {
		if err := validConfig(m).Validate(); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
	if c := validConfig("echo"); !c.PTY || c.N != 1000 {
		t.Errorf("echo defaults: pty %v, n %d", c.PTY, c.N)
	}
	tests := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Mode = "nope" }, "unknown mode"},
		{func(c *Config) { c.Addr = "127.0.0.1" }, "want host:port"},
		{func(c *Config) { c.User = "" }, "-user is required"},
		{func(c *Config) { c.KnownHosts = "kh" }, "exactly one of"},
		{func(c *Config) { c.Insecure = false }, "exactly one of"},
		{func(c *Config) { c.Cmd = "" }, "-cmd is required"},
		{func(c *Config) { c.N = 0 }, "-n must be"},
		{func(c *Config) { c.Concurrency = 100 }, "-c must be"},
		{func(c *Config) { c.Conns = 1000 }, "-conns must be"},
		{func(c *Config) { c.Rate = -1 }, "-rate"},
		{func(c *Config) { c.Parallel = -1 }, "-parallel"},
		{func(c *Config) { c.Timeout = 0 }, "-timeout must be positive"},
		{func(c *Config) { c.Mode, c.Hold = "hold", 10*time.Minute }, "must exceed -hold"},
		{func(c *Config) { c.PIDs = []ProcSpec{{"x", 1, false}} }, "-pids and -while-held are for hold only"},
	}
	for _, tt := range tests {
		c := validConfig("setup")
		tt.edit(&c)
		err := c.Validate()
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("want %q, got %v", tt.want, err)
		}
	}
	c := validConfig("setup")
	c.User, c.Cmd = "", ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "-user") || !strings.Contains(err.Error(), "-cmd") {
		t.Errorf("want every problem at once, got %v", err)
	}
}

func TestParseFlagsRejectsStrays(t *testing.T) {
	for _, args := range [][]string{{"-bogus"}, {"extra"}, {"-pids", "x"}} {
		if _, err := ParseFlags("setup", args, io.Discard); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: got %v", args, err)
		}
	}
}

func TestCheckTargetLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	for addr, ok := range map[string]bool{"127.0.0.1:22": true, "127.9.8.7:22": true, "[::1]:22": true,
		"localhost:22": true, "10.0.0.1:22": false, "[2001:db8::1]:22": false, "0.0.0.0:22": false} {
		c := validConfig("setup")
		c.Addr = addr
		err := c.CheckTarget(ctx)
		if (err == nil) != ok {
			t.Errorf("%s: got %v", addr, err)
		}
		c.AllowRemote = true
		if err := c.CheckTarget(ctx); err != nil {
			t.Errorf("%s with -allow-remote: %v", addr, err)
		}
	}
}

func TestRunRefusesRemoteAndMissingMode(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), []string{"setup", "-addr", "192.0.2.1:22", "-user", "u", "-key", "k",
		"-insecure-host-key", "-cmd", "x"}, &out)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "not a loopback") {
		t.Fatalf("got %v", err)
	}
}

// testTarget is a Config for ts in mode.
func testTarget(ts *testServer, mode string, extra ...string) Config {
	args := append([]string{"-addr", ts.Addr, "-user", "u", "-key", ts.KeyFile, "-known-hosts", ts.KnownHosts, "-timeout", "30s"}, extra...)
	c, err := ParseFlags(mode, args, io.Discard)
	if err != nil {
		panic(err)
	}
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func TestModesAgainstAnInProcessServer(t *testing.T) {
	ts := startTestServer(t)
	ctx := context.Background()
	self := "me=" + strconv.Itoa(os.Getpid())
	mark := filepath.Join(t.TempDir(), "mark")
	marked := func() bool { _, err := os.Stat(mark); return err == nil }
	tests := []struct {
		name  string
		c     Config
		check func(*Result) bool
	}{
		{"setup", testTarget(ts, "setup", "-cmd", "echo hi", "-n", "12", "-c", "3"),
			func(r *Result) bool { return r.Latency != nil && r.Latency.N == 12 && r.PerSec > 0 }},
		{"echo", testTarget(ts, "echo", "-cmd", "rawcat", "-ready", "ready", "-n", "50"),
			func(r *Result) bool { return r.Latency != nil && r.Latency.N == 50 && r.Latency.P50 > 0 }},
		{"bulk", testTarget(ts, "bulk", "-cmd", "cat", "-bytes", "3000000"),
			func(r *Result) bool { return r.SHA256 == "match" && r.Bytes == 3000000 && r.MBps > 0 }},
		{"bulk pty", testTarget(ts, "bulk", "-cmd", "zeros 1000000", "-pty", "-bytes", "1000000"),
			func(r *Result) bool { return r.SHA256 == "" && r.Bytes == 1000000 }},
		{"hold", testTarget(ts, "hold", "-cmd", "cat", "-n", "30", "-hold", "10ms", "-pids", self, "-while-held", "echo held >"+mark),
			func(r *Result) bool {
				return r.Held == 30 && len(r.Memory) == 1 && r.Memory[0].After.PSS > 0 && r.WhileHeld == "" && marked()
			}},
		{"hold shared pty", testTarget(ts, "hold", "-cmd", "cat", "-n", "30", "-conns", "4", "-pty", "-rate", "1000", "-parallel", "3", "-hold", "0s"),
			func(r *Result) bool { return r.Held == 30 && r.Lost == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Measure(ctx, tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if r.Failed != 0 || !tt.check(r) {
				var b bytes.Buffer
				WriteJSON(&b, r)
				t.Fatalf("result: %s", b.String())
			}
			var text bytes.Buffer
			if err := WriteText(&text, r); err != nil || !strings.Contains(text.String(), tt.c.Mode) {
				t.Fatalf("text: %q, %v", text.String(), err)
			}
		})
	}
}

func TestFailuresAreCountedWithTheirErrors(t *testing.T) {
	ts := startTestServer(t)
	c := testTarget(ts, "setup", "-cmd", "echo hi", "-n", "7")
	c.KnownHosts = filepath.Join(t.TempDir(), "other")
	os.WriteFile(c.KnownHosts, nil, 0o600)
	r, err := Measure(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 7 || len(r.Errors) != maxErrors || !strings.Contains(r.Errors[0], "knownhosts") {
		t.Fatalf("failed %d, errors %q", r.Failed, r.Errors)
	}
}

func TestClientModeRunsStockSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh binary")
	}
	ts := startTestServer(t)
	c := testTarget(ts, "client", "-cmd", "echo hi", "-n", "2", "-pty=false")
	r, err := Measure(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 0 || r.Latency == nil || r.Latency.N != 2 || r.Exit.P50 < r.Latency.P50 {
		t.Fatalf("%+v", r)
	}
}

// Help goes to stdout and is no failure; mistakes are ErrUsage and print
// nothing themselves (the command prints the error and the synopsis).
func TestRunHelpAndMistakes(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		err    error
		stdout string
	}{
		{[]string{"-h"}, nil, "Exit status"},
		{[]string{"--help"}, nil, "hold     N sessions"},
		{[]string{"echo", "-h"}, nil, "-addr host:port"},
		{[]string{"compare", "--help"}, nil, "-labels names"},
		{[]string{"-version"}, ErrVersion, ""},
		{nil, ErrUsage, ""},
		{[]string{"-addr", "127.0.0.1:22"}, ErrUsage, ""},
		{[]string{"bogus"}, ErrUsage, ""},
		{[]string{"echo", "-bogus"}, ErrUsage, ""},
	} {
		var out bytes.Buffer
		err := Run(context.Background(), tt.args, &out)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("Run %q: %v, want %v", tt.args, err, tt.err)
		}
		if !strings.Contains(out.String(), tt.stdout) || (tt.stdout == "" && out.Len() > 0) {
			t.Errorf("Run %q printed %q, want %q", tt.args, out.String(), tt.stdout)
		}
	}
}
