package sshgate

import (
	"errors"
	"io"
	"sync"
	"time"

	"switchyard/bufcopy"
	"switchyard/control"
)

// input is a session's one input pump: it copies the client's input to
// the current target, one at a time: the picker while NoApp runs (see
// lentInput), then the app's channel. Between two targets (after the
// picker, during a ride-through) there is none, and what the client typed
// waits (one read here, the rest in the SSH channel's window, which stops
// the client when full) for the next. Bytes a target refused (a dead
// channel, a picker that returned) are written to the next.
//
// Bytes an app channel accepted can still be lost in flight when its link
// drops (appd restarted, the connection broke). So input counts what it
// wrote to each app attachment and keeps the latest inputReplay bytes;
// appd says, when the next attachment starts, how much input its
// terminal had got (control.InputCount), and attach resends the
// difference before anything newer. What it cannot resend, or cannot
// know, the user is told (see inputGap).
type input struct {
	mu   sync.Mutex
	cond *sync.Cond
	app  sink // the target; nil in a gap. Guarded by mu.
	done bool // the session is over; guarded by mu
	held int  // bytes read and not yet written; guarded by mu

	// Guarded by mu: the app attachment input is counted for.
	counted  sink      // the app channel counted, nil before the first
	base     int64     // appd's input count when it began
	sent     int64     // bytes it accepted since
	lastSent time.Time // when it last accepted some
	gapAt    time.Time // when the last gap began (set(nil))
	writing  int       // writes under way (to any target)
	recent   []byte    // the latest bytes app channels accepted, inputReplay at least when there are that many
}

// inputReplay is how much recent input a session keeps to resend: the
// terminal of a busy app holds 4 KiB of unread input, and what a handover
// leaves in flight is what appd read but had not written.
const inputReplay = 4 << 10

// inputDoubt is how shortly before its link was lost the last input on
// it must have been sent for the user to be told it may not have arrived, when appd cannot say (it died
// without handing its sessions over): a live appd writes what it reads to
// the terminal within microseconds.
const inputDoubt = time.Second

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
		in.wrote(app, nil)
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
		in.wrote(app, p[:n])
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

// target waits for a target to write to, and counts a write under way
// until wrote; nil once the session is over.
func (in *input) target() sink {
	in.mu.Lock()
	defer in.mu.Unlock()
	for in.app == nil && !in.done {
		in.cond.Wait()
	}
	if in.done {
		return nil
	}
	in.writing++
	return in.app
}

// wrote ends a write to app that target began: p is what app accepted.
func (in *input) wrote(app sink, p []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.writing--
	if in.writing == 0 {
		in.cond.Broadcast()
	}
	if app != in.counted || len(p) == 0 {
		return
	}
	in.sent += int64(len(p))
	in.lastSent = time.Now()
	in.recent = append(in.recent, p...)
	if len(in.recent) > 2*inputReplay {
		in.recent = in.recent[:copy(in.recent, in.recent[len(in.recent)-inputReplay:])]
	}
}

// lost drops app as the target, unless another has replaced it.
func (in *input) lost(app sink) {
	in.mu.Lock()
	if in.app == app {
		in.app = nil
	}
	in.mu.Unlock()
}

// set makes app the target, uncounted (the picker's lent input); nil
// starts a gap.
func (in *input) set(app sink) {
	in.mu.Lock()
	in.app = app
	if app == nil {
		in.gapAt = time.Now()
	}
	in.cond.Broadcast()
	in.mu.Unlock()
}

// inputGap is what attach could not make good of the input sent on the
// attachment before: lost bytes it no longer had to resend, or, when
// appd could not say what arrived, doubt about input sent just before.
type inputGap struct {
	lost  int64
	doubt bool
}

// attach makes the app channel ch, which appd began at count st, the
// target. If an earlier app attachment was lost, it first resends to ch
// what that one accepted and appd's terminal never got, once every write
// to the old one has returned, so that nothing newer overtakes it.
func (in *input) attach(ch sink, st control.InputCount) (inputGap, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for in.writing > 0 {
		in.cond.Wait()
	}
	var gap inputGap
	var resend []byte
	switch {
	case in.counted == nil:
	case !st.Exact:
		gap.doubt = in.sent > 0 && in.gapAt.Sub(in.lastSent) < inputDoubt
	case in.base+in.sent > st.In:
		missing := min(in.base+in.sent-st.In, in.sent)
		keep := min(missing, int64(len(in.recent)))
		resend = in.recent[int64(len(in.recent))-keep:]
		gap.lost = missing - keep
	}
	in.counted, in.base, in.sent = ch, st.In, 0
	if len(resend) > 0 {
		n, err := ch.Write(resend)
		in.sent += int64(n)
		if err != nil {
			gap.lost += int64(len(resend) - n)
			return gap, err
		}
	}
	in.app = ch
	in.cond.Broadcast()
	return gap, nil
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
