package loadgen

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Summary describes a set of latencies.
type Summary struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Summarize sorts lat and returns its percentiles; nil when it is empty.
func Summarize(lat []time.Duration) *Summary {
	if len(lat) == 0 {
		return nil
	}
	slices.Sort(lat)
	return &Summary{N: len(lat), P50: Percentile(lat, 50), P90: Percentile(lat, 90),
		P99: Percentile(lat, 99), Max: lat[len(lat)-1]}
}

// Percentile is the p-th percentile (0..100) of sorted by the nearest-rank
// method: the smallest value at least p percent of the values are at or
// below. It is 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// maxErrors is how many failure messages a result keeps.
const maxErrors = 5

// failures counts failed operations and keeps the first few errors; it is
// safe for concurrent use.
type failures struct {
	mu    sync.Mutex // guards n and first
	n     int
	first []string
}

func (f *failures) add(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < maxErrors {
		f.first = append(f.first, err.Error())
	}
}

func (f *failures) addf(format string, args ...any) { f.add(fmt.Errorf(format, args...)) }

// into copies the count and messages into r.
func (f *failures) into(r *Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.Failed += f.n
	r.Errors = append(r.Errors, f.first...)
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex // guards d
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}
