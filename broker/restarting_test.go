package broker

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/control"
)

// A server whose link drops while it runs sessions shows as restarting,
// not down, for restartWindow intervals; one that ran none is down at
// once; a fresh report makes it up again.
func TestStatusShowsRestartingServer(t *testing.T) {
	b := placeBroker(t)
	now := b.Now()
	b.serverReport("us1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"},
		Sessions: []control.SessionInfo{{ID: "sess1", User: "alice", App: "top", Server: "us1", PID: 42}}})
	b.linkUp("us1", -1)
	b.linkUp("eu2", -1)
	server := func(st Status, name string) ServerStatus {
		for _, s := range st.Servers {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("no server %s in status", name)
		return ServerStatus{}
	}
	st := b.Status()
	if us1 := server(st, "us1"); us1.Healthy || !us1.Restarting {
		t.Fatalf("us1 just lost its link with a session: %+v", us1)
	}
	if eu2 := server(st, "eu2"); eu2.Healthy || eu2.Restarting {
		t.Fatalf("eu2 lost its link with no session: %+v", eu2)
	}
	if !slices.Contains(st.Problems, "server us1 restarting") || !slices.Contains(st.Problems, "server eu2 down") {
		t.Fatalf("problems %q", st.Problems)
	}
	var out bytes.Buffer
	if err := WriteStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "us1  ") || !strings.Contains(out.String(), "restarting") {
		t.Fatalf("status text:\n%s", out.String())
	}

	b.Now = func() time.Time { return now.Add(restartWindow*b.interval() - time.Millisecond) }
	if us1 := server(b.Status(), "us1"); !us1.Restarting {
		t.Fatalf("us1 within the window: %+v", us1)
	}
	b.Now = func() time.Time { return now.Add(restartWindow * b.interval()) }
	if us1 := server(b.Status(), "us1"); us1.Restarting || us1.Healthy {
		t.Fatalf("us1 past the window: %+v", us1)
	}

	b.Now = func() time.Time { return now.Add(time.Second) }
	b.linkUp("us1", +1)
	b.serverReport("us1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}})
	if us1 := server(b.Status(), "us1"); !us1.Healthy || us1.Restarting {
		t.Fatalf("us1 back with a report: %+v", us1)
	}
}
