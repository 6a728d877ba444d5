package appd

import (
	"context"
	"os"
	"time"

	"switchyard/bufcopy"
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
//
// Besides the attachment's two (its requests and its input), a session
// runs one goroutine, live, which reads the terminal: a hang-up runs on a
// goroutine of its own only while it lasts, ctx is watched by
// context.AfterFunc, Shutdown signals every session itself, and the app's
// exit is noticed by the one exitWaiter of the process.

// live runs a PTY session until its app has exited and its output is
// drained and delivered, then returns true; or false, at once, when the
// session was handed to the next appd (handover.go). It reads the
// terminal itself (see pump); ctx ending hangs the app up. ended runs
// once the output is drained, before any attachment is told of the exit.
func (s *session) live(ctx context.Context, ended func()) bool {
	defer s.hangupWhenDone(ctx)()
	if s.term.pollable {
		s.pump() // until EIO, the deadline set when the app exited, or a handover's
		if s.pumped != nil {
			close(s.pumped)
			if s.isHanded() {
				return false
			}
		}
		<-s.exited
	} else {
		outDone := make(chan struct{})
		go func() { // may outlive the session: see terminal.drain
			defer close(outDone)
			s.pump()
		}()
		<-s.exited
		s.term.drain(outDone)
	}
	s.term.close() // ends stdin copies blocked writing
	ended()        // before the attachment hears of the exit: the audit trail keeps cause before effect
	s.end()
	s.rec.close("exit: " + s.result.String())
	return true
}

// pump copies the terminal's output to emit until the terminal ends. It
// waits in a read of bufcopy.SmallSize bytes: an idle session holds no
// large buffer. A read that fills it borrows one from bigBufs to top it up
// with what the terminal holds (see readMore) and gives it back once the
// chunk is emitted.
func (s *session) pump() {
	small := make([]byte, bufcopy.SmallSize)
	r := ptyReader{s.term.master}
	for {
		n, err := r.Read(small)
		switch {
		case n == len(small) && err == nil:
			big := bufcopy.Borrow()
			copy(*big, small)
			n += s.term.readMore((*big)[n:])
			s.emit((*big)[:n])
			bufcopy.Return(big)
		case n > 0:
			s.emit(small[:n])
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
	s.rec.output(p)
	s.mu.Lock()
	s.observe(p)
	a := s.att
	if a == nil {
		s.keep(p)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	n, err := a.ch.Write(p)
	s.out.Add(int64(n))
	if err != nil {
		s.mu.Lock()
		s.keep(p[n:])
		s.mu.Unlock()
		s.lost(a)
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
	if s.handed {
		return
	}
	s.rec.marker("detach")
	if s.grace <= 0 {
		s.requestHangup("channel closed")
		return
	}
	s.detached = time.Now()
	s.gen++
	gen := s.gen
	s.timer = time.AfterFunc(s.grace, func() { s.expire(gen, "grace period expired") })
	s.holdDetached()
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
	s.endWatchers(false)
	s.mu.Unlock()
	if a != nil {
		a.finish(s.exitResult())
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

// keep keeps p for the next attachment, in the mirror too if the session
// has one. Callers hold s.mu.
func (s *session) keep(p []byte) {
	s.kept.write(p)
	if s.mirror != nil {
		s.mirror.write(p)
	}
}

// takeKept returns what was kept and empties it. Callers hold s.mu.
func (s *session) takeKept() []byte {
	if s.mirror != nil {
		s.mirror.reset()
	}
	return s.kept.take()
}

// holdDetached gives the keeper, if it holds the session, its state as
// detached and a mirror of what it keeps from now on, so that both
// survive appd. Callers hold s.mu.
func (s *session) holdDetached() {
	if !s.viaKeeper {
		return
	}
	if s.mirror == nil {
		m, err := newKeptFile()
		if err != nil {
			return // what is kept dies with appd; the session does not
		}
		s.mirror = m
		m.write(s.kept.buf)
	}
	s.keeper.Hold(s.pid, s.metaLocked(), []*os.File{s.term.master, s.mirror.f})
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
