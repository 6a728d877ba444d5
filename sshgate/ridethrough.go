package sshgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"switchyard/bufcopy"
	"switchyard/control"
)

// Backoff between attempts to re-attach during a ride-through.
const (
	rideFirstRetry = 100 * time.Millisecond
	rideMaxRetry   = time.Second
)

// rideThrough is how long a session waits for its appd to come back: 0
// (never) when RideThrough is negative, 10s when it is zero.
func (s *Server) rideThrough() time.Duration {
	switch {
	case s.RideThrough < 0:
		return 0
	case s.RideThrough == 0:
		return 10 * time.Second
	}
	return s.RideThrough
}

// reattachLost re-attaches a PTY session whose link to appd dropped
// without an exit (appd restarted, or the connection broke): it retries an
// attach to the same session on the same server until one succeeds, the
// server answers that the session is gone, or the ride-through window
// ends. It returns the new attachment, or nil.
func (s *Server) reattachLost(ctx context.Context, ss *session, r *running) *running {
	window := s.rideThrough()
	if window <= 0 || !ss.hasPty() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	extra, err := json.Marshal(control.AttachRequest{ID: r.Started.ID, User: ss.id.User, Pty: ss.ptySpec(), Gateway: s.relayedFor(r.Place), Rejoin: true})
	if err != nil {
		ss.log.Error("ride-through", "id", r.Started.ID, "err", fmt.Errorf("encode attach request: %w", err))
		return nil
	}
	ss.log.Info("lost the appd link; riding through", "id", r.Started.ID, "server", r.Place.Server, "window", window)
	began, wait := time.Now(), rideFirstRetry
	for attempt := 1; ; attempt++ {
		nr, f := s.open(ctx, r.Place, control.ChannelAttach, extra, r.App)
		if f == nil {
			nr.Resumed = r.Resumed
			ss.log.Info("session rode through a lost appd link", "id", r.Started.ID, "server", r.Place.Server,
				"pid", nr.Started.PID, "was_pid", r.Started.PID, "attempts", attempt, "gap", time.Since(began).Round(time.Millisecond))
			return nr
		}
		if f.Status != exitUnavailable {
			ss.log.Info("ride-through ended: the session cannot be re-attached", "id", r.Started.ID, "server", r.Place.Server, "err", f.Error())
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			ss.log.Info("ride-through ended: appd did not come back in time", "id", r.Started.ID, "server", r.Place.Server,
				"attempts", attempt, "window", window, "err", f.Error())
			return nil
		case <-t.C:
		}
		wait = min(2*wait, rideMaxRetry)
	}
}

// input is a session's one input pump: it copies the client's input to
// the current target, one at a time: the picker while NoApp runs (see
// lentInput), then the app's channel. Between two targets (after the
// picker, during a ride-through) there is none, and what the client typed
// waits (one read here, the rest in the SSH channel's window, which stops
// the client when full) for the next. Bytes a target refused (a dead
// channel, a picker that returned) are written to the next; only what the
// old connection accepted just before it broke can be lost in flight.
type input struct {
	mu   sync.Mutex
	cond *sync.Cond
	app  sink // the target; nil in a gap. Guarded by mu.
	done bool // the session is over; guarded by mu
	held int  // bytes read and not yet written; guarded by mu
}

// sink is where input writes: an app channel, or the input lent to the
// picker.
type sink interface {
	io.Writer
	CloseWrite() error
}

// startInput starts copying src to the targets set will name.
func startInput(src io.Reader) *input {
	in := &input{}
	in.cond = sync.NewCond(&in.mu)
	go in.pump(src)
	return in
}

// pump copies src to the target (see Write), holding a small buffer while
// idle (package bufcopy); at src's EOF it half-closes the target, so that
// the client's EOF reaches appd. The picker passes the EOF on to the app
// that follows it, if any.
func (in *input) pump(src io.Reader) {
	if bufcopy.Copy(in, src, nil) != nil {
		return
	}
	for app := in.target(); app != nil; app = in.target() {
		if !errors.Is(app.CloseWrite(), errLendOver) {
			return
		}
		in.lost(app)
	}
}

// errInputDone ends the input copy once the session is over.
var errInputDone = errors.New("session over")

// Write delivers p whole to the target, across channel switches.
func (in *input) Write(p []byte) (int, error) {
	if !in.deliver(p) {
		return 0, errInputDone
	}
	return len(p), nil
}

// deliver writes p to the target, waiting for a new one when it fails;
// false when the session ended first.
func (in *input) deliver(p []byte) bool {
	in.hold(len(p))
	for len(p) > 0 {
		app := in.target()
		if app == nil {
			return false
		}
		n, err := app.Write(p)
		p = p[n:]
		in.hold(-n)
		if err != nil {
			in.lost(app)
		}
	}
	return true
}

func (in *input) hold(n int) {
	in.mu.Lock()
	in.held += n
	in.mu.Unlock()
}

// target waits for a target to write to; nil once the session is over.
func (in *input) target() sink {
	in.mu.Lock()
	defer in.mu.Unlock()
	for in.app == nil && !in.done {
		in.cond.Wait()
	}
	if in.done {
		return nil
	}
	return in.app
}

// lost drops app as the target, unless another has replaced it.
func (in *input) lost(app sink) {
	in.mu.Lock()
	if in.app == app {
		in.app = nil
	}
	in.mu.Unlock()
}

// set makes app the target; nil starts a gap.
func (in *input) set(app sink) {
	in.mu.Lock()
	in.app = app
	in.cond.Broadcast()
	in.mu.Unlock()
}

// stop ends the copy and returns how many bytes the client typed that no
// app received. Calling it again returns the same.
func (in *input) stop() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.done = true
	in.cond.Broadcast()
	return in.held
}
