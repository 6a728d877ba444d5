package appd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/sshmsg"
)

// castLines parses an asciicast v2 file: its header and events.
func castLines(t *testing.T, data []byte) (map[string]any, [][]any) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatalf("empty recording")
	}
	var hdr map[string]any
	if err := json.Unmarshal(sc.Bytes(), &hdr); err != nil {
		t.Fatalf("header %q: %v", sc.Text(), err)
	}
	var events [][]any
	last := -1.0
	for sc.Scan() {
		var ev []any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		at, ok1 := ev[0].(float64)
		kind, ok2 := ev[1].(string)
		_, ok3 := ev[2].(string)
		if !ok1 || !ok2 || !ok3 || !strings.Contains("oirm", kind) || len(kind) != 1 || at < last {
			t.Fatalf("event %q is not [time, code, data] in order", sc.Text())
		}
		last = at
		events = append(events, ev)
	}
	return hdr, events
}

// kindText joins the data of the events of one kind.
func kindText(events [][]any, kind string) string {
	var b strings.Builder
	for _, ev := range events {
		if ev[1] == kind {
			b.WriteString(ev[2].(string))
		}
	}
	return b.String()
}

// readRecording reads session id's whole recording through ReadRecording,
// in small chunks.
func readRecording(t *testing.T, m *Manager, id string) []byte {
	t.Helper()
	var all []byte
	for {
		c, err := m.ReadRecording(control.RecordingRead{ID: id, Offset: int64(len(all)), Max: 100})
		if err != nil {
			t.Fatalf("read recording: %v", err)
		}
		all = append(all, c.Data...)
		if c.EOF || len(c.Data) == 0 {
			return all
		}
	}
}

func recordedManager(t *testing.T, mode string, maxSize int64) (*Manager, string) {
	dir := t.TempDir()
	app := graceApp(time.Minute)
	app.Record = mode
	m := newTestManager(t, map[string]App{"rec": app})
	m.SetRecording(Recording{Dir: dir, MaxSize: maxSize, Retention: time.Hour})
	return m, dir
}

func TestRecordingIsAsciicastWithInputResizeAndMarkers(t *testing.T) {
	t.Parallel()
	m, dir := recordedManager(t, RecordInput, 0)
	c := dialManager(t, m)
	s := spawn(t, c, ptyReq("rec"))
	s.waitOutput("ready")
	s.ch.Write([]byte("héllo\n"))
	s.waitOutput("got:héllo")
	s.ch.SendRequest("window-change", false, ssh.Marshal(sshmsg.WindowChange{Cols: 90, Rows: 20}))
	s.waitOutput("size=20 90")
	s.ch.Close()
	waitState(t, m, s.started.ID, control.StateDetached)
	r := attach(t, c, attachReq(s.started.ID, "alice"))
	r.ch.Write([]byte("quit\n"))
	if got := r.exitStatus(); got != 3 {
		t.Fatalf("exit %d, want 3", got)
	}
	waitLen(t, m, 0)
	names, _ := filepath.Glob(filepath.Join(dir, "*.cast"))
	if len(names) != 1 || filepath.Base(names[0]) != s.started.ID+"-rec.cast" {
		t.Fatalf("recordings %v, want one named after the session id and app", names)
	}
	data := readRecording(t, m, s.started.ID)
	if prefix := readRecording(t, m, s.started.ID[:12]); !bytes.Equal(prefix, data) {
		t.Fatalf("read by the id's first 12 digits: %d bytes, by the id %d", len(prefix), len(data))
	}
	if disk, _ := os.ReadFile(names[0]); !bytes.Equal(disk, data) {
		t.Fatalf("ReadRecording returned %d bytes, the file has %d", len(data), len(disk))
	}
	hdr, events := castLines(t, data)
	if hdr["version"] != 2.0 || hdr["width"] != 101.0 || hdr["height"] != 33.0 || hdr["env"].(map[string]any)["TERM"] != "xterm-256color" {
		t.Fatalf("header %v", hdr)
	}
	out, in := kindText(events, "o"), kindText(events, "i")
	if !strings.Contains(out, "got:héllo") || !strings.Contains(out, "got:quit") {
		t.Fatalf("output events %q lack the echoed lines", out)
	}
	if in != "héllo\nquit\n" {
		t.Fatalf("input events %q, want what was typed", in)
	}
	for _, want := range [][2]string{{"r", "90x20"}, {"m", "detach"}, {"m", "resume"}, {"m", "exit: exit 3"}} {
		if !hasEvent(events, want[0], want[1]) {
			t.Errorf("no %q event %q in %v", want[0], want[1], events)
		}
	}
}

func hasEvent(events [][]any, kind, data string) bool {
	for _, ev := range events {
		if ev[1] == kind && strings.HasPrefix(ev[2].(string), data) {
			return true
		}
	}
	return false
}

