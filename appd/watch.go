package appd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"switchyard/control"
	"switchyard/safelog"
)

// Watching: an administrator joins a running PTY session read-only
// (control.MethodWatchStart, then MethodWatchRead until the session
// ends). The session's output path (emit) appends a copy of each chunk to
// every watcher's bounded buffer and moves on: a watcher that reads
// slowly loses output, said so in its stream, and never holds the user
// back. Nothing reaches the app from a watcher.
const (
	tailSize      = 8 << 10          // latest output kept for a new watcher's first screen
	watchBuffer   = 256 << 10        // output a watcher may fall behind by before it loses some
	watchIdle     = 30 * time.Second // a watcher not read for this long is dropped
	maxWatchWait  = 10 * time.Second // cap on WatchRead.Wait
	maxWatchers   = 8                // per session
	watchedNotice = "\r\nswitchyard: an administrator is watching this session\r\n"
	// clearAltScreen is a full-screen app's first screen for a watcher:
	// the alternate screen, cleared, the cursor at the top.
	clearAltScreen = "\x1b[?1049h\x1b[H\x1b[2J"
)

// watcher is one admin watching a session.
type watcher struct {
	id string
	s  *session

	mu      sync.Mutex // guards the fields below
	buf     []byte
	dropped int  // bytes lost since the last that fitted
	ended   bool // the session has ended: buf is all there will be
	moved   bool // with ended: the session was handed to the next appd
	idle    *time.Timer

	wake chan struct{} // signalled (without blocking) when buf grows or the session ends
}

// push appends a copy of p, or drops it when the watcher is too far
// behind. It never blocks.
func (w *watcher) push(p []byte) {
	w.mu.Lock()
	if len(w.buf)+len(p) > watchBuffer {
		w.dropped += len(p)
	} else {
		w.gapNotice()
		w.buf = append(w.buf, p...)
	}
	w.mu.Unlock()
	w.signal()
}

// gapNotice tells the watcher, in its stream, how much output it lost.
// Callers hold w.mu.
func (w *watcher) gapNotice() {
	if w.dropped > 0 {
		w.buf = fmt.Appendf(w.buf, "\r\n[switchyard: %d bytes of output not shown: this watcher fell behind]\r\n", w.dropped)
		w.dropped = 0
	}
}

func (w *watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// end tells the watcher the session has ended here: moved says it went
// on in the next appd.
func (w *watcher) end(moved bool) {
	w.mu.Lock()
	w.ended, w.moved = true, moved
	w.mu.Unlock()
	w.signal()
}

// take returns up to max bytes of what is buffered, and whether the
// session has ended (or moved) with nothing left to return.
func (w *watcher) take(max int) (data []byte, ended, moved bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.idle != nil {
		w.idle.Reset(watchIdle)
	}
	w.gapNotice()
	if len(w.buf) == 0 {
		return nil, w.ended, w.moved
	}
	n := min(len(w.buf), max)
	data = slices.Clone(w.buf[:n])
	w.buf = w.buf[:copy(w.buf, w.buf[n:])]
	return data, false, false
}

// observe hands p to the tail and every watcher. Callers hold s.mu.
func (s *session) observe(p []byte) {
	s.tail.write(p)
	for _, w := range s.watchers {
		w.push(p)
	}
}

// endWatchers tells every watcher the session has ended here (moved: it
// goes on in the next appd). Callers hold s.mu.
func (s *session) endWatchers(moved bool) {
	for _, w := range s.watchers {
		w.end(moved)
	}
	s.watchers = nil
}

// input is where the user's bytes go: the terminal, and the recording
// when it takes input.
func (s *session) input() io.Writer {
	if s.rec == nil || !s.rec.input {
		return s.term.master
	}
	return recordingInput{s}
}

// recordingInput records what the user types, then writes it to the
// terminal: recorded first, an input event comes before the echo it
// causes. (A write cut short at a handover records bytes the gateway
// then sends again: they appear twice in the recording.)
type recordingInput struct{ s *session }

func (r recordingInput) Write(p []byte) (int, error) {
	r.s.rec.inputs(p)
	return r.s.term.master.Write(p)
}

// resize sizes the terminal and records the new size.
func (s *session) resize(cols, rows, width, height uint32) error {
	err := s.term.resize(cols, rows, width, height)
	if err == nil {
		s.rec.resize(cols, rows)
	}
	return err
}

// notice writes line to the user's terminal, or keeps it for their next
// attachment while detached. It is neither recorded nor watched.
func (s *session) notice(line string) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	s.mu.Lock()
	a := s.att
	if a == nil {
		s.keep([]byte(line))
	}
	s.mu.Unlock()
	if a != nil {
		a.ch.Write([]byte(line)) // a failure is the attachment's to notice
	}
}

