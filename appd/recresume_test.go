package appd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRecordingGoesOnAcrossHandover: a recorded session handed to the
// next appd is recorded on in the same file, on the same clock, with the
// counter's lines in sequence across the handover; a line the old
// writer left unfinished (as kill -9 mid-write leaves it) is trimmed, so
// the file stays asciicast v2.
func TestRecordingGoesOnAcrossHandover(t *testing.T) {
	k, path := testKeeper(t, time.Minute)
	dir := t.TempDir()
	app := counterApp(time.Minute)
	app.Record = RecordOutput
	apps := map[string]App{"count": app}
	record := func(m *Manager) { m.SetRecording(Recording{Dir: dir}) }
	m := newTestManager(t, apps)
	record(m)
	m.Keeper = k
	s := spawn(t, dialManager(t, m), ptyReq("count"))
	s.waitOutput("n=5\r\n")
	if n := m.Handover(); n != 1 {
		t.Fatalf("handed over %d sessions, want 1", n)
	}
	s.waitEnd()
	k.Close()
	file := filepath.Join(dir, recordingName(s.started.ID, "count"))
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`[9.5, "o", "cut sho`) // a write the old appd never finished
	f.Close()

	m2, _, adopted := nextAppdWith(t, path, apps, record)
	if adopted != 1 {
		t.Fatalf("adopted %d sessions, want 1", adopted)
	}
	again := attach(t, dialManager(t, m2), attachReq(s.started.ID, "alice"))
	last := checkCounts(t, s.output())
	again.waitOutput("n=" + strconv.Itoa(last+10) + "\r\n")
	syscall.Kill(s.started.PID, syscall.SIGTERM)
	again.waitEnd()
	waitLen(t, m2, 0)

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), string(before)) {
		t.Fatalf("the recording was rewritten, not continued:\nbefore %q\nafter  %q", before, data)
	}
	_, events := castLines(t, data) // one header, then events in time order
	for _, want := range []string{"handed over to the next appd", "taken over by the next appd", "exit: signal TERM"} {
		if !hasEvent(events, "m", want) {
			t.Errorf("no marker %q in %v", want, events)
		}
	}
	out := kindText(events, "o")
	if strings.Contains(out, "cut sho") {
		t.Errorf("the unfinished line is still there: %q", out)
	}
	if got := checkCounts(t, out); got < last+10 {
		t.Errorf("the recording's count ends at %d, want at least %d", got, last+10)
	}
}
