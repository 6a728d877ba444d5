package tui

import (
	"errors"
	"io"
	"sync"
	"time"
)

// errInputEnded is what bubbletea reads once Options.In has failed or hit
// EOF. It must not be io.EOF: bubbletea ignores io.EOF from its input and
// would keep showing a picker nobody can answer.
var errInputEnded = errors.New("tui: input ended")

// deadliner is the subset of net.Conn and *os.File that lets a pending Read
// be interrupted without closing the reader.
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

// input stands between Options.In and bubbletea. bubbletea cannot cancel a
// Read on a reader that is not a terminal file, so it would leave its read
// goroutine blocked on the gateway's input after Run returns, and that
// goroutine would swallow the first keys meant for the app. input owns the
// only reads of Options.In: one pump goroutine, which stop ends by setting
// a read deadline in the past when the reader has SetReadDeadline.
// bubbletea reads from input, whose Read returns io.EOF once stopped.
type input struct {
	src    io.Reader
	chunks chan []byte   // pump to Read, one chunk at a time
	failed chan struct{} // closed when the pump met err
	done   chan struct{} // closed by stop
	exited chan struct{} // closed when the pump returns

	mu  sync.Mutex
	err error // guarded by mu: why src ended, set before failed is closed

	pending []byte // unread rest of a chunk; used by Read only
}

// newInput starts pumping src.
func newInput(src io.Reader) *input {
	in := &input{
		src:    src,
		chunks: make(chan []byte),
		failed: make(chan struct{}),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go in.pump()
	return in
}

// pump reads src until it fails or stop is called.
func (in *input) pump() {
	defer close(in.exited)
	for {
		select {
		case <-in.done:
			return
		default:
		}
		buf := make([]byte, 256)
		n, err := in.src.Read(buf)
		if n > 0 {
			select {
			case in.chunks <- buf[:n]:
			case <-in.done:
				return // bytes read after the picker ended are dropped
			}
		}
		if err != nil {
			select {
			case <-in.done:
			default:
				in.mu.Lock()
				in.err = err
				in.mu.Unlock()
				close(in.failed)
			}
			return
		}
	}
}

// Read implements io.Reader for bubbletea.
func (in *input) Read(p []byte) (int, error) {
	if len(in.pending) == 0 {
		select {
		case in.pending = <-in.chunks:
		case <-in.failed:
			return 0, errInputEnded
		case <-in.done:
			return 0, io.EOF
		}
	}
	n := copy(p, in.pending)
	in.pending = in.pending[n:]
	return n, nil
}

// error returns why src ended, or nil.
func (in *input) error() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

// stop ends Read and the pump. When src has SetReadDeadline, stop
// interrupts the pending Read, waits for the pump to return and clears the
// deadline again, so src is left as it was found and nothing is left
// reading it. Otherwise the pump's pending Read cannot be interrupted: it
// returns when src yields data or fails, and that data is dropped.
func (in *input) stop() {
	close(in.done)
	d, ok := in.src.(deadliner)
	if !ok || d.SetReadDeadline(time.Now()) != nil {
		return
	}
	select {
	case <-in.exited:
	case <-time.After(time.Second):
	}
	_ = d.SetReadDeadline(time.Time{})
}

// output hides Options.Out's concrete type from bubbletea, so that it never
// treats a terminal file as its own (querying its size, listening for
// SIGWINCH, changing its modes).
type output struct{ w io.Writer }

// Write implements io.Writer.
func (o output) Write(p []byte) (int, error) { return o.w.Write(p) }
