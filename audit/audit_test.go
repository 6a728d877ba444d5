package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines decodes every audit line of b.
func lines(t *testing.T, b []byte) []Event {
	t.Helper()
	var out []Event
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		ev, ok := Parse(l)
		if !ok {
			t.Fatalf("line does not parse: %q", l)
		}
		out = append(out, ev)
	}
	return out
}

func TestEmitWritesOneJSONLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := New(Options{Node: "s1", Out: &buf, Clock: func() time.Time { return at }})
	l.Emit("spawn", "abc123", "alice", "app", "top", "argv", []string{"top", "-d", "1"}, "pid", 42,
		"duration", 1500*time.Millisecond)
	l.Emit("auth.accepted", "", "bob", "method", "publickey")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	evs := lines(t, buf.Bytes())
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2:\n%s", len(evs), buf.String())
	}
	ev := evs[0]
	if !ev.TS.Equal(at) || ev.V != Version || ev.Node != "s1" || ev.Event != "spawn" || ev.Session != "abc123" || ev.User != "alice" {
		t.Errorf("header wrong: %+v", ev)
	}
	if ev.Fields["app"] != "top" || ev.Fields["pid"] != json.Number("42") || ev.Fields["duration"] != json.Number("1500") {
		t.Errorf("fields wrong: %+v", ev.Fields)
	}
	if argv, _ := ev.Fields["argv"].([]any); len(argv) != 3 || argv[2] != "1" {
		t.Errorf("argv wrong: %#v", ev.Fields["argv"])
	}
	if strings.Contains(buf.String(), `"session"`) && strings.Count(buf.String(), `"session"`) != 1 {
		t.Errorf("an event without a session has a session key:\n%s", buf.String())
	}
}

func TestEmitEscapesAndCapsClientText(t *testing.T) {
	var buf bytes.Buffer
	l := New(Options{Node: "gw1", Out: &buf})
	long := strings.Repeat("x", 100_000)
	argv := make([]string, 40)
	for i := range argv {
		argv[i] = "a"
	}
	l.Emit("auth.refused", "", "\x1b]0;pwned\x07evil", "login", "bad\x1b[2Jname\u202e", "app", long,
		"reason", strings.Repeat("r", 5000), "argv", argv)
	l.Close()
	raw := buf.String()
	if len(raw) > 4000 {
		t.Errorf("a 100 KB field made a %d-byte line", len(raw))
	}
	ev := lines(t, buf.Bytes())[0]
	if strings.ContainsAny(ev.User, "\x1b\x07") || !strings.Contains(ev.User, `\x1b`) {
		t.Errorf("user not escaped: %q", ev.User)
	}
	login := ev.Fields["login"].(string)
	if strings.ContainsAny(login, "\x1b\u202e") || !strings.Contains(login, `\u202e`) {
		t.Errorf("login not escaped: %q", login)
	}
	if app := ev.Fields["app"].(string); !strings.HasSuffix(app, "...(99872 more bytes)") {
		t.Errorf("app not capped at 128 bytes: %q", app[len(app)-40:])
	}
	if r := ev.Fields["reason"].(string); !strings.HasPrefix(r, strings.Repeat("r", 1024)+"...(") {
		t.Errorf("reason not capped at 1 KiB: %d bytes", len(r))
	}
	if a := ev.Fields["argv"].([]any); len(a) != 17 || a[16] != "...(24 more)" {
		t.Errorf("argv not capped at 16 entries: %v", a)
	}
}

// blockingWriter holds every write until release is closed.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestEmitDropsAndCountsWhenTheSinkIsStuck(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l := New(Options{Node: "s1", Out: w, Buffer: 4})
	l.Emit("first", "", "")
	<-w.entered // the writer holds "first"; the buffer is empty again
	for i := 0; i < 10; i++ {
		l.Emit("more", "", "") // 4 fit, 6 are dropped; none blocks
	}
	if got := l.Dropped(); got != 6 {
		t.Errorf("Dropped = %d, want 6", got)
	}
	close(w.release)
	l.Close()
	if n := len(lines(t, w.buf.Bytes())); n != 5 {
		t.Errorf("%d events written, want 5", n)
	}
	l.Emit("after close", "", "") // dropped silently, no panic
	var nilLog *Log
	nilLog.Emit("x", "", "")
	if nilLog.Close() != nil || nilLog.Dropped() != 0 {
		t.Error("nil Log is not a no-op")
	}
}

