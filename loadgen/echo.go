package loadgen

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"
)

// echoWarmup keystrokes go first and are not counted.
const echoWarmup = 20

// runEcho opens one session (a PTY unless -pty=false) running an app that
// copies its input back, such as a raw-mode cat, waits for c.Ready, and
// times c.N keystrokes one at a time, each until it comes back.
//
// Keystroke i is the letter 'a'+i%26 and the wait is for that letter, so
// the measure stays in step even if a terminal still in cooked mode
// echoed some letters twice before the app made it raw.
func runEcho(ctx context.Context, c Config, d *dialer, r *Result) {
	var fails failures
	defer fails.into(r)
	r.Attempts = c.N
	s, done, err := dialSession(ctx, c, d)
	if err != nil {
		fails.add(err)
		return
	}
	defer done()
	if c.Ready != "" {
		if err := within(ctx, c.OpTimeout, "ready", func() error { return readUntil(s.stdout, []byte(c.Ready), 1) }); err != nil {
			fails.add(err)
			return
		}
	}
	lat := make([]time.Duration, 0, c.N)
	buf := make([]byte, 64)
	begin := time.Now()
	for i := range echoWarmup + c.N {
		key := byte('a' + i%26)
		t0 := time.Now()
		if _, err := s.stdin.Write([]byte{key}); err != nil {
			fails.addf("keystroke %d: %w", i, err)
			break
		}
		if err := readKey(s.stdout, buf, key); err != nil {
			fails.addf("keystroke %d: %w", i, err)
			break
		}
		if i >= echoWarmup {
			lat = append(lat, time.Since(t0))
		}
	}
	r.Elapsed = time.Since(begin)
	r.Latency = Summarize(lat)
	if missing := c.N - len(lat); missing > 0 && fails.n == 0 {
		fails.addf("%d keystrokes not echoed", missing)
	}
	s.Signal(ssh.SIGTERM) // a raw-mode app gets no ^C or ^D; end it directly
}

// readKey reads until key arrives.
func readKey(r io.Reader, buf []byte, key byte) error {
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b == key {
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("waiting for echo of %q: %w", key, err)
		}
	}
}
