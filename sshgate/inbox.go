package sshgate

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"switchyard/bufcopy"
)

// inbox reads the client's stdin in one goroutine and hands the bytes to
// one reader at a time. It lets the gateway lend the input to NoApp and
// take it back for the app: a picker that leaves a Read blocked when it
// returns (bubbletea does, on readers that are not files) would otherwise
// steal the first bytes the user types to the app.
type inbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte // read from the client, not yet taken; guarded by mu
	err    error  // the client read's error (io.EOF at its end), once buf is empty; guarded by mu
	owner  uint64 // the reader that may take bytes; guarded by mu
	closed bool   // close was called; guarded by mu
}

// newInbox starts reading src.
func newInbox(src io.Reader) *inbox {
	ib := &inbox{}
	ib.cond = sync.NewCond(&ib.mu)
	go ib.pump(src)
	return ib
}

// pump copies src into buf until src ends or the inbox is closed. It
// copies with bufcopy, as the relay does: while the client only types, it
// reads into a small buffer, and it borrows a large one only while a read
// fills the small one.
func (ib *inbox) pump(src io.Reader) {
	err := bufcopy.Copy(inboxWriter{ib}, src, nil)
	if err == nil {
		err = io.EOF
	}
	ib.mu.Lock()
	defer ib.mu.Unlock()
	ib.err = err
	ib.cond.Broadcast()
}

// errInboxClosed ends the pump's copy once the inbox is closed.
var errInboxClosed = errors.New("sshgate: inbox closed")

// inboxWriter is where the pump's copy writes: into buf, for the readers.
type inboxWriter struct{ ib *inbox }

// Write appends p to buf, first waiting while buf holds a large buffer's
// worth of bytes nobody has taken.
func (w inboxWriter) Write(p []byte) (int, error) {
	ib := w.ib
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for len(ib.buf) >= bufcopy.LargeSize && !ib.closed {
		ib.cond.Wait()
	}
	if ib.closed {
		return 0, errInboxClosed
	}
	ib.buf = append(ib.buf, p...)
	ib.cond.Broadcast()
	return len(p), nil
}

// reader returns a reader that takes bytes until the next call to reader
// (or close); after that, its Read returns io.EOF and takes nothing.
func (ib *inbox) reader() io.Reader {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	ib.owner++
	ib.cond.Broadcast() // wake the previous reader: it is done
	return &inboxReader{ib: ib, id: ib.owner}
}

// close ends every reader and the pump (once its Read returns).
func (ib *inbox) close() {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	ib.closed = true
	ib.owner++
	ib.cond.Broadcast()
}

// inboxReader is one reader of an inbox. It has SetReadDeadline, which a
// picker may use to end its pending Read before it returns.
type inboxReader struct {
	ib       *inbox
	id       uint64
	deadline time.Time // guarded by ib.mu
}

// SetReadDeadline makes Read return os.ErrDeadlineExceeded, without
// taking bytes, from t on; the zero t clears it.
func (r *inboxReader) SetReadDeadline(t time.Time) error {
	ib := r.ib
	ib.mu.Lock()
	defer ib.mu.Unlock()
	r.deadline = t
	if !t.IsZero() {
		time.AfterFunc(time.Until(t), func() {
			ib.mu.Lock()
			ib.cond.Broadcast()
			ib.mu.Unlock()
		})
	}
	ib.cond.Broadcast()
	return nil
}

func (r *inboxReader) expired() bool {
	return !r.deadline.IsZero() && !time.Now().Before(r.deadline)
}

func (r *inboxReader) Read(p []byte) (int, error) {
	ib := r.ib
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for len(ib.buf) == 0 && ib.err == nil && ib.owner == r.id && !r.expired() {
		ib.cond.Wait()
	}
	switch {
	case ib.owner != r.id:
		return 0, io.EOF
	case r.expired():
		return 0, os.ErrDeadlineExceeded
	case len(ib.buf) > 0:
		n := copy(p, ib.buf)
		ib.buf = ib.buf[:copy(ib.buf, ib.buf[n:])]
		if len(ib.buf) == 0 && cap(ib.buf) > bufcopy.SmallSize {
			ib.buf = nil // a paste's room is not kept for keystrokes
		}
		ib.cond.Broadcast() // the pump may write again
		return n, nil
	default:
		return 0, ib.err
	}
}
