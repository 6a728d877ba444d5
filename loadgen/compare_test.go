package loadgen

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func writeResults(t *testing.T, rs ...*Result) string {
	t.Helper()
	var b bytes.Buffer
	for _, r := range rs {
		if err := WriteJSON(&b, r); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompareRatiosAndTargets(t *testing.T) {
	lat := func(p50, p99 time.Duration) *Summary { return &Summary{N: 1, P50: p50, P99: p99, P90: p99, Max: p99} }
	a := writeResults(t,
		&Result{Name: "setup", Mode: "setup", Latency: lat(5*time.Millisecond, 9*time.Millisecond), PerSec: 200},
		&Result{Name: "echo", Mode: "echo", PTY: true, Latency: lat(150*time.Microsecond, 450*time.Microsecond)},
		&Result{Name: "bulk", Mode: "bulk", MBps: 80},
		&Result{Name: "only-a", Mode: "bulk", MBps: 1},
		&Result{Name: "hold", Mode: "hold", Held: 10, Memory: []ProcMem{{Name: "gateway", PerSessionPSS: 80}, {Name: "appd", PerSessionPSS: 30}}},
		&Result{Name: "bulk", Mode: "bulk", MBps: 95, Failed: 1}, // a later line of a name wins
	)
	b := writeResults(t,
		&Result{Name: "setup", Mode: "setup", Latency: lat(10*time.Millisecond, 12*time.Millisecond), PerSec: 100},
		&Result{Name: "echo", Mode: "echo", PTY: true, Latency: lat(120*time.Microsecond, 200*time.Microsecond)},
		&Result{Name: "bulk", Mode: "bulk", MBps: 100},
		&Result{Name: "hold", Mode: "hold", Held: 10, Memory: []ProcMem{{Name: "sshd", PerSessionPSS: 1800}}},
	)
	var out bytes.Buffer
	if err := Compare([]string{"-labels", "sy,sshd", a, b}, &out, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		`run +metric +sy +sshd +ratio +target +met`,
		`setup +setup p50 +5\.00 ms +10\.00 ms +0\.50 +≤ 1\.00x +yes`,
		`setup +sessions/s +200\.0 /s +100\.0 /s +2\.00 +≥ 1\.00x +yes`,
		`echo +echo p50 +150 µs +120 µs +\+30 µs +≤ B\+100 +yes`,
		`echo +echo p99 +450 µs +200 µs +\+250 µs +≤ B\+200 +NO`,
		`bulk +throughput +95\.0 MB/s +100\.0 MB/s +0\.95 +≥ 0\.70x +yes`,
		`bulk +failed +1 +0 +- += 0 +NO`,
		`hold +PSS/session gateway +80\.0 KiB +- +- +≤ 72 +NO`,
		`hold +PSS/session appd +30\.0 KiB +- +- +≤ 64 +yes`,
		`hold +PSS/session sshd +- +1800\.0 KiB +- +\n`,
		`hold +PSS/session, all +110\.0 KiB +1800\.0 KiB +0\.06`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("no line matching %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "only-a") {
		t.Errorf("a run missing from B was shown:\n%s", got)
	}
}

func TestCompareBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte("{\"name\":\"x\"}\nnot json\n"), 0o600)
	var out bytes.Buffer
	if err := Compare([]string{bad, bad}, &out, &out); err == nil || !strings.Contains(err.Error(), "bad.jsonl:2") {
		t.Fatalf("got %v", err)
	}
	if err := Compare([]string{bad}, &out, &out); !errors.Is(err, ErrUsage) {
		t.Fatalf("one file: %v", err)
	}
}
