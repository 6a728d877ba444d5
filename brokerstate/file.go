package brokerstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"switchyard/control"
)

// FileName is the name of a lone broker's state file in its state_dir.
const FileName = "broker-state.json"

// DefaultFlushDelay is how long File gathers session writes before it
// writes them out in one go.
const DefaultFlushDelay = 150 * time.Millisecond

// ErrClosed is returned by a File's methods after Close.
var ErrClosed = errors.New("broker state closed")

// fileData is the layout of the state file.
type fileData struct {
	Format       int                            `json:"format"`
	Drains       map[string]Drain               `json:"drains"`
	Locks        map[string]Lock                `json:"locks,omitempty"`
	Reservations map[string]Reservation         `json:"reservations"`
	Sessions     map[string]control.SessionInfo `json:"sessions"`
}

// File is the Store of a lone broker: the whole state in one JSON file,
// replaced atomically (a temporary file in the same directory, synced,
// renamed over it, and the directory synced) on every write. Drains and
// reservations are written before their Put or Delete returns; session
// changes are gathered for FlushDelay and written together, and on Close.
type File struct {
	path  string
	delay time.Duration
	log   *slog.Logger
	lock  *os.File // path + ".lock", flocked while open: one broker per file

	wmu sync.Mutex // serialises writes to disk, so a later write never lands before an earlier one

	mu      sync.Mutex // guards the fields below
	data    fileData
	dirty   bool // session changes not yet written
	pending *time.Timer
	timers  sync.WaitGroup // the pending timer, until it has run or been stopped
	closed  bool
}

// OpenFile opens the state file at path, creating it (and its directory)
// if it does not exist. A file that does not parse, or holds another
// FormatVersion, is refused with an error naming it; it is never
// overwritten. log receives failures of batched writes; nil means
// slog.Default().
func OpenFile(path string, log *slog.Logger) (*File, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &File{path: path, delay: DefaultFlushDelay, log: log, data: emptyData()}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("broker state %s: %w", path, err)
	}
	if err := f.takeLock(); err != nil {
		return nil, err
	}
	if err := f.load(); err != nil {
		f.lock.Close()
		return nil, err
	}
	return f, nil
}

// takeLock takes the file's lock, or fails if another process holds it.
func (f *File) takeLock() error {
	lock, err := os.OpenFile(f.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("broker state %s: %w", f.path, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("broker state %s: in use by another broker", f.path)
		}
		return fmt.Errorf("broker state %s: lock: %w", f.path, err)
	}
	f.lock = lock
	return nil
}

// load reads the file, or creates it.
func (f *File) load() error {
	path := f.path
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Write it now: an unwritable state_dir fails the start, not the
		// first drain.
		return f.write()
	case err != nil:
		return fmt.Errorf("broker state %s: %w", path, err)
	}
	if err := decodeData(raw, &f.data); err != nil {
		return fmt.Errorf("broker state %s: %w; refusing to use or overwrite it (move it away to start afresh)", path, err)
	}
	return nil
}

func emptyData() fileData {
	return fileData{Format: FormatVersion, Drains: map[string]Drain{}, Locks: map[string]Lock{},
		Reservations: map[string]Reservation{}, Sessions: map[string]control.SessionInfo{}}
}

// decodeData parses a state file's content into d, checking its format
// version first.
func decodeData(raw []byte, d *fileData) error {
	var head struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("not a broker state file: %w", err)
	}
	if head.Format == nil {
		return errors.New("not a broker state file: no format version")
	}
	if *head.Format != FormatVersion {
		return fmt.Errorf("format version %d, this broker knows only %d", *head.Format, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(d); err != nil {
		return fmt.Errorf("not a broker state file: %w", err)
	}
	if d.Drains == nil {
		d.Drains = map[string]Drain{}
	}
	if d.Locks == nil {
		d.Locks = map[string]Lock{}
	}
	if d.Reservations == nil {
		d.Reservations = map[string]Reservation{}
	}
	if d.Sessions == nil {
		d.Sessions = map[string]control.SessionInfo{}
	}
	return nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Load returns a copy of the whole state.
func (f *File) Load(ctx context.Context) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return State{}, ErrClosed
	}
	st := State{Drains: maps.Clone(f.data.Drains), Locks: maps.Clone(f.data.Locks), Reservations: maps.Clone(f.data.Reservations),
		Sessions: maps.Clone(f.data.Sessions)}
	for id, r := range st.Reservations {
		r.Args = slices.Clone(r.Args)
		st.Reservations[id] = r
	}
	return st, nil
}

