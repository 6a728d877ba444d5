package transport

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/internal/sshtest"
	"switchyard/internal/testutil"
)

// Each wait lies in the upper half of its step; the steps double up to
// the cap; reset starts again from the first.
func TestBackoffSteps(t *testing.T) {
	b := backoff{first: 100 * time.Millisecond, max: time.Second}
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for round := range 2 {
		for i, step := range steps {
			step *= time.Millisecond
			if d := b.next(); d < step/2 || d > step {
				t.Fatalf("round %d, wait %d: %v, want within [%v, %v]", round, i, d, step/2, step)
			}
		}
		b.reset()
	}
	small := backoff{first: 100 * time.Millisecond, max: 10 * time.Millisecond}
	if d := small.next(); d > 10*time.Millisecond {
		t.Fatalf("a wait of %v beyond the cap of 10ms", d)
	}
}

// Two links that lose their peer together do not retry together.
func TestLinksRetryApart(t *testing.T) {
	key := sshtest.NewSigner(t).PublicKey()
	waits := func(logs *testutil.Buffer) []time.Duration {
		var ds []time.Duration
		for line := range strings.Lines(logs.String()) {
			var rec struct {
				Msg   string
				Retry time.Duration
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "control link down" {
				ds = append(ds, rec.Retry)
			}
		}
		return ds
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs [2]testutil.Buffer
	done := make(chan error, 2)
	for i := range logs {
		l := &Link{Identity: Identity{"cli", sshtest.NewSigner(t)}, Peer: "broker",
			Addr:       func() string { return "127.0.0.1:1" }, // refused at once
			Key:        func(string) (ssh.PublicKey, error) { return key, nil },
			Logger:     slog.New(slog.NewJSONHandler(&logs[i], nil)),
			MaxBackoff: 200 * time.Millisecond}
		go func() { done <- l.Run(ctx) }()
	}
	testutil.Eventually(t, 10*time.Second, "three retries of each link", func() bool {
		return len(waits(&logs[0])) >= 3 && len(waits(&logs[1])) >= 3
	})
	cancel()
	<-done
	<-done
	a, b := waits(&logs[0])[:3], waits(&logs[1])[:3]
	if slices.Equal(a, b) {
		t.Fatalf("both links waited %v between attempts", a)
	}
}
