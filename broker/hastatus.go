package broker

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/brokerstate"
)

// HAStatus is the brokers' part of the status: which broker answered,
// who leads and since when, and, with etcd, every broker running for
// leader and the health of each etcd endpoint.
type HAStatus struct {
	Node        string    `json:"node"`    // the broker that answered
	Leading     bool      `json:"leading"` // whether it places now
	Leader      string    `json:"leader"`  // "" while none is known
	LeaderSince time.Time `json:"leader_since,omitzero"`
	// LeaderChanges counts the times this broker saw the leadership move
	// to another broker, or to none, since it started.
	LeaderChanges uint64 `json:"leader_changes"`
	// Brokers are those running for leader, the leader first; with etcd
	// only.
	Brokers []BrokerStatus `json:"brokers,omitempty"`
	// Etcd is each endpoint's health as this broker sees it, and
	// StoreLatency its store requests' latency; with etcd only.
	Etcd         []EtcdStatus  `json:"etcd,omitempty"`
	StoreLatency *LatencyStats `json:"store_latency,omitempty"`
	Err          string        `json:"error,omitempty"` // why the brokers could not be listed
}

// BrokerStatus is one broker running for leader.
type BrokerStatus struct {
	Name   string    `json:"name"`
	Leader bool      `json:"leader"`
	Since  time.Time `json:"since"` // leading since, or running since
}

// EtcdStatus is one etcd endpoint in HAStatus.
type EtcdStatus struct {
	Endpoint  string  `json:"endpoint"`
	Member    string  `json:"member,omitempty"` // hex member id
	Leader    string  `json:"leader,omitempty"` // hex id of the member it follows; "" if none (no quorum)
	Version   string  `json:"version,omitempty"`
	DBSize    int64   `json:"db_size_bytes,omitempty"`
	LatencyMs float64 `json:"latency_ms"`
	Err       string  `json:"error,omitempty"`
}

// LatencyStats sums up the store's requests to etcd.
type LatencyStats struct {
	LastMs, MeanMs float64
	Count, Errors  uint64
}

// haView is what a Leadership backed by etcd also tells
// (brokerstate.Etcd).
type haView interface {
	Candidates(ctx context.Context) ([]brokerstate.Candidate, error)
	Health(ctx context.Context) []brokerstate.EndpointHealth
	Latency() brokerstate.Latency
}

// name is this broker's node name.
func (b *Broker) name() string {
	if b.Name == "" {
		return "broker"
	}
	return b.Name
}

