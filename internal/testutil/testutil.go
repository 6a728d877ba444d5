// Package testutil holds the helpers that tests across the module share:
// waiting for a condition, receiving with a bound, a buffer that
// concurrent writers and a polling reader can share, golden files, and a
// TCP forwarder whose network can be cut.
//
// It is a test helper: only _test.go files import it, and it imports no
// package of this module and no SSH library (see internal/sshtest).
package testutil

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// pollEvery is how often Poll asks its condition again.
const pollEvery = 10 * time.Millisecond

// Poll asks cond until it holds or timeout has passed, and reports
// whether it held. The condition is asked once more at the end, so a
// condition that holds by the deadline is never reported as failed.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(pollEvery)
	}
	return true
}

// Eventually polls cond until it holds, and fails the test, naming what
// it waited for, if it does not hold within timeout.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Poll(timeout, cond) {
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Recv receives one value from ch, and fails the test, naming what it
// waited for, if none comes within timeout.
func Recv[T any](tb testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-ch:
		return v
	case <-t.C:
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		panic("unreachable")
	}
}

// Buffer is a bytes.Buffer that concurrent writers (a logger, a
// process's output) and a polling reader may share.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Bytes returns a copy of everything written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// update makes Golden rewrite its files: go test -update.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/ instead of comparing with them")

// Golden compares got with testdata/name.golden, or, under -update,
// writes got there.
func Golden(tb testing.TB, name, got string) {
	tb.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		tb.Errorf("%s differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, path, got, want)
	}
}
