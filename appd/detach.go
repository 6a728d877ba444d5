package appd

import (
	"context"
	"sync"
	"syscall"
	"time"

	"switchyard/control"
)

// keptOutput bounds the output a detached session keeps for its next
// attachment: the most recent bytes win.
const keptOutput = 256 << 10

// A PTY session's life, from its first attachment to its end:
//
//   - pump reads the terminal all the time, so the app never blocks on
//     output, and emits each chunk to the current attachment or, while
//     there is none, into kept (a ring of the last keptOutput bytes);
//   - when an attachment's channel goes away (client killed, network cut,
//     gateway died) the session is detached: with a grace period the app
//     keeps running and a timer starts, without one it is hung up;
//   - attach (reattach.go) replaces the current attachment, if any, and
//     replays what was kept before live output resumes;
//   - the timer running out, ctx ending or Shutdown hangs the app up
//     (SIGHUP, then SIGKILL), and end finishes whatever is attached with
//     the app's exit status.

// live runs a PTY session until its app has exited and its output is
// drained and delivered, then returns. ctx ending hangs the app up; stop
// is Shutdown's signal.
func (s *session) live(ctx context.Context, stop <-chan struct{}) {
	outDone := make(chan struct{})
	var wg sync.WaitGroup
	pump := func() {
		defer close(outDone)
		s.pump()
	}
	if s.term.pollable {
		wg.Go(pump)
	} else {
		go pump() // may outlive the session: see terminal.drain
	}
	wg.Go(func() { s.guard(ctx, stop) })
	<-s.exited
	s.term.drain(outDone)
	s.term.close() // ends stdin copies blocked writing
	s.end()
	wg.Wait()
}

// pump copies the terminal's output to emit until the terminal ends.
func (s *session) pump() {
	buf := make([]byte, bufSize)
	r := ptyReader{s.term.master}
	for {
		n, err := r.Read(buf)
		if n > 0 && err == nil {
			n += s.term.readMore(buf[n:])
		}
		if n > 0 {
			s.emit(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// emit writes p to the current attachment, or keeps it while there is
// none. What a failed write did not deliver is kept, and the attachment
// is detached.
func (s *session) emit(p []byte) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.mu.Lock()
	a := s.att
	if a == nil {
		s.kept.write(p)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	n, err := a.ch.Write(p)
	s.out.Add(int64(n))
	if err != nil {
		s.mu.Lock()
		s.kept.write(p[n:])
		s.mu.Unlock()
		s.lost(a)
	}
}

// guard hangs the app up when asked to (see requestHangup) or when ctx
// ends, and forwards Shutdown's SIGHUP. It returns once the app is reaped.
func (s *session) guard(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-s.exited:
			return
		case reason := <-s.hangups:
			s.hangup(reason)
			return
		case <-ctx.Done():
			s.hangup("context ended")
			return
		case <-stop:
			s.setReason("appd shutting down")
			s.signal(syscall.SIGHUP)
			stop = nil // Shutdown escalates itself
		}
	}
}

// lost detaches a from the session after its channel went away, unless a
// newer attachment has replaced it or the session has ended. With a grace
// period the app keeps running until it expires; without one it is hung
// up now.
func (s *session) lost(a *attachment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.att != a || s.ended {
		return
	}
	s.att = nil
	if s.grace <= 0 {
		s.requestHangup("channel closed")
		return
	}
	s.detached = time.Now()
	s.gen++
	gen := s.gen
	s.timer = time.AfterFunc(s.grace, func() { s.expire(gen, "grace period expired") })
}

// expire ends the grace period (or pre-launch hold) started by detach
// number gen, if the session is still detached since then.
func (s *session) expire(gen uint64, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.att == nil && s.gen == gen && !s.ended {
		s.requestHangup(reason)
	}
}

// requestHangup asks guard to hang the app up and refuses further
// attachments. Callers hold s.mu.
func (s *session) requestHangup(reason string) {
	s.closing = true
	select {
	case s.hangups <- reason:
	default: // one is pending already
	}
}

// stopGrace cancels a running grace period or pre-launch hold. Callers
// hold s.mu.
func (s *session) stopGrace() {
	s.held = false
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.gen++
	s.detached = time.Time{}
}

// end marks the session ended and finishes the current attachment, if
// any, with the app's exit status. It runs once the output is drained.
func (s *session) end() {
	s.attachMu.Lock()
	defer s.attachMu.Unlock()
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.mu.Lock()
	s.ended = true
	a := s.att
	s.att = nil
	s.stopGrace()
	s.mu.Unlock()
	if a != nil {
		a.finish(s.result)
	}
}

// view is the session's info with its current state.
func (s *session) view() control.SessionInfo {
	info := s.info
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gateway != "" {
		info.Gateway = s.gateway
	}
	info.State = control.StateAttached
	if s.att == nil && !s.detached.IsZero() {
		info.State, info.Detached = control.StateDetached, s.detached
	}
	return info
}

// ring keeps the last keptOutput bytes written to it.
type ring struct {
	buf []byte
}

func (r *ring) write(p []byte) {
	if len(p) >= keptOutput {
		r.buf = append(r.buf[:0], p[len(p)-keptOutput:]...)
		return
	}
	if over := len(r.buf) + len(p) - keptOutput; over > 0 {
		r.buf = r.buf[:copy(r.buf, r.buf[over:])]
	}
	r.buf = append(r.buf, p...)
}

// take returns what the ring holds and empties it.
func (r *ring) take() []byte {
	b := r.buf
	r.buf = nil
	return b
}
