package appd

import (
	"bufio"
	"bytes"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
)

// What a PTY session costs appd beyond its buffers: threads and
// goroutines. Counted, not timed.

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

// sessionGoroutines returns the number of goroutines running appd's
// session and attachment code (not the test's client side, nor the one
// exitWaiter).
func sessionGoroutines(t *testing.T) int {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "switchyard/appd.(*session)") || strings.Contains(g, "switchyard/appd.(*attachment)") ||
			strings.Contains(g, "switchyard/appd.(*Manager)") {
			n++
		}
	}
	return n
}

// TestPTYSessionGoroutines checks that an attached PTY session runs three
// goroutines in appd: its channel's requests, its channel's input, and
// live, which reads the terminal.
func TestPTYSessionGoroutines(t *testing.T) {
	m := newTestManager(t, map[string]App{"sleep": {Argv: []string{"sleep", "600"}, User: "nobody"}})
	c := dialManager(t, m)
	const n = 20
	for range n {
		spawn(t, c, ptyReq("sleep"))
	}
	waitLen(t, m, n)
	got := sessionGoroutines(t)
	t.Logf("%d goroutines for %d sessions", got, n)
	if got > 3*n {
		t.Errorf("%d goroutines for %d sessions, want at most 3 each", got, n)
	}
}
