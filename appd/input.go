package appd

import (
	"errors"
	"time"
)

// Input from the client is counted (session.in) as it is written to the
// terminal, and only the session's current attachment writes: a newer
// attachment, or a handover, first stops the one before and waits for a
// write it has under way. So the count an attachment starts from
// (control.Started.In) is exact, and a gateway riding through a lost link
// can resend what the old link carried but the terminal never got.

// errInputMoved ends an attachment's input copy once another attachment,
// or a handover, has taken the terminal's input.
var errInputMoved = errors.New("appd: the session's input moved on")

// attachInput writes one attachment's input to the session's terminal
// while it is the session's current input.
type attachInput struct {
	s *session
	a *attachment
}

func (w attachInput) Write(p []byte) (int, error) {
	s := w.s
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.inAtt.Load() != w.a {
		return 0, errInputMoved
	}
	n, err := s.input().Write(p)
	s.in.Add(int64(n))
	return n, err
}

// moveInput makes a (nil: nobody) the attachment whose input is written,
// once a write of the one before, if any, has returned; it returns the
// count of bytes written so far and whether that count is exact (every
// byte the terminal got, across attachments and appd restarts). A write
// blocked on a terminal whose app does not read is cut short by a write
// deadline, keeping what it wrote; without deadlines (a terminal the
// runtime cannot poll) it is not waited for and the count is not exact.
func (s *session) moveInput(a *attachment) (int64, bool) {
	s.inAtt.Store(a)
	if s.term == nil || !s.term.pollable {
		return s.in.Load(), false
	}
	s.term.master.SetWriteDeadline(time.Now())
	s.inMu.Lock()
	defer s.inMu.Unlock()
	s.term.master.SetWriteDeadline(time.Time{})
	n, exact := s.in.Load(), s.inExact
	s.inExact = true // from here on this appd counts every byte
	return n, exact
}