// HAStatus tells who leads, asking etcd, if there is one, within ctx.
func (b *Broker) HAStatus(ctx context.Context) HAStatus {
	lead := b.leadership()
	st := HAStatus{Node: b.name(), Leading: lead.Leading(), LeaderChanges: b.leaderChanges.Load()}
	st.Leader, st.LeaderSince = lead.Leader()
	v, ok := lead.(haView)
	if !ok {
		return st
	}
	cands, err := v.Candidates(ctx)
	if err != nil {
		st.Err = err.Error()
	}
	for _, c := range cands {
		st.Brokers = append(st.Brokers, BrokerStatus{Name: c.Name, Leader: c.Leader, Since: c.Since})
	}
	for _, h := range v.Health(ctx) {
		e := EtcdStatus{Endpoint: h.Endpoint, Version: h.Version, DBSize: h.DBSize,
			LatencyMs: ms(h.Latency), Err: h.Err}
		if h.Err == "" {
			e.Member = fmt.Sprintf("%x", h.MemberID)
			if h.Leader != 0 {
				e.Leader = fmt.Sprintf("%x", h.Leader)
			}
		}
		st.Etcd = append(st.Etcd, e)
	}
	l := v.Latency()
	st.StoreLatency = &LatencyStats{LastMs: ms(l.Last), MeanMs: ms(l.Mean), Count: l.Count, Errors: l.Errors}
	return st
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// noteLeader counts a change of leader seen by Keep: last is the leader
// before, now the leader after ("" for none).
func (b *Broker) noteLeader(last, now string) {
	if last != now {
		b.leaderChanges.Add(1)
		b.logger().Info("leader changed", "from", last, "to", now, "this", b.name())
	}
}

// writeHA prints the brokers' part of the status.
func writeHA(w io.Writer, ha *HAStatus) {
	if ha == nil {
		return
	}
	leader := dash(cell(ha.Leader))
	fmt.Fprintf(w, "BROKER %s answering; leader %s", cell(ha.Node), leader)
	if !ha.LeaderSince.IsZero() {
		fmt.Fprintf(w, " since %s", ha.LeaderSince.Local().Format(time.DateTime))
	}
	fmt.Fprintf(w, "; %d leader changes seen\n", ha.LeaderChanges)
	if len(ha.Brokers) > 0 {
		fmt.Fprintln(w, "\nBROKER\tLEADS\tSINCE")
		for _, c := range ha.Brokers {
			fmt.Fprintf(w, "%s\t%s\t%s\n", cell(c.Name), yesNo(c.Leader), c.Since.Local().Format(time.DateTime))
		}
	}
	if ha.Err != "" {
		fmt.Fprintf(w, "brokers not listed: %s\n", cell(ha.Err))
	}
	if len(ha.Etcd) > 0 {
		fmt.Fprintln(w, "\nETCD ENDPOINT\tMEMBER\tFOLLOWS\tVERSION\tDB SIZE\tLATENCY\tERROR")
		for _, e := range ha.Etcd {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%.1fms\t%s\n", cell(e.Endpoint), dash(e.Member), dash(e.Leader),
				dash(e.Version), e.DBSize, e.LatencyMs, dash(cell(e.Err)))
		}
	}
	if l := ha.StoreLatency; l != nil {
		fmt.Fprintf(w, "etcd requests: %d (%d failed), last %.1fms, mean %.1fms\n", l.Count, l.Errors, l.LastMs, l.MeanMs)
	}
	fmt.Fprintln(w)
}

var (
	descLeading = prometheus.NewDesc("switchyard_broker_leading",
		"1 if this broker leads (places sessions), else 0.", []string{"broker"}, nil)
	descLeaderChanges = prometheus.NewDesc("switchyard_broker_leader_changes_total",
		"Times this broker saw the leadership move to another broker, or to none.", nil, nil)
	descEtcdRequests = prometheus.NewDesc("switchyard_etcd_requests_total",
		"Store requests to etcd, by result.", []string{"result"}, nil)
	descEtcdLatency = prometheus.NewDesc("switchyard_etcd_request_seconds_mean",
		"Mean latency of the store's requests to etcd.", nil, nil)
)

// haCollector turns the leadership and etcd latency into metrics at
// scrape time, without asking etcd.
type haCollector struct{ b *Broker }

func (c haCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeading, descLeaderChanges, descEtcdRequests, descEtcdLatency} {
		ch <- d
	}
}

func (c haCollector) Collect(ch chan<- prometheus.Metric) {
	lead := c.b.leadership()
	ch <- prometheus.MustNewConstMetric(descLeading, prometheus.GaugeValue, b2f(lead.Leading()), c.b.name())
	ch <- prometheus.MustNewConstMetric(descLeaderChanges, prometheus.CounterValue, float64(c.b.leaderChanges.Load()))
	if v, ok := lead.(haView); ok {
		l := v.Latency()
		ch <- prometheus.MustNewConstMetric(descEtcdRequests, prometheus.CounterValue, float64(l.Count-l.Errors), "ok")
		ch <- prometheus.MustNewConstMetric(descEtcdRequests, prometheus.CounterValue, float64(l.Errors), "error")
		ch <- prometheus.MustNewConstMetric(descEtcdLatency, prometheus.GaugeValue, l.Mean.Seconds())
	}
}
