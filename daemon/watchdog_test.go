package daemon

import (
	"strings"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

// The watchdog's check fails while the node's state cannot be read (a
// probe stuck on a lock), fails at once while that probe is still stuck,
// and passes again once it returns.
func TestResponsiveFailsWhileTheProbeIsStuck(t *testing.T) {
	if err := responsive(nil)(time.Minute); err != nil {
		t.Fatalf("no probe: %v", err)
	}
	stuck, entered := make(chan struct{}), make(chan struct{}, 1)
	wedged := true
	alive := responsive(func() {
		if wedged {
			entered <- struct{}{}
			<-stuck
		}
	})
	if err := alive(time.Millisecond); err == nil || !strings.Contains(err.Error(), "took longer") {
		t.Fatalf("a stuck probe: %v", err)
	}
	<-entered
	if err := alive(time.Minute); err == nil || !strings.Contains(err.Error(), "has not returned") {
		t.Fatalf("while the first is stuck: %v", err)
	}
	wedged = false
	close(stuck)
	testutil.Eventually(t, time.Minute, "the check to pass once the probe returned", func() bool {
		return alive(time.Minute) == nil
	})
}