func TestRotatorRotatesBySizeAndKeeps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit-s1.log")
	r := &Rotator{Path: path, MaxSize: 1000, Keep: 2}
	l := New(Options{Node: "s1", Out: r})
	for i := 0; i < 100; i++ {
		l.Emit("tick", "sess", "alice", "i", i)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1", path + ".2"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("missing %s: %v", p, err)
		}
		if fi.Size() > 1000 {
			t.Errorf("%s is %d bytes, over MaxSize 1000", p, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
		raw, _ := os.ReadFile(p)
		lines(t, raw) // every line whole
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 kept beyond Keep=2 (err %v)", path, err)
	}
	evs, err := ReadFile(path, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || len(evs) >= 100 {
		t.Fatalf("read %d events back, want the latest few of 100", len(evs))
	}
	last := 99
	for i := len(evs) - 1; i >= 0; i-- {
		if got := evs[i].Fields["i"]; got != json.Number(strconv.Itoa(last)) {
			t.Fatalf("event %d of the read-back is i=%v, want %d: not in the order written", i, got, last)
		}
		last--
	}
}

func TestRotatorReopensAndAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	for round := 0; round < 2; round++ {
		r := &Rotator{Path: path, MaxSize: 1 << 20, Keep: 1}
		l := New(Options{Node: "b", Out: r})
		l.Emit("start", "", "", "round", round)
		l.Close()
	}
	evs, err := ReadFile(path, Filter{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("read %d events (err %v), want 2 from two runs", len(evs), err)
	}
}

func TestReadFileFilters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	l := New(Options{Node: "s1", Out: &Rotator{Path: path}, Clock: func() time.Time { return now }})
	l.Emit("auth.accepted", "", "alice", "conn", "c1")
	l.Emit("auth.accepted", "", "alice", "conn", "c2")
	l.Emit("spawn", "aaaaaaaa11", "alice")
	l.Emit("session.open", "aaaaaaaa11", "alice", "conn", "c1")
	now = now.Add(time.Minute)
	l.Emit("spawn", "bbbbbbbb22", "bob")
	now = now.Add(time.Minute)
	l.Emit("exit", "aaaaaaaa11", "alice")
	l.Close()
	os.WriteFile(path, append(must(os.ReadFile(path)), "not json\n{\"v\":1}\n"...), 0o600)
	for _, c := range []struct {
		f    Filter
		want int
	}{
		{Filter{}, 6},
		{Filter{User: "alice"}, 5},
		{Filter{Session: "bbbbbbbb22"}, 1},
		{Filter{Session: "aaaaaa"}, 4}, // with the login on its connection c1, not c2's
		{Filter{Session: "bbbbbbbb22", Conns: []string{"c2"}}, 2},
		{Filter{Session: "aaa"}, 0}, // a short prefix matches nothing
		{Filter{Since: t0.Add(30 * time.Second)}, 2},
		{Filter{Max: 1}, 1},
	} {
		evs, err := ReadFile(path, c.f)
		if err != nil || len(evs) != c.want {
			t.Errorf("%+v: %d events (err %v), want %d", c.f, len(evs), err, c.want)
		}
	}
	if evs, err := ReadFile(filepath.Join(t.TempDir(), "none.log"), Filter{}); err != nil || len(evs) != 0 {
		t.Errorf("missing file: %v, %v", evs, err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestMergeOrdersByTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := []Event{{TS: t0, Event: "a1"}, {TS: t0.Add(2 * time.Second), Event: "a2"}}
	b := []Event{{TS: t0.Add(time.Second), Event: "b1"}, {TS: t0.Add(3 * time.Second), Event: "b2"}}
	var got []string
	for _, ev := range Merge(a, b) {
		got = append(got, ev.Event)
	}
	if strings.Join(got, ",") != "a1,b1,a2,b2" {
		t.Errorf("merged order %v", got)
	}
}

func BenchmarkEmit(b *testing.B) {
	l := New(Options{Node: "s1", Out: &Rotator{Path: filepath.Join(b.TempDir(), "a.log")}, Buffer: 1 << 16})
	defer l.Close()
	for b.Loop() {
		l.Emit("attach", "0123456789abcdef0123456789abcdef", "alice", "gateway", "gw1", "took_over", false)
	}
}

func TestFlushWaitsForTheSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := New(Options{Node: "broker", Out: &Rotator{Path: path}})
	defer l.Close()
	l.Emit("admin.lock", "", "alice", "by", "root")
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadFile(path, Filter{})
	if err != nil || len(evs) != 1 || evs[0].Event != "admin.lock" {
		t.Fatalf("after Flush the file holds %v (err %v)", evs, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	stuck := New(Options{Node: "b", Out: w})
	defer func() { close(w.release); stuck.Close() }()
	stuck.Emit("x", "", "")
	<-w.entered
	if err := stuck.Flush(ctx); err == nil {
		t.Error("Flush on a stuck sink returned nil for an ended context")
	}
}

// TestRotatorsShareAFile: two writers on one path (a gateway and its
// successor) rotate it once between them and lose no line.
func TestRotatorsShareAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	a := &Rotator{Path: path, MaxSize: 600, Keep: 5}
	b := &Rotator{Path: path, MaxSize: 600, Keep: 5}
	defer a.Close()
	defer b.Close()
	line := []byte(`{"ts":"2026-01-01T00:00:00Z","v":1,"node":"gw1","event":"x"}` + "\n")
	for i := 0; i < 40; i++ {
		w := a
		if i%2 == 1 {
			w = b
		}
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := ReadFile(path, Filter{})
	if err != nil || len(evs) != 40 {
		t.Fatalf("read %d lines back (err %v), want 40", len(evs), err)
	}
	for _, p := range files(path) {
		if fi, err := os.Stat(p); err == nil && fi.Size() > 600 {
			t.Errorf("%s is %d bytes, over 600", p, fi.Size())
		}
	}
}
