package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"switchyard/control"
)

// The health log says when a server comes up, goes down for want of
// reports or of a link, and comes back; a sweep with no change says
// nothing.
func TestLogHealthChanges(t *testing.T) {
	b := placeBroker(t)
	var buf bytes.Buffer
	b.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	now := b.Now()
	last := map[string]bool{}
	sweep := func(want ...string) {
		t.Helper()
		buf.Reset()
		b.logHealth(last)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(want) == 0 && buf.Len() == 0 {
			return
		}
		if len(lines) != len(want) {
			t.Fatalf("logged:\n%s\nwant %d lines: %q", buf.String(), len(want), want)
		}
		for i, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %q does not contain %q", lines[i], w)
			}
		}
	}
	sweep(`msg="server up" server=eu1`, `msg="server up" server=eu2`, `msg="server up" server=us1`)
	sweep()
	b.Now = func() time.Time { return now.Add(3*time.Second + time.Millisecond) }
	b.serverReport("us1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}})
	sweep(`level=WARN msg="server down" server=eu1 cause="no report for three intervals" report_age=3.001s`,
		`msg="server down" server=eu2`)
	b.linkUp("us1", -1)
	sweep(`msg="server down" server=us1 cause="control link down"`)
	b.serverReport("eu1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}})
	sweep(`msg="server up" server=eu1`)
}