func TestRecordingOutputOnlyHasNoInput(t *testing.T) {
	t.Parallel()
	m, _ := recordedManager(t, RecordOutput, 0)
	s := spawn(t, dialManager(t, m), ptyReq("rec"))
	s.waitOutput("ready")
	s.ch.Write([]byte("secret\nquit\n"))
	s.exitStatus()
	waitLen(t, m, 0)
	_, events := castLines(t, readRecording(t, m, s.started.ID))
	if in := kindText(events, "i"); in != "" {
		t.Fatalf("output-only recording holds input %q", in)
	}
	if !strings.Contains(kindText(events, "o"), "got:secret") {
		t.Fatalf("output missing: %v", events)
	}
}

func TestRecordingStopsAtSizeCap(t *testing.T) {
	t.Parallel()
	const limit = 4096
	m, _ := recordedManager(t, RecordOutput, limit)
	s := spawn(t, dialManager(t, m), ptyReq("rec"))
	s.waitOutput("ready")
	for i := range 200 {
		s.ch.Write([]byte(strings.Repeat("x", 40) + "\n"))
		if i == 199 {
			s.ch.Write([]byte("quit\n"))
		}
	}
	s.exitStatus()
	waitLen(t, m, 0)
	data := readRecording(t, m, s.started.ID)
	if len(data) > limit {
		t.Fatalf("recording is %d bytes, over the %d cap", len(data), limit)
	}
	_, events := castLines(t, data)
	last := events[len(events)-1]
	if last[1] != "m" || !strings.HasPrefix(last[2].(string), "recording stopped: size limit") {
		t.Fatalf("last event %v, want the size-limit marker", last)
	}
}

func TestCastWriterKeepsSplitUTF8AndMarksGaps(t *testing.T) {
	var buf bytes.Buffer
	w := &castWriter{bw: bufio.NewWriter(&buf)}
	e := []byte("é")
	w.event(recEvent{at: time.Millisecond, kind: 'o'}, []byte{'a', e[0]})
	w.event(recEvent{at: 2 * time.Millisecond, kind: 'o', gap: 5}, []byte{e[1], 'b'})
	w.event(recEvent{at: 3 * time.Millisecond, kind: 'o'}, []byte{0xff})
	w.finish()
	w.flush()
	want := "[0.001000, \"o\", \"a\"]\n" +
		"[0.002000, \"m\", \"recording gap: 5 events dropped\"]\n" +
		"[0.002000, \"o\", \"éb\"]\n" +
		"[0.003000, \"o\", \"\\ufffd\"]\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestRecorderDropsRatherThanBlocks(t *testing.T) {
	r := newQueue(false, "test") // no writer: a blocking send would hang here
	for range recQueue + 3 {
		r.output([]byte("x"))
	}
	b, _ := r.take()
	if len(b.events) != recQueue || r.dropped != 3 {
		t.Fatalf("queued %d, dropped %d; want %d and 3", len(b.events), r.dropped, recQueue)
	}
	r.output([]byte("y"))
	b, _ = r.take()
	if len(b.events) != 1 || b.events[0].gap != 3 || string(b.data[b.events[0].from:b.events[0].to]) != "y" {
		t.Fatalf("event after the gap: %+v %q, want gap 3", b.events, b.data)
	}
	if len(r.kick) != 1 {
		t.Fatal("the writer was not woken")
	}
}

