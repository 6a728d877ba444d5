//go:build !race

// The race detector slows crypto tenfold; this test moves 4 GiB and runs
// without it (test.sh runs it in a second, race-free go test).

package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestFiveHundredSessionsLoseNothing runs 500 concurrent sessions through
// one gateway to two appd servers, each sending 4 MiB of seeded random
// bytes through cat and checking the sha256 of what comes back and the
// exit status.
func TestFiveHundredSessionsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 4 GiB; skipped with -short")
	}
	const sessions, size = 500, 4 << 20
	c := NewCluster(t, ClusterOptions{Servers: []string{"s1", "s2"}, MaxSessions: 400})
	c.quiet.Store(true) // 1,000 session log lines are noise here
	// Ten client connections carry 50 sessions each, as ten busy users would.
	clients := make([]*ssh.Client, 10)
	for i := range clients {
		cl, err := c.Dial("gw1", "alice", c.Alice)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients[i] = cl
	}
	// Sessions start at most 50 at a time (each holds a start slot until
	// its first bytes come back), as users arrive, and then all stream
	// together: on two shared cores, 500 simultaneous fork/execs can take
	// longer than the gateway's 10 s start timeout, which is a refusal
	// (status 69), not data loss.
	var wg sync.WaitGroup
	var live, peak atomic.Int64
	starting := make(chan struct{}, 50)
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- roundTrip(clients[i%len(clients)], uint64(i), size, starting, &live, &peak)
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Error(err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d sessions lost data or status", failed, sessions)
	}
	per := map[string]int{}
	for _, d := range c.Status().Decisions {
		per[d.Server]++
	}
	t.Logf("500 sessions × 4 MiB both ways intact, %d at once at the peak; last placements by server: %v", peak.Load(), per)
	if peak.Load() < sessions/2 {
		t.Fatalf("only %d sessions ever ran at once", peak.Load())
	}
}

// roundTrip sends size seeded bytes through cat and compares hashes. It
// holds a starting slot until the first bytes are back, and counts itself
// in live (and the peak of live) while it streams.
func roundTrip(client *ssh.Client, seed uint64, size int64, starting chan struct{}, live, peak *atomic.Int64) error {
	starting <- struct{}{}
	started := false
	release := func() {
		if !started {
			started = true
			<-starting
		}
	}
	defer release()
	s, err := client.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	if err := s.Start("cat"); err != nil {
		return err
	}
	sent := sha256.New()
	go func() {
		src := io.LimitReader(rngReader{mrand.NewChaCha8(seedBytes(seed))}, size)
		io.Copy(io.MultiWriter(stdin, sent), src)
		stdin.Close()
	}()
	got := sha256.New()
	first := make([]byte, 1)
	if _, err := io.ReadFull(stdout, first); err != nil {
		return err
	}
	got.Write(first)
	release()
	n := live.Add(1)
	for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
	}
	defer live.Add(-1)
	rest, err := io.Copy(got, stdout)
	n = rest + 1
	if err != nil {
		return err
	}
	if err := s.Wait(); err != nil {
		return err
	}
	if n != size || string(got.Sum(nil)) != string(sent.Sum(nil)) {
		return errMismatch{seed, n}
	}
	return nil
}

type errMismatch struct {
	seed uint64
	n    int64
}

func (e errMismatch) Error() string {
	return fmt.Sprintf("session %d: %d bytes back, or their sha256 differs from the bytes sent", e.seed, e.n)
}

type rngReader struct{ r *mrand.ChaCha8 }

func (r rngReader) Read(p []byte) (int, error) { return r.r.Read(p) }

func seedBytes(seed uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	return b
}