// WatchStart joins session req.ID read-only: it returns a watcher id and
// the session's latest output, tells the user, unless the recording
// settings say not to, and with req.Redraw makes the app redraw. A
// full-screen app (on the alternate screen) is made to redraw anyway,
// and its latest output is replaced by a clear screen for the redraw to
// paint. control.CodeNoSession when the session is not a running PTY
// session of this server.
func (m *Manager) WatchStart(req control.WatchStart) (control.WatchChunk, error) {
	m.mu.Lock()
	s, closed := m.sessions[req.ID], m.closed
	notify := m.rec.NotifyWatch
	m.mu.Unlock()
	if closed {
		return control.WatchChunk{}, control.NewError(control.CodeUnavailable, "server "+m.Server+" is restarting or stopping")
	}
	if s == nil || s.term == nil {
		return control.WatchChunk{}, control.NewError(control.CodeNoSession, "no such session")
	}
	w := &watcher{id: newID(), s: s, wake: make(chan struct{}, 1)}
	s.outMu.Lock() // no output between the tail and the watcher's first push
	s.mu.Lock()
	if s.ended || len(s.watchers) >= maxWatchers {
		s.mu.Unlock()
		s.outMu.Unlock()
		return control.WatchChunk{}, control.NewError(control.CodeNoSession, "session ended or watched too often")
	}
	screen, fullScreen := s.tail.bytes(), s.tail.alt
	if fullScreen {
		// The tail of a full-screen app holds its latest changes, not
		// its screen: start from a clear alternate screen, which the
		// app's redraw below paints whole.
		screen = []byte(clearAltScreen)
	}
	s.watchers = append(s.watchers, w)
	s.mu.Unlock()
	s.outMu.Unlock()
	w.idle = time.AfterFunc(watchIdle, func() { m.dropWatcher(w) })
	m.mu.Lock()
	if m.watchers == nil {
		m.watchers = make(map[string]*watcher)
	}
	m.watchers[w.id] = w
	m.mu.Unlock()
	m.logger().Info("session watched", "id", s.info.ID, "user", s.info.User, "app", s.info.App,
		safelog.String("by", req.By), "notified", notify)
	if notify && !req.Again {
		s.notice(watchedNotice)
	}
	if req.Redraw || (fullScreen && !req.Again) {
		s.redraw(nil)
	}
	return control.WatchChunk{Watcher: w.id, Data: screen}, nil
}

// WatchRead returns the output of req's watcher since its last read,
// waiting up to req.Wait (capped) for some; empty when none came.
// Ended is set, and the watcher dropped, once the session has ended
// and all its output has been returned.
func (m *Manager) WatchRead(ctx context.Context, req control.WatchRead) (control.WatchChunk, error) {
	w := m.watcher(req)
	if w == nil {
		return control.WatchChunk{}, control.NewError(control.CodeNoSession, "no such watcher")
	}
	wait := min(time.Duration(req.Wait), maxWatchWait)
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	for {
		data, ended, moved := w.take(control.MaxRecordingChunk)
		if len(data) > 0 || ended {
			if ended {
				m.dropWatcher(w)
			}
			return control.WatchChunk{Watcher: w.id, Data: data, Ended: ended, Moved: moved}, nil
		}
		select {
		case <-w.wake:
		case <-t.C:
			return control.WatchChunk{Watcher: w.id}, nil
		case <-ctx.Done():
			return control.WatchChunk{}, fmt.Errorf("watch read: %w", ctx.Err())
		}
	}
}

// WatchStop ends req's watcher; an unknown one is not an error.
func (m *Manager) WatchStop(req control.WatchRead) {
	if w := m.watcher(req); w != nil {
		m.dropWatcher(w)
	}
}

// watcher finds req's watcher of req's session.
func (m *Manager) watcher(req control.WatchRead) *watcher {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.watchers[req.Watcher]
	if w == nil || w.s.info.ID != req.ID {
		return nil
	}
	return w
}

// dropWatcher forgets w, on the session and in the manager.
func (m *Manager) dropWatcher(w *watcher) {
	m.mu.Lock()
	delete(m.watchers, w.id)
	m.mu.Unlock()
	w.mu.Lock()
	if w.idle != nil {
		w.idle.Stop()
	}
	w.mu.Unlock()
	s := w.s
	s.mu.Lock()
	s.watchers = slices.DeleteFunc(s.watchers, func(x *watcher) bool { return x == w })
	s.mu.Unlock()
}

// tailRing keeps the last tailSize bytes written to it, in a buffer
// allocated on first use and never moved.
type tailRing struct {
	buf  []byte
	pos  int  // where the next byte goes
	full bool // buf has wrapped: buf[pos:] is older than buf[:pos]
	alt  bool // the output left the terminal on its alternate screen
}

func (t *tailRing) write(p []byte) {
	t.alt = altScreenAfter(p, t.alt)
	if t.buf == nil {
		t.buf = make([]byte, tailSize)
	}
	if len(p) >= len(t.buf) {
		copy(t.buf, p[len(p)-len(t.buf):])
		t.pos, t.full = 0, true
		return
	}
	n := copy(t.buf[t.pos:], p)
	if n < len(p) {
		t.pos = copy(t.buf, p[n:])
		t.full = true
		return
	}
	t.pos += n
	if t.pos == len(t.buf) {
		t.pos, t.full = 0, true
	}
}

// bytes returns a copy of what the ring holds, oldest first.
func (t *tailRing) bytes() []byte {
	if !t.full {
		return slices.Clone(t.buf[:t.pos])
	}
	return append(slices.Clone(t.buf[t.pos:]), t.buf[:t.pos]...)
}
