package sshgate

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// errLendOver refuses what the input pump writes once NoApp has returned:
// the bytes stay with the pump, for the app.
var errLendOver = errors.New("sshgate: the picker has returned the input")

// lentInput is the client's input lent to NoApp. While NoApp runs it is
// the target of the session's one input pump (type input): a Read takes
// its bytes straight from the pump's pending Write, so nothing is
// buffered or copied here and no goroutine is added. Once end is called,
// Read returns io.EOF without taking a byte, and what the pump was
// writing goes back to it, for the app that comes next.
type lentInput struct {
	mu       sync.Mutex
	cond     *sync.Cond
	p        []byte    // the pending Write's bytes not read yet; guarded by mu
	eof      bool      // the client's input ended (CloseWrite); guarded by mu
	over     bool      // end was called; guarded by mu
	deadline time.Time // guarded by mu
}

func lendInput() *lentInput {
	l := &lentInput{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// Write hands p to the reader, returning once it took all of it or end
// was called (then with what it took and errLendOver).
func (l *lentInput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.over {
		return 0, errLendOver
	}
	l.p = p
	l.cond.Broadcast()
	for len(l.p) > 0 && !l.over {
		l.cond.Wait()
	}
	n := len(p) - len(l.p)
	l.p = nil
	if n < len(p) {
		return n, errLendOver
	}
	return n, nil
}

// CloseWrite is the client's EOF: Read returns io.EOF once it has taken
// what was written. It returns errLendOver, so that the pump passes the
// EOF on to the app, if one comes next.
func (l *lentInput) CloseWrite() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.eof = true
	l.cond.Broadcast()
	return errLendOver
}

// end takes the input back: Read returns io.EOF from now on, and a Write
// under way returns.
func (l *lentInput) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.over = true
	l.cond.Broadcast()
}

// SetReadDeadline makes Read return os.ErrDeadlineExceeded, without
// taking bytes, from t on; the zero t clears it. The picker (package tui)
// uses it to end its pending Read before it returns.
func (l *lentInput) SetReadDeadline(t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deadline = t
	if !t.IsZero() {
		time.AfterFunc(time.Until(t), func() {
			l.mu.Lock()
			l.cond.Broadcast()
			l.mu.Unlock()
		})
	}
	l.cond.Broadcast()
	return nil
}

func (l *lentInput) expired() bool {
	return !l.deadline.IsZero() && !time.Now().Before(l.deadline)
}

// Read takes bytes of the pump's pending Write, waiting for one.
func (l *lentInput) Read(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.p) == 0 && !l.eof && !l.over && !l.expired() {
		l.cond.Wait()
	}
	switch {
	case l.over:
		return 0, io.EOF
	case l.expired():
		return 0, os.ErrDeadlineExceeded
	case len(l.p) > 0:
		n := copy(b, l.p)
		l.p = l.p[n:]
		if len(l.p) == 0 {
			l.cond.Broadcast() // the Write is done
		}
		return n, nil
	}
	return 0, io.EOF
}
