package appd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Record modes of App.Record.
const (
	RecordOff    = ""       // no recording (also "off")
	RecordOutput = "output" // what the app writes to its terminal
	RecordInput  = "input"  // that, and what the user types
)

// Recording says where and how appd records sessions; see
// Manager.SetRecording.
type Recording struct {
	Dir       string        // where recordings go, one file per session; none recorded if empty
	MaxSize   int64         // most bytes per recording; unlimited if zero
	Retention time.Duration // recordings last written longer ago are deleted; kept if zero
	// NotifyWatch tells the user, with one line on the terminal, that an
	// administrator has started watching the session.
	NotifyWatch bool
}

// A recording's writer takes what the session queued every recBatch:
// the session never waits for it nor wakes it more than once a batch.
// When it falls recQueue events or recQueueBytes behind, events are
// dropped and the recording says so with a marker: the app and its user
// never wait for the disk.
const (
	recBatch      = 50 * time.Millisecond
	recQueue      = 4096
	recQueueBytes = 4 << 20
)

// recMarkerRoom is kept free under MaxSize for the final marker.
const recMarkerRoom = 256

// recEvent is one asciicast event on its way to the file; its data is
// queue.data[from:to].
type recEvent struct {
	at       time.Duration // since the recording started
	kind     byte          // 'o' output, 'i' input, 'r' resize, 'm' marker
	from, to int
	gap      int64 // events dropped just before this one
}

// recBatchQueue is a batch of events and the bytes they refer to.
type recBatchQueue struct {
	events []recEvent
	data   []byte
}

// recorder writes one session's asciicast v2 file. The session hands it
// copies of what it relays (send never blocks); one goroutine (run)
// writes them out.
type recorder struct {
	start time.Time
	input bool   // record input events too
	path  string // for the log

	mu      sync.Mutex // guards the fields below
	closed  bool
	dropped int64
	queue   recBatchQueue // what the writer has yet to take
	spare   recBatchQueue // the writer's last batch, given back for reuse

	kick    chan struct{} // signalled when the queue stops being empty
	closing chan struct{} // closed by close: write what is left, now
	done    chan struct{} // closed when run has closed the file
}

// castHeader is the first line of an asciicast v2 file.
type castHeader struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp"`
	Env       map[string]string `json:"env"`
	Title     string            `json:"title,omitempty"`
}

// recordingName is the file name of session id's recording of app: both
// are appd's own (a random hex id and a configured app name), never a
// client's words.
func recordingName(id, app string) string { return id + "-" + app + ".cast" }

// newRecorder creates the recording file of a session and starts its
// writer. hdr is written first.
func newRecorder(cfg Recording, id, app string, input bool, hdr castHeader, log *slog.Logger) (*recorder, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("recording: create %s: %w", cfg.Dir, err)
	}
	path := filepath.Join(cfg.Dir, recordingName(id, app))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := newQueue(input, path)
	hdr.Version, hdr.Timestamp = 2, r.start.Unix()
	w := &castWriter{bw: bufio.NewWriterSize(f, 32<<10), max: cfg.MaxSize}
	go r.run(f, w, &hdr, log)
	return r, nil
}

// output records what the app wrote. Safe on a nil recorder.
func (r *recorder) output(p []byte) {
	if r != nil {
		r.send('o', p)
	}
}

// inputs records what the user typed, if this recording takes input.
func (r *recorder) inputs(p []byte) {
	if r != nil && r.input {
		r.send('i', p)
	}
}

// resize records a new terminal size.
func (r *recorder) resize(cols, rows uint32) {
	if r != nil {
		r.send('r', []byte(strconv.FormatUint(uint64(cols), 10)+"x"+strconv.FormatUint(uint64(rows), 10)))
	}
}

// marker records a marker event labelled label.
func (r *recorder) marker(label string) {
	if r != nil {
		r.send('m', []byte(label))
	}
}

// newQueue returns a recorder with no writer yet.
func newQueue(input bool, path string) *recorder {
	return &recorder{start: time.Now(), input: input, path: path,
		kick: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
}

// send queues one event, copying p, or counts it dropped when the writer
// is behind. It never blocks on the writer.
func (r *recorder) send(kind byte, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := &r.queue
	if r.closed || len(q.events) >= recQueue || len(q.data)+len(p) > recQueueBytes {
		r.dropped++
		return
	}
	ev := recEvent{at: time.Since(r.start), kind: kind, from: len(q.data), gap: r.dropped} // under mu: in time order
	q.data = append(q.data, p...)
	ev.to = len(q.data)
	q.events = append(q.events, ev)
	r.dropped = 0
	if len(q.events) == 1 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// take returns the queued batch and starts a new one.
func (r *recorder) take() (recBatchQueue, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.queue
	r.queue = recBatchQueue{events: r.spare.events[:0], data: r.spare.data[:0]}
	r.spare = recBatchQueue{}
	return b, r.closed
}

// giveBack returns a written batch's buffers for reuse.
func (r *recorder) giveBack(b recBatchQueue) {
	r.mu.Lock()
	if cap(b.data) <= recQueueBytes {
		r.spare = b
	}
	r.mu.Unlock()
}

// close ends the recording with a marker and waits until the file is
// written and closed. Safe on a nil recorder, and more than once.
func (r *recorder) close(label string) {
	if r == nil {
		return
	}
	r.marker(label)
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.closing)
	}
	r.mu.Unlock()
	<-r.done
}

