package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"switchyard/brokerstate"
)

// etcdLeader is a Leadership that also answers as brokerstate.Etcd does.
type etcdLeader struct{ since time.Time }

func (etcdLeader) Leading() bool                 { return false }
func (l etcdLeader) Leader() (string, time.Time) { return "b1", l.since }
func (etcdLeader) Changes() <-chan struct{}      { return nil }
func (etcdLeader) Latency() brokerstate.Latency {
	return brokerstate.Latency{Mean: 2 * time.Millisecond, Count: 7, Errors: 1}
}
func (l etcdLeader) Candidates(context.Context) ([]brokerstate.Candidate, error) {
	return []brokerstate.Candidate{{Name: "b1", Since: l.since, Leader: true}, {Name: "b2", Since: l.since}}, nil
}
func (etcdLeader) Health(context.Context) []brokerstate.EndpointHealth {
	return []brokerstate.EndpointHealth{{Endpoint: "http://127.0.0.1:2379", MemberID: 0xab, Leader: 0xab, Version: "3.7.3"},
		{Endpoint: "http://127.0.0.1:2380", Err: "context deadline exceeded"}}
}

func TestHAStatusWithEtcd(t *testing.T) {
	since := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	b := &Broker{Name: "b2", Leadership: etcdLeader{since}}
	b.noteLeader("b3", "")
	b.noteLeader("", "b1")
	b.noteLeader("b1", "b1") // no change
	ha := b.HAStatus(context.Background())
	if ha.Node != "b2" || ha.Leading || ha.Leader != "b1" || !ha.LeaderSince.Equal(since) || ha.LeaderChanges != 2 {
		t.Fatalf("HAStatus %+v", ha)
	}
	if len(ha.Brokers) != 2 || !ha.Brokers[0].Leader || ha.Etcd[0].Member != "ab" || ha.Etcd[1].Err == "" ||
		ha.StoreLatency.Count != 7 || ha.StoreLatency.MeanMs != 2 {
		t.Fatalf("HAStatus brokers %+v etcd %+v latency %+v", ha.Brokers, ha.Etcd, ha.StoreLatency)
	}
	var out bytes.Buffer
	if err := WriteStatus(&out, Status{HA: &ha}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BROKER b2 answering; leader b1 since", "2 leader changes seen", "b1      yes",
		"http://127.0.0.1:2380", "context deadline exceeded", "etcd requests: 7 (1 failed)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

func TestHAStatusAlone(t *testing.T) {
	b := &Broker{}
	ha := b.HAStatus(context.Background())
	if ha.Node != "broker" || !ha.Leading || ha.Brokers != nil || ha.Etcd != nil || ha.StoreLatency != nil {
		t.Fatalf("lone broker HAStatus %+v", ha)
	}
}

// An empty cluster's status lists are [] in JSON, never null.
func TestStatusJSONListsNeverNull(t *testing.T) {
	b := &Broker{}
	b.SetCluster(Cluster{})
	raw, err := json.Marshal(b.Status())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "null") {
		t.Fatalf("status JSON has null: %s", raw)
	}
}
