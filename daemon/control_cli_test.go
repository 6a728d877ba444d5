package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/audit"
	"switchyard/config"
	"switchyard/control"
)

func TestControlFlagsBeforeAndAfterOperands(t *testing.T) {
	f := newControlFlags("kill", io.Discard)
	reason := f.fs.String("reason", "", "")
	ops, err := f.parse([]string{"-config", "c.toml", "abcdef12", "-reason", "two words", "-node", "b2"}, 1)
	if err != nil || !slices.Equal(ops, []string{"abcdef12"}) || *reason != "two words" || *f.node != "b2" {
		t.Fatalf("ops %q, reason %q, node %q, err %v", ops, *reason, *f.node, err)
	}
	for _, args := range [][]string{{}, {"a", "b"}, {"-bogus"}} {
		if _, err := newControlFlags("kill", io.Discard).parse(args, 1); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestTimeArg(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		sign int
		want time.Time
		bad  bool
	}{
		{"", 1, time.Time{}, false},
		{"2h", 1, now.Add(2 * time.Hour), false},
		{"30m", -1, now.Add(-30 * time.Minute), false},
		{"2026-12-24T18:00:00Z", 1, time.Date(2026, 12, 24, 18, 0, 0, 0, time.UTC), false},
		{"tomorrow", 1, time.Time{}, true},
		{"-2h", 1, time.Time{}, true},
	} {
		got, err := timeArg(c.in, now, c.sign)
		if (err != nil) != c.bad || !got.Equal(c.want) {
			t.Errorf("timeArg(%q, %d) = %v, %v; want %v (error %v)", c.in, c.sign, got, err, c.want, c.bad)
		}
	}
}

func TestAuditReplyFitsAFrame(t *testing.T) {
	var evs []audit.Event
	for i := range 20000 {
		evs = append(evs, audit.Event{TS: time.Unix(int64(i), 0).UTC(), V: 1, Node: "s1", Event: "tick",
			Fields: map[string]any{"i": i, "pad": strings.Repeat("x", 100)}})
	}
	r := auditReply(evs)
	frame, err := json.Marshal(r)
	if err != nil || len(frame) > control.MaxFrame {
		t.Fatalf("reply of %d bytes (err %v), over a control frame", len(frame), err)
	}
	last, _ := audit.Parse(r.Events[len(r.Events)-1])
	if len(r.Events) == 0 || last.Fields["i"] != json.Number("19999") || !strings.Contains(r.Note, "earlier events left out") {
		t.Errorf("%d events, last %v, note %q: want the latest ones and a note", len(r.Events), last.Fields["i"], r.Note)
	}
	if r := auditReply(evs[:3]); len(r.Events) != 3 || r.Note != "" {
		t.Errorf("a small reply: %d events, note %q", len(r.Events), r.Note)
	}
}

func TestOpenAuditSinks(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		sink     string
		toStdout bool
		readBack bool
	}{{"", false, true}, {"file", false, true}, {"stdout", true, false}, {"off", false, false}} {
		var stdout bytes.Buffer
		cfg := &config.Config{StateDir: dir, Audit: config.Audit{Sink: c.sink}}
		l, read := openAudit(cfg, "n-"+c.sink, Env{Stdout: &stdout}, slog.New(slog.DiscardHandler))
		l.Emit("spawn", "sess1", "alice")
		l.Close()
		evs, err := read(control.AuditQuery{Session: "sess1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(stdout.String(), `"event":"spawn"`); got != c.toStdout {
			t.Errorf("sink %q: on stdout %v, want %v", c.sink, got, c.toStdout)
		}
		if got := len(evs.Events) == 1; got != c.readBack || !c.readBack && evs.Note == "" {
			t.Errorf("sink %q: read back %d events, note %q", c.sink, len(evs.Events), evs.Note)
		}
	}
}
