package sshgate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errIdle is the cancel cause of a session ended for its idle timeout.
var errIdle = errors.New("idle timeout")

// AppLimits is the part of a Directory that gives apps an idle timeout.
type AppLimits interface {
	// IdleTimeout is how long a session of app may pass with no input
	// from the client and no output from the app (0: forever), and
	// whether its end then detaches it (a PTY app with a grace period)
	// rather than ending it.
	IdleTimeout(app string) (idle time.Duration, detach bool)
}

// activity is when a session last moved a byte either way.
type activity struct{ last atomic.Int64 } // unix nanoseconds

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *activity) since() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }

// touchReader marks activity on every read that returns bytes.
type touchReader struct {
	r io.Reader
	a *activity
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.a.touch()
	}
	return n, err
}

// watchIdle calls onIdle, in a goroutine of its own, once a has been
// still for limit, unless stop is called first. It keeps a timer, not a
// goroutine: a gateway holding thousands of idle sessions saves a stack
// for each.
func watchIdle(limit time.Duration, a *activity, onIdle func()) (stop func()) {
	w := &idleWatch{limit: limit, a: a, onIdle: onIdle}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = time.AfterFunc(limit, w.check)
	return w.stop
}

// idleWatch is one watchIdle.
type idleWatch struct {
	limit  time.Duration
	a      *activity
	onIdle func()

	mu      sync.Mutex // guards t and stopped
	t       *time.Timer
	stopped bool
}

// check runs when the timer fires: onIdle if the session has been still
// for the limit, else the timer is set for when it would have been.
func (w *idleWatch) check() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	if idle := w.a.since(); idle < w.limit {
		w.t.Reset(w.limit - idle)
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	w.onIdle()
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}

// idleLimit returns app's idle timeout from the Directory, if it has one.
func (s *Server) idleLimit(app string) (time.Duration, bool) {
	if l, ok := s.directory().(AppLimits); ok {
		return l.IdleTimeout(app)
	}
	return 0, false
}

// idleFailure is what the client of an idle session is told: that it
// ended, or, when it lives on detached, how to resume it (resume is the
// command, see resumeCommand).
func idleFailure(limit time.Duration, detach bool, resume string) *failure {
	line := fmt.Sprintf("idle for %s; session ended", shortDuration(limit))
	if detach {
		line = fmt.Sprintf("idle for %s; session detached, resume with: %s", shortDuration(limit), resume)
	}
	return &failure{Status: exitUnavailable, Line: line}
}

// resumeCommand is the ssh command that resumes session id through the
// address this client reached: "ssh -t -p 2222 alice@127.0.0.1 resume ID".
func resumeCommand(user, here, id string) string {
	host, port, err := net.SplitHostPort(here)
	if err != nil {
		return fmt.Sprintf("ssh -t %s@%s resume %s", user, here, id)
	}
	if port == "22" {
		return fmt.Sprintf("ssh -t %s@%s resume %s", user, host, id)
	}
	return fmt.Sprintf("ssh -t -p %s %s@%s resume %s", port, user, host, id)
}

// shortDuration prints d without trailing zero units: 30m, 1h, 1h30m, 500ms.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
