package safelog

import (
	"sync"
	"time"
)

// DefaultWindow is a Repeats' window when none is set.
const DefaultWindow = 10 * time.Second

// maxKeys bounds the sources a Repeats tracks at once; events of further
// sources are counted under Overflow.
const maxKeys = 4096

// Overflow is the key that stands for every source beyond the first
// maxKeys tracked at once.
const Overflow = "other addresses"

// Repeats summarises an event that repeats per key (a client address): the
// first Burst occurrences in a window are logged in full, the rest are only
// counted, and when the window ends Summary is called once with their
// number ("N more connections refused from ADDR in the last 10s"). A flood
// thus costs about one line per source per window. The zero value is
// ready to use, with DefaultWindow and no summary.
type Repeats struct {
	Window  time.Duration                                 // DefaultWindow if zero
	Burst   int                                           // occurrences logged per key and window; 1 if zero
	Summary func(key string, n int, window time.Duration) // called from a timer goroutine; may be nil

	mu sync.Mutex         // guards m
	m  map[string]*repeat // keys in their window
}

type repeat struct{ seen, held int }

// Allow reports whether this occurrence for key should be logged: true for
// the first Burst in its window, false for the others, which are counted
// for the summary.
func (r *Repeats) Allow(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]*repeat)
	}
	if rep, ok := r.m[key]; ok {
		return r.again(rep)
	}
	if len(r.m) >= maxKeys {
		key = Overflow
		if rep, ok := r.m[key]; ok {
			return r.again(rep)
		}
	}
	r.m[key] = &repeat{seen: 1}
	time.AfterFunc(r.window(), func() { r.close(key) })
	return true
}

// again counts a further occurrence in rep's window: logged while within
// Burst, held for the summary after. Callers hold mu.
func (r *Repeats) again(rep *repeat) bool {
	if rep.seen < max(r.Burst, 1) {
		rep.seen++
		return true
	}
	rep.held++
	return false
}

// close ends key's window and reports what it held back.
func (r *Repeats) close(key string) {
	r.mu.Lock()
	rep := r.m[key]
	delete(r.m, key)
	r.mu.Unlock()
	if rep != nil && rep.held > 0 && r.Summary != nil {
		r.Summary(key, rep.held, r.window())
	}
}

func (r *Repeats) window() time.Duration {
	if r.Window > 0 {
		return r.Window
	}
	return DefaultWindow
}
