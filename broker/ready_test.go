package broker

import (
	"strings"
	"testing"
	"time"

	"switchyard/control"
)

// A broker is ready while it can place: with a healthy server, not
// before the first report nor after the reports stop.
func TestReadyFollowsHealthyServers(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Broker{Now: func() time.Time { return now }, ReportInterval: time.Second}
	b.SetCluster(Cluster{Servers: map[string]ServerSpec{"s1": {Addr: "a:1", Apps: []string{"top"}, MaxSessions: 10}},
		Apps: map[string]bool{"top": true}})
	if _, err := b.Ready(); err == nil || !strings.Contains(err.Error(), "no app server is healthy") {
		t.Fatalf("ready before any report: %v", err)
	}
	b.linkUp("s1", +1)
	b.serverReport("s1", control.ServerReport{MaxSessions: 10, Apps: []string{"top"}})
	if what, err := b.Ready(); err != nil || what != "placing on 1 healthy servers" {
		t.Fatalf("after a report: %q, %v", what, err)
	}
	now = now.Add(4 * time.Second) // three intervals without a report
	if _, err := b.Ready(); err == nil {
		t.Fatal("ready with the only server's reports stopped")
	}
}
