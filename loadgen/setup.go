package loadgen

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// runSetup opens c.N sessions, each on a new connection, c.Concurrency at
// a time, and times each from TCP connect to the first byte of output.
// The rate counts whole sessions: setup, output to the end, teardown.
func runSetup(ctx context.Context, c Config, d *dialer, r *Result) {
	var fails failures
	var lat latencies
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	begin := time.Now()
	for range c.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				t, err := oneSetup(ctx, c, d)
				if err != nil {
					fails.add(err)
					continue
				}
				lat.add(t)
			}
		}()
	}
	for range c.N {
		if ctx.Err() != nil {
			fails.addf("not started: %w", ctx.Err())
			continue
		}
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	r.Elapsed = time.Since(begin)
	r.Attempts = c.N
	r.Latency = Summarize(lat.d)
	r.PerSec = float64(len(lat.d)) / r.Elapsed.Seconds()
	fails.into(r)
}

// oneSetup is one session on a new connection; it returns the time to the
// first byte of output and then reads to the end and waits for the exit.
func oneSetup(ctx context.Context, c Config, d *dialer) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.OpTimeout)
	defer cancel()
	begin := time.Now()
	client, err := d.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	s, err := start(client, c)
	if err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(s.stdout, make([]byte, 1)); err != nil {
		return 0, fmt.Errorf("first byte of %q: %w", c.Cmd, err)
	}
	took := time.Since(begin)
	if _, err := io.Copy(io.Discard, s.stdout); err != nil {
		return 0, fmt.Errorf("output of %q: %w", c.Cmd, err)
	}
	if err := s.Wait(); err != nil {
		return 0, fmt.Errorf("%q: %w", c.Cmd, err)
	}
	return took, nil
}