// PutDrain records d, durably.
func (f *File) PutDrain(ctx context.Context, d Drain) error {
	return f.durable("put drain", func() { f.data.Drains[d.Server] = d })
}

// DeleteDrain forgets the drain of server, durably.
func (f *File) DeleteDrain(ctx context.Context, server string) error {
	return f.durable("delete drain", func() { delete(f.data.Drains, server) })
}

// PutLock records l, durably.
func (f *File) PutLock(ctx context.Context, l Lock) error {
	return f.durable("put lock", func() { f.data.Locks[l.User] = l })
}

// DeleteLock forgets the lock of user, durably.
func (f *File) DeleteLock(ctx context.Context, user string) error {
	return f.durable("delete lock", func() { delete(f.data.Locks, user) })
}

// PutReservation records r, durably.
func (f *File) PutReservation(ctx context.Context, r Reservation) error {
	r.Args = slices.Clone(r.Args)
	return f.durable("put reservation", func() { f.data.Reservations[r.ID] = r })
}

// DeleteReservation forgets reservation id, durably.
func (f *File) DeleteReservation(ctx context.Context, id string) error {
	return f.durable("delete reservation", func() { delete(f.data.Reservations, id) })
}

// PutSession records s; it is written within FlushDelay.
func (f *File) PutSession(ctx context.Context, s control.SessionInfo) error {
	s.Via, s.Addr = nil, "" // a session list's, not the registry's
	return f.batched(func() { f.data.Sessions[s.ID] = s })
}

// DeleteSession forgets session id; it is written within FlushDelay.
func (f *File) DeleteSession(ctx context.Context, id string) error {
	return f.batched(func() { delete(f.data.Sessions, id) })
}

// Close writes the batched session changes and releases the file. Later
// calls return ErrClosed.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	if f.pending != nil && f.pending.Stop() {
		f.timers.Done()
	}
	f.mu.Unlock()
	f.timers.Wait() // a flush under way lands before the last one
	err := f.flush()
	f.lock.Close() // releases the flock
	return err
}

// durable changes the state with change and writes it before returning.
func (f *File) durable(op string, change func()) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	change()
	f.mu.Unlock()
	if err := f.write(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// batched changes the state with change and schedules a write.
func (f *File) batched(change func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	change()
	if !f.dirty {
		f.dirty = true
		f.timers.Add(1)
		f.pending = time.AfterFunc(f.delay, func() {
			defer f.timers.Done()
			f.flushLogged()
		})
	}
	return nil
}

// flushLogged writes batched changes, logging a failure; they are
// retried with the next write.
func (f *File) flushLogged() {
	if err := f.flush(); err != nil {
		f.log.Error("broker state: session changes not written; retried with the next change", "err", err.Error())
	}
}

// flush writes the state if session changes wait.
func (f *File) flush() error {
	f.mu.Lock()
	dirty := f.dirty
	f.mu.Unlock()
	if !dirty {
		return nil
	}
	return f.write()
}

// write writes the current state to disk. The state is encoded under
// f.wmu, so what lands last is always the newest.
func (f *File) write() error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.mu.Lock()
	raw, err := json.MarshalIndent(&f.data, "", " ")
	wasDirty := f.dirty
	f.dirty = false // everything changed so far is in raw
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode broker state: %w", err)
	}
	if err := writeAtomic(f.path, append(raw, '\n')); err != nil {
		f.mu.Lock()
		f.dirty = f.dirty || wasDirty
		f.mu.Unlock()
		return err
	}
	return nil
}

// writeAtomic replaces path with data: a temporary file in the same
// directory is written and synced, renamed over path, and the directory
// synced, so that path holds either the old or the new content, whole.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write broker state %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write broker state %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync broker state %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write broker state %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace broker state %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory of broker state %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory of broker state %s: %w", path, err)
	}
	return nil
}
