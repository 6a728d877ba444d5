// Package audit writes the audit trail: one JSON line per event (who
// logged in, where a session was placed, what was spawned, attached,
// detached, resumed, taken over and how it ended, what an admin did),
// each with its time, node, schema version and, where there is one, the
// session id that ties a session's events together. Every string is
// escaped and capped with safelog before it is written; callers never
// pass a secret (no password, no token).
//
// Emit never blocks: events go through a buffered channel to one writer
// goroutine, and an event that finds the buffer full is dropped and
// counted (Dropped, and a log line). The sink is a file with size-based
// rotation (Rotator), or any writer (stdout, for journald).
//
// It imports only safelog.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/safelog"
)

// Version is the schema version written in every event's "v".
const Version = 1

// Caps, in bytes of the original text, of strings in events.
const (
	maxText   = safelog.Max // a name, an address, an argument
	maxReason = 1024        // a "reason" field: an admin's or a placement's words
	maxWords  = 16          // entries of a []string field (argv); the rest are counted
)

// DefaultBuffer is how many events wait for the writer before Emit drops.
const DefaultBuffer = 4096

// Event is one audit line. Fields holds the event's own fields (see the
// README's schema); strings in it are escaped and capped.
type Event struct {
	TS      time.Time      `json:"ts"`
	V       int            `json:"v"`
	Node    string         `json:"node"`
	Event   string         `json:"event"`
	Session string         `json:"session,omitempty"`
	User    string         `json:"user,omitempty"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// Log writes one node's events. A nil *Log drops every event, so callers
// need no check.
type Log struct {
	node   string
	out    io.Writer
	closer io.Closer
	log    *slog.Logger
	now    func() time.Time

	ch      chan item
	done    chan struct{}
	dropped atomic.Uint64
	once    sync.Once
	mu      sync.RWMutex // held for reading by Emit, for writing by Close
	closed  bool
}

// Options configure New.
type Options struct {
	Node   string       // written in every event
	Out    io.Writer    // the sink; closed by Close if it is an io.Closer
	Buffer int          // events waiting for the writer; DefaultBuffer if zero
	Logger *slog.Logger // write failures and drops; slog.Default() if nil
	Clock  func() time.Time
}

// New starts a Log writing to o.Out.
func New(o Options) *Log {
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	l := &Log{node: o.Node, out: o.Out, log: o.Logger, now: o.Clock,
		ch: make(chan item, o.Buffer), done: make(chan struct{})}
	if c, ok := o.Out.(io.Closer); ok {
		l.closer = c
	}
	go l.write()
	return l
}

// Emit records event for session (may be "") and user (may be ""), with
// fields as alternating keys and values (strings, []string, numbers,
// bools, time.Duration as milliseconds, time.Time). It never blocks: when
// the writer is behind by the whole buffer, the event is dropped and
// counted.
func (l *Log) Emit(event, session, user string, kv ...any) {
	if l == nil {
		return
	}
	ev := Event{TS: l.now().UTC(), V: Version, Node: l.node, Event: event,
		Session: safelog.Text(session, maxText), User: safelog.Text(user, maxText), Fields: Fields(kv...)}
	line, err := json.Marshal(ev)
	if err != nil {
		l.log.Error("audit event not encoded", "event", event, "err", err.Error())
		return
	}
	line = append(line, '\n')
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.ch <- item{line: line}:
	default:
		l.dropped.Add(1)
	}
}

// item is one line for the writer, or (line nil) a Flush waiting for it.
type item struct {
	line    []byte
	flushed chan struct{}
}

// Flush waits until every event emitted before it has been handed to the
// sink, or ctx ends. It is for rare events that must outlive a crash
// that follows them (an admin's action), never for the keystroke path.
func (l *Log) Flush(ctx context.Context) error {
	if l == nil {
		return nil
	}
	done := make(chan struct{})
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil
	}
	select {
	case l.ch <- item{flushed: done}:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fields turns alternating keys and values into an event's fields, each
// string escaped and capped ("reason" at 1 KiB, others at safelog.Max), a
// []string to its first 16 entries. A key without a value is dropped.
func Fields(kv ...any) map[string]any {
	if len(kv) < 2 {
		return nil
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			continue
		}
		m[k] = value(k, kv[i+1])
	}
	return m
}

// value makes v safe to write under key k.
func value(k string, v any) any {
	switch v := v.(type) {
	case string:
		max := maxText
		if k == "reason" {
			max = maxReason
		}
		return safelog.Text(v, max)
	case []string:
		out := make([]string, 0, min(len(v), maxWords+1))
		for i, s := range v {
			if i == maxWords {
				out = append(out, fmt.Sprintf("...(%d more)", len(v)-maxWords))
				break
			}
			out = append(out, safelog.Text(s, maxText))
		}
		return out
	case time.Duration:
		return v.Milliseconds()
	case time.Time:
		return v.UTC()
	case error:
		return safelog.Text(v.Error(), maxReason)
	case fmt.Stringer:
		return safelog.Text(v.String(), maxText)
	}
	return v
}

// Dropped is the number of events dropped because the buffer was full.
func (l *Log) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// dropReportEvery bounds how often drops are logged.
const dropReportEvery = 10 * time.Second

// write writes queued lines until Close.
func (l *Log) write() {
	defer close(l.done)
	var reported uint64
	var at time.Time
	for it := range l.ch {
		if it.flushed != nil {
			close(it.flushed)
			continue
		}
		if _, err := l.out.Write(it.line); err != nil {
			l.log.Error("audit event not written", "err", err.Error())
		}
		if d := l.dropped.Load(); d > reported && time.Since(at) >= dropReportEvery {
			l.log.Warn("audit events dropped: the audit sink is too slow", "dropped", d-reported, "total", d)
			reported, at = d, time.Now()
		}
	}
	if d := l.dropped.Load(); d > reported {
		l.log.Warn("audit events dropped: the audit sink is too slow", "dropped", d-reported, "total", d)
	}
}

// Close writes what is queued, stops the writer and closes the sink. Events
// emitted afterwards are dropped silently.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.ch)
		l.mu.Unlock()
		<-l.done
		if l.closer != nil {
			err = l.closer.Close()
		}
	})
	return err
}
