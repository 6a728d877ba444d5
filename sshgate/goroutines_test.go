package sshgate

import (
	"testing"
	"time"

	"switchyard/internal/testutil"
)

// ourGoroutines returns the goroutines running the gateway's code now
// that were not in base, by the function each started in (see
// gatewayGoroutines), and their total.
func ourGoroutines(base map[string]int) (map[string]int, int) {
	now := gatewayGoroutines()
	total := 0
	for fn, n := range now {
		if now[fn] = n - base[fn]; now[fn] == 0 {
			delete(now, fn)
		}
		total += now[fn]
	}
	return now, total
}

// idleSessionGoroutines is what an idle PTY session costs in goroutines
// of the gateway's own: the handler (which waits for appd's requests and
// ends the session), the loop of the client's requests, the input pump
// and the copies of the app's output and stderr. The watches of the idle
// timeout and of an eviction are a timer and a context callback.
const idleSessionGoroutines = 3

// TestSessionGoroutines counts the goroutines of ours an idle PTY session
// keeps, one with an idle timeout (so its watch is counted), once the
// session has settled: the start notification sent, the pump waiting.
func TestSessionGoroutines(t *testing.T) {
	e := newEnv(t)
	e.withAuthDir().idle["hang"] = time.Hour
	var base map[string]int
	testutil.Eventually(t, waitFor, "the gateway to serve", func() bool {
		base = gatewayGoroutines()
		return base["switchyard/sshgate.newEnv.func1"] == 1 // in Serve
	})
	c := openHang(e, "hang")
	defer c.Close()
	recv(t, e.placer.started, "the broker to hear of the start")
	var got map[string]int
	var total int
	settled := testutil.Poll(waitFor, func() bool {
		got, total = ourGoroutines(base)
		return got["switchyard/sshgate.(*input).pump"] == 1 && got["switchyard/sshgate.(*Server).bridgeOnce.func1"] == 0
	})
	if !settled {
		t.Fatalf("the session did not settle: goroutines %v", got)
	}
	if total != idleSessionGoroutines {
		t.Errorf("an idle PTY session runs %d goroutines of ours, want %d: %v", total, idleSessionGoroutines, got)
	}
	c.Close()
	recv(t, e.appd.events, "the app to see its channel close")
	if !testutil.Poll(waitFor, func() bool { got, total = ourGoroutines(base); return total == 0 }) {
		t.Errorf("after the client left, goroutines of ours remain: %v", got)
	}
}