func TestPruneRecordingsKeepsRecentAndRunning(t *testing.T) {
	m, dir := recordedManager(t, RecordOutput, 0)
	s := spawn(t, dialManager(t, m), ptyReq("rec"))
	s.waitOutput("ready")
	old := filepath.Join(dir, strings.Repeat("a", 32)+"-rec.cast")
	recent := filepath.Join(dir, strings.Repeat("b", 32)+"-rec.cast")
	other := filepath.Join(dir, "notes.txt")
	for _, p := range []string{old, recent, other} {
		os.WriteFile(p, []byte("{}\n"), 0o600)
	}
	past := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{old, other, filepath.Join(dir, s.started.ID+"-rec.cast")} {
		os.Chtimes(p, past, past)
	}
	n, err := m.PruneRecordings(time.Now())
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	for p, want := range map[string]bool{old: false, recent: true, other: true, filepath.Join(dir, s.started.ID+"-rec.cast"): true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

func TestReadRecordingRefusesOtherNames(t *testing.T) {
	m, dir := recordedManager(t, RecordOutput, 0)
	os.WriteFile(filepath.Join(dir, "x-rec.cast"), []byte("{}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, strings.Repeat("c", 32)+"-rec.cast"), []byte("{}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, strings.Repeat("c", 31)+"d-rec.cast"), []byte("{}\n"), 0o600)
	for _, id := range []string{"x", "../x", "*", strings.Repeat("a", 32), "cccccc", "cccccccc"} {
		if _, err := m.ReadRecording(control.RecordingRead{ID: id, Max: 10}); err == nil {
			t.Errorf("ReadRecording(%q) succeeded", id)
		}
	}
}

func TestWatchSeesScreenThenLiveOutputAndUserIsTold(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"rec": graceApp(time.Minute)})
	m.SetRecording(Recording{NotifyWatch: true})
	s := spawn(t, dialManager(t, m), ptyReq("rec"))
	s.waitOutput("ready")
	s.ch.Write([]byte("before\n"))
	s.waitOutput("got:before")
	start, err := m.WatchStart(control.WatchStart{ID: s.started.ID, By: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(start.Data), "got:before") {
		t.Fatalf("first screen %q lacks earlier output", start.Data)
	}
	s.waitOutput("an administrator is watching this session")
	s.ch.Write([]byte("after\n"))
	var seen []byte
	ctx := context.Background()
	for !bytes.Contains(seen, []byte("got:after")) {
		c, err := m.WatchRead(ctx, control.WatchRead{ID: s.started.ID, Watcher: start.Watcher, Wait: int64(time.Second)})
		if err != nil || c.Ended {
			t.Fatalf("watch read: %v ended %v, seen %q", err, c.Ended, seen)
		}
		seen = append(seen, c.Data...)
	}
	if bytes.Contains(seen, []byte("administrator")) {
		t.Fatalf("the watcher was shown the user's notice: %q", seen)
	}
	s.ch.Write([]byte("quit\n"))
	s.exitStatus()
	for {
		c, err := m.WatchRead(ctx, control.WatchRead{ID: s.started.ID, Watcher: start.Watcher, Wait: int64(time.Second)})
		if err != nil {
			t.Fatalf("watch read after the end: %v", err)
		}
		if c.Ended {
			break
		}
	}
	if _, err := m.WatchRead(ctx, control.WatchRead{ID: s.started.ID, Watcher: start.Watcher}); err == nil {
		t.Fatal("an ended watcher still reads")
	}
}

func TestSlowWatcherLosesOutputNotTheUser(t *testing.T) {
	t.Parallel()
	// 1 MiB once the watcher is in place, four times its buffer.
	m := newTestManager(t, map[string]App{"zeros": sh("stty -echo; echo ready; read go; head -c 1048576 /dev/zero | tr '\\0' z; echo; echo done")})
	c := dialManager(t, m)
	s := spawn(t, c, ptyReq("zeros"))
	s.waitOutput("ready")
	w, err := m.WatchStart(control.WatchStart{ID: s.started.ID})
	if err != nil {
		t.Fatal(err)
	}
	s.ch.Write([]byte("go\n"))
	s.waitOutput("done") // the watcher has not read a byte: the user got everything anyway
	var all []byte
	for {
		c, err := m.WatchRead(context.Background(), control.WatchRead{ID: s.started.ID, Watcher: w.Watcher, Wait: int64(time.Second)})
		if err != nil || c.Ended {
			break
		}
		all = append(all, c.Data...)
	}
	if len(all) > watchBuffer+1024 {
		t.Fatalf("the watcher got %d bytes, more than its %d buffer", len(all), watchBuffer)
	}
	if !bytes.Contains(all, []byte("bytes of output not shown")) {
		t.Fatalf("the watcher was not told it lost output")
	}
}

func TestTailRingKeepsTheLatestBytes(t *testing.T) {
	var r tailRing
	var all []byte
	for i := range 3000 {
		p := []byte(strings.Repeat(string(rune('a'+i%26)), i%17))
		r.write(p)
		all = append(all, p...)
		want := all[max(0, len(all)-tailSize):]
		if got := r.bytes(); !bytes.Equal(got, want) {
			t.Fatalf("after %d writes: %d bytes, want the last %d", i+1, len(got), len(want))
		}
	}
	big := bytes.Repeat([]byte("Z"), tailSize+10)
	r.write(big)
	if !bytes.Equal(r.bytes(), big[10:]) {
		t.Fatal("a write larger than the ring does not leave its end")
	}
}

func TestWatchRedrawMakesTheAppRedraw(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"rec": graceApp(time.Minute)})
	s := spawn(t, dialManager(t, m), ptyReq("rec"))
	s.waitOutput("ready")
	if _, err := m.WatchStart(control.WatchStart{ID: s.started.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WatchStart(control.WatchStart{ID: s.started.ID, Redraw: true}); err != nil {
		t.Fatal(err)
	}
	s.waitOutput("size=33 101") // SIGWINCH, the size unchanged
	s.mu.Lock()
	out := s.stdout.String()
	s.mu.Unlock()
	if n := strings.Count(out, "administrator"); n != 0 {
		t.Fatalf("notified %d times with notify_watch off", n)
	}
}
