package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Filter selects events when reading them back. Empty fields select all.
type Filter struct {
	User    string    `json:"user,omitempty"`    // events of this user
	Session string    `json:"session,omitempty"` // events of this session: its id, or a prefix of at least 6 characters
	Since   time.Time `json:"since,omitzero"`    // events at or after this time
	Max     int       `json:"max,omitempty"`     // the latest Max events; DefaultMax if zero
	// Conns adds, to a Session filter, the events of these connections
	// (their "conn" field): the login and the placement that led to the
	// session. ReadFile adds the connections of the session's own events
	// in the file by itself.
	Conns []string `json:"conns,omitempty"`
}

// DefaultMax bounds the events one read returns.
const DefaultMax = 10000

// maxLine bounds one line read back; longer ones are skipped.
const maxLine = 1 << 20

// Match reports whether ev passes f.
func (f Filter) Match(ev Event) bool {
	switch {
	case f.User != "" && ev.User != f.User:
		return false
	case f.Session != "" && !matchSession(ev.Session, f.Session) && !slices.Contains(f.Conns, ConnOf(ev)):
		return false
	case !f.Since.IsZero() && ev.TS.Before(f.Since):
		return false
	}
	return true
}

// ConnOf is the connection an event belongs to (its "conn" field), or "".
func ConnOf(ev Event) string {
	c, _ := ev.Fields["conn"].(string)
	return c
}

func matchSession(id, want string) bool {
	if len(want) >= 6 {
		return id != "" && strings.HasPrefix(id, want)
	}
	return id == want
}

// ReadFile reads the events of path and its rotated files (PATH.N, oldest
// first, then PATH) that pass f, in the order written, at most f.Max of
// them (the latest). With f.Session, the events of the connections
// ("conn") of that session's events are included too. Lines that do not
// parse are skipped. A missing file reads as no events.
func ReadFile(path string, f Filter) ([]Event, error) {
	if f.Session != "" {
		f.Conns = slices.Clone(f.Conns)
		for _, p := range files(path) {
			evs, _ := readOne(p, Filter{Session: f.Session})
			for _, ev := range evs {
				if c := ConnOf(ev); c != "" && !slices.Contains(f.Conns, c) {
					f.Conns = append(f.Conns, c)
				}
			}
		}
	}
	max := f.Max
	if max <= 0 {
		max = DefaultMax
	}
	var out []Event
	for _, p := range files(path) {
		evs, err := readOne(p, f)
		if err != nil {
			return out, err
		}
		out = append(out, evs...)
		if len(out) > max {
			out = slices.Delete(out, 0, len(out)-max)
		}
	}
	return out, nil
}

// files lists path's rotated files, oldest first, then path.
func files(path string) []string {
	matches, _ := filepath.Glob(path + ".*")
	type numbered struct {
		n    int
		path string
	}
	var rot []numbered
	for _, m := range matches {
		if n, err := strconv.Atoi(strings.TrimPrefix(m, path+".")); err == nil && n > 0 {
			rot = append(rot, numbered{n, m})
		}
	}
	slices.SortFunc(rot, func(a, b numbered) int { return b.n - a.n })
	out := make([]string, 0, len(rot)+1)
	for _, r := range rot {
		out = append(out, r.path)
	}
	return append(out, path)
}

// readOne reads the events of one file that pass f.
func readOne(path string, f Filter) ([]Event, error) {
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit read %s: %w", path, err)
	}
	defer file.Close()
	var out []Event
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		ev, ok := Parse(sc.Bytes())
		if ok && f.Match(ev) {
			out = append(out, ev)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return out, fmt.Errorf("audit read %s: %w", path, err)
	}
	return out, nil
}

// Parse decodes one audit line; numbers in Fields stay json.Number.
func Parse(line []byte) (Event, bool) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil || ev.Event == "" {
		return Event{}, false
	}
	return ev, true
}

// Merge merges lists of events, each in time order, into one in time
// order (stable: events of the same time keep their list's order).
func Merge(lists ...[]Event) []Event {
	var out []Event
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.TS.Compare(b.TS) })
	return out
}
