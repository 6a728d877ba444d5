package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// proc is where process memory is read; tests point it elsewhere.
var proc = "/proc"

// verifyParallel bounds the final verification's sessions in flight.
const verifyParallel = 256

// held is one open session of hold mode.
type held struct {
	client *ssh.Client // its own connection, or nil when shared
	s      *session
}

// runHold opens c.N concurrent sessions running cat (see openAll), holds
// them for c.Hold, measures the memory of c.PIDs, runs c.WhileHeld,
// verifies every session again, and closes them.
func runHold(ctx context.Context, c Config, d *dialer, r *Result) {
	var fails failures
	defer fails.into(r)
	r.Attempts = c.N
	before, countBefore, err := measure(proc, c.PIDs)
	if err != nil {
		fails.add(err)
		return
	}
	shared, err := dialShared(ctx, c, d)
	defer closeAll(shared)
	if err != nil {
		fails.add(err)
		return
	}
	begin := time.Now()
	sessions := openAll(ctx, c, d, shared, &fails)
	defer closeHeld(sessions)
	r.Elapsed = time.Since(begin)
	for _, h := range sessions {
		if h != nil {
			r.Held++
		}
	}
	r.PerSec = float64(r.Held) / r.Elapsed.Seconds()
	heldFrom := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(c.Hold):
	}
	r.HeldFor = time.Since(heldFrom)
	after, countAfter, err := measure(proc, c.PIDs)
	if err != nil {
		fails.add(err)
	}
	r.Memory = memRows(c.PIDs, before, after, countBefore, countAfter, r.Held)
	if c.WhileHeld != "" {
		if out, err := exec.CommandContext(ctx, "sh", "-c", c.WhileHeld).CombinedOutput(); err != nil {
			r.WhileHeld = fmt.Sprintf("%v: %s", err, bytes.TrimSpace(tail(out)))
		}
	}
	r.Lost = verifyAll(ctx, c, sessions, &fails)
}

// openAll opens c.N sessions, all at once or c.Rate per second, at most
// c.Parallel being opened at a time (no bound if 0), each on its own
// connection or on shared[i%len(shared)], and verifies each. A session
// that failed is nil.
func openAll(ctx context.Context, c Config, d *dialer, shared []*ssh.Client, fails *failures) []*held {
	sessions := make([]*held, c.N)
	inFlight := c.N
	if c.Parallel > 0 {
		inFlight = c.Parallel
	}
	slots := make(chan struct{}, inFlight) // sessions being opened
	begin := time.Now()
	var wg sync.WaitGroup
	for i := range c.N {
		if !waitTurn(ctx, begin, i, c.Rate) || !acquire(ctx, slots) {
			fails.addf("%d sessions not opened: %w", c.N-i, ctx.Err())
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			var client *ssh.Client
			if len(shared) > 0 {
				client = shared[i%len(shared)]
			}
			h, err := openHeld(ctx, c, d, client, i)
			if err != nil {
				fails.addf("session %d: %w", i, err)
				return
			}
			sessions[i] = h
		}()
	}
	wg.Wait()
	return sessions
}

// waitTurn sleeps until session i is due at rate per second (at once if
// rate is 0); false if ctx ended first.
func waitTurn(ctx context.Context, begin time.Time, i int, rate float64) bool {
	if rate > 0 {
		due := begin.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(due)):
		}
	}
	return ctx.Err() == nil
}

// acquire takes a slot; false if ctx ended first.
func acquire(ctx context.Context, slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// dialShared opens c.Conns connections at once, or none if c.Conns is 0.
func dialShared(ctx context.Context, c Config, d *dialer) ([]*ssh.Client, error) {
	clients := make([]*ssh.Client, c.Conns)
	errs := make([]error, c.Conns)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, c.OpTimeout)
			defer cancel()
			clients[i], errs[i] = d.dial(dctx)
		}()
	}
	wg.Wait()
	var ok []*ssh.Client
	var first error
	for i, cl := range clients {
		if cl != nil {
			ok = append(ok, cl)
		} else if first == nil {
			first = fmt.Errorf("connection %d: %w", i, errs[i])
		}
	}
	return ok, first
}

// openHeld starts cat on client (or on a new connection if nil) and
// verifies it.
func openHeld(ctx context.Context, c Config, d *dialer, client *ssh.Client, i int) (*held, error) {
	ctx, cancel := context.WithTimeout(ctx, c.OpTimeout)
	defer cancel()
	h := &held{}
	if client == nil {
		var err error
		if client, err = d.dial(ctx); err != nil {
			return nil, err
		}
		h.client = client
	}
	s, err := start(client, c)
	if err != nil {
		h.close()
		return nil, err
	}
	h.s = s
	if err := verify(ctx, c, s, i, "open"); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// verify writes a line unique to session i and step and reads it back:
// once without a PTY, twice through one (the terminal's echo, then cat's
// copy), as cat in a cooked-mode PTY gives it.
func verify(ctx context.Context, c Config, s *session, i int, step string) error {
	line := fmt.Appendf(nil, "<%d:%s>", i, step)
	copies := 1
	if c.PTY {
		copies = 2
	}
	return within(ctx, c.OpTimeout, "echo "+string(line), func() error {
		if _, err := s.stdin.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return readUntil(s.stdout, line, copies)
	})
}

// verifyAll verifies every held session again and returns how many
// failed.
func verifyAll(ctx context.Context, c Config, sessions []*held, fails *failures) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	lost := 0
	sem := make(chan struct{}, verifyParallel)
	for i, h := range sessions {
		if h == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := verify(ctx, c, h.s, i, "end"); err != nil {
				fails.addf("session %d after the hold: %w", i, err)
				mu.Lock()
				lost++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lost
}

func (h *held) close() {
	if h.s != nil {
		h.s.Close()
	}
	if h.client != nil {
		h.client.Close()
	}
}

// closeHeld closes every session, many at a time.
func closeHeld(sessions []*held) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, verifyParallel)
	for _, h := range sessions {
		if h == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer func() { <-sem; wg.Done() }(); h.close() }()
	}
	wg.Wait()
}

func closeAll(clients []*ssh.Client) {
	for _, c := range clients {
		c.Close()
	}
}

// memRows pairs before and after by name, in the order of specs, with the
// change per held session.
func memRows(specs []ProcSpec, before, after map[string]Mem, nb, na map[string]int, sessions int) []ProcMem {
	var rows []ProcMem
	index := map[string]int{}
	for _, sp := range specs {
		if i, ok := index[sp.Name]; ok {
			rows[i].PIDs = append(rows[i].PIDs, sp.PID)
			continue
		}
		index[sp.Name] = len(rows)
		m := ProcMem{Name: sp.Name, PIDs: []int{sp.PID}, Before: before[sp.Name], After: after[sp.Name],
			ProcsBefore: nb[sp.Name], ProcsAfter: na[sp.Name]}
		if sessions > 0 {
			m.PerSessionPSS = float64(m.After.PSS-m.Before.PSS) / float64(sessions)
			m.PerSessionRSS = float64(m.After.RSS-m.Before.RSS) / float64(sessions)
		}
		rows = append(rows, m)
	}
	return rows
}
