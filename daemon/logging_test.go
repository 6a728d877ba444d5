package daemon

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Both log formats write a duration as Go spells it, not in nanoseconds.
func TestLogDurationsAreStrings(t *testing.T) {
	for format, want := range map[string]string{"json": `"wait":"1.5s"`, "text": `wait=1.5s`} {
		var buf bytes.Buffer
		c := common{logFormat: format, logLevel: "info"}
		log, err := c.logger(&buf, "n1")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("x", "wait", 1500*time.Millisecond)
		if !strings.Contains(buf.String(), want) {
			t.Errorf("%s: %q does not contain %q", format, buf.String(), want)
		}
	}
}