// run writes the header (unless nil: a continued recording has one),
// then, a batch at a time, the events queued, until close.
func (r *recorder) run(f *os.File, w *castWriter, hdr *castHeader, log *slog.Logger) {
	defer close(r.done)
	if hdr != nil {
		w.header(*hdr)
	}
	for closed := false; !closed; {
		select {
		case <-r.kick:
			t := time.NewTimer(recBatch) // let the batch fill
			select {
			case <-t.C:
			case <-r.closing:
			}
			t.Stop()
		case <-r.closing:
		}
		var b recBatchQueue
		b, closed = r.take()
		for _, ev := range b.events {
			w.event(ev, b.data[ev.from:ev.to])
		}
		r.giveBack(b)
		w.flush()
	}
	w.finish()
	err := w.flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || w.err != nil {
		log.Warn("recording incomplete", "file", r.path, "err", fmt.Sprint(err, w.err))
	}
}

// castWriter encodes asciicast v2 lines, holding back a UTF-8 sequence
// cut between two chunks until its end arrives, and stopping at max bytes.
type castWriter struct {
	bw      *bufio.Writer
	max     int64 // 0: unlimited
	n       int64 // bytes written
	full    bool  // the size cap was reached: nothing more is written
	err     error // first write error
	last    time.Duration
	pending [2][]byte // incomplete UTF-8 tails of output and input
	line    []byte
}

func (w *castWriter) header(h castHeader) {
	b, err := json.Marshal(h)
	if err != nil {
		w.err = err
		return
	}
	w.write(append(b, '\n'))
}

// event writes one event, preceded by a marker if events were dropped.
func (w *castWriter) event(ev recEvent, data []byte) {
	w.last = ev.at
	if ev.gap > 0 {
		w.put(ev.at, 'm', fmt.Appendf(nil, "recording gap: %d events dropped", ev.gap))
	}
	switch ev.kind {
	case 'o', 'i':
		slot := 0
		if ev.kind == 'i' {
			slot = 1
		}
		data := append(w.pending[slot], data...)
		cut := completeUTF8(data)
		w.pending[slot] = append([]byte(nil), data[cut:]...)
		if cut > 0 {
			w.put(ev.at, ev.kind, data[:cut])
		}
	default:
		w.put(ev.at, ev.kind, data)
	}
}

// finish writes what is still held back.
func (w *castWriter) finish() {
	for slot, kind := range []byte{'o', 'i'} {
		if len(w.pending[slot]) > 0 {
			w.put(w.last, kind, w.pending[slot])
		}
	}
}

// put writes [secs, "kind", "data"] unless the size cap has been
// reached; the line that would cross it is replaced by a final marker.
func (w *castWriter) put(at time.Duration, kind byte, data []byte) {
	if w.full {
		return
	}
	w.line = appendEvent(w.line[:0], at, kind, data)
	if w.max > 0 && w.n+int64(len(w.line)) > w.max-recMarkerRoom {
		w.full = true
		w.line = appendEvent(w.line[:0], at, 'm', fmt.Appendf(nil, "recording stopped: size limit of %d bytes reached", w.max))
	}
	w.write(w.line)
}

func (w *castWriter) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.bw.Write(b)
	w.n += int64(n)
	w.err = err
}

func (w *castWriter) flush() error {
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}

// appendEvent appends one asciicast v2 event line to dst.
func appendEvent(dst []byte, at time.Duration, kind byte, data []byte) []byte {
	dst = append(dst, '[')
	dst = strconv.AppendFloat(dst, at.Seconds(), 'f', 6, 64)
	dst = append(dst, ", \""...)
	dst = append(dst, kind)
	dst = append(dst, "\", "...)
	s, _ := json.Marshal(string(data)) // invalid UTF-8 becomes U+FFFD; a string always encodes
	dst = append(dst, s...)
	return append(dst, "]\n"...)
}

// completeUTF8 returns how much of p ends on a whole UTF-8 sequence: all
// of it, unless its last bytes start a sequence that is not complete yet.
func completeUTF8(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				return i
			}
			break
		}
	}
	return len(p)
}
