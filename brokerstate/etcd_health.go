package brokerstate

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Latency sums up the time etcd took to answer this broker's store
// requests (reads, durable writes, session batches).
type Latency struct {
	Last, Mean time.Duration
	Count      uint64 // requests answered, successfully or not
	Errors     uint64 // of which failed
}

// latency accumulates a Latency.
type latency struct {
	mu    sync.Mutex
	total time.Duration
	l     Latency
}

func (l *latency) record(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total += d
	l.l.Count++
	l.l.Last = d
	l.l.Mean = l.total / time.Duration(l.l.Count)
	if err != nil {
		l.l.Errors++
	}
}

// timed runs f, an etcd request, recording its latency in l.
func timed[T any](l *latency, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	l.record(time.Since(start), err)
	return v, err
}

// Latency returns the latency of this broker's store requests so far.
func (e *Etcd) Latency() Latency {
	e.lat.mu.Lock()
	defer e.lat.mu.Unlock()
	return e.lat.l
}

// EndpointHealth is one etcd endpoint as this broker sees it.
type EndpointHealth struct {
	Endpoint string
	// MemberID is the member answering there; Leader the member it
	// follows, 0 when it knows none (it lost quorum).
	MemberID, Leader uint64
	Version          string
	DBSize           int64         // bytes
	Errors           []string      // the member's own complaints (alarms, raft errors)
	Latency          time.Duration // of the status request
	Err              string        // why it could not be asked; "" if it answered
}

// Health asks every endpoint for its status, in the configured order,
// each within the dial timeout.
func (e *Etcd) Health(ctx context.Context) []EndpointHealth {
	out := make([]EndpointHealth, len(e.cfg.Endpoints))
	var wg sync.WaitGroup
	for i, ep := range e.cfg.Endpoints {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
			defer cancel()
			h := EndpointHealth{Endpoint: ep}
			start := time.Now()
			st, err := e.client.Status(ctx, ep)
			h.Latency = time.Since(start)
			if err != nil {
				h.Err = err.Error()
			} else {
				h.MemberID, h.Leader = st.Header.GetMemberId(), st.Leader
				h.Version, h.DBSize, h.Errors = st.Version, st.DbSize, st.Errors
			}
			out[i] = h
		})
	}
	wg.Wait()
	return out
}

// Candidate is a broker running for leader.
type Candidate struct {
	Name string
	// Since is when it became leader, for the leader; when it began to
	// run, for the others.
	Since  time.Time
	Leader bool
}

// leaderValue is the value of a candidate's key under PREFIX/leader/.
type leaderValue struct {
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// Candidates lists the brokers running for leader, the leader first,
// then in the order they will lead.
func (e *Etcd) Candidates(ctx context.Context) ([]Candidate, error) {
	resp, err := timed(&e.lat, func() (*clientv3.GetResponse, error) {
		return e.client.Get(ctx, e.key(dirLeader), clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	})
	if err != nil {
		return nil, fmt.Errorf("etcd candidates: %w", err)
	}
	out := make([]Candidate, 0, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		var v leaderValue
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			v.Name = "?" + string(kv.Key)
		}
		out = append(out, Candidate{Name: v.Name, Since: v.Since, Leader: i == 0})
	}
	return out, nil
}

// probeAll dials every endpoint at once and returns, in order, why each
// that failed did: "etcd URL: cause".
func probeAll(ctx context.Context, eps []string, tlsConf *tls.Config) []string {
	errs := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() { errs[i] = probe(ctx, ep, tlsConf) })
	}
	wg.Wait()
	var fails []string
	for i, err := range errs {
		if err != nil {
			fails = append(fails, fmt.Sprintf("etcd %s: %v", eps[i], err))
		}
	}
	return fails
}

// probe dials endpoint ep and, for https, completes a TLS handshake.
func probe(ctx context.Context, ep string, tlsConf *tls.Config) error {
	u, err := url.Parse(ep)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "2379")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close()
	if u.Scheme != "https" {
		return nil
	}
	conf := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if tlsConf != nil {
		conf = tlsConf.Clone()
		conf.ServerName = u.Hostname()
	}
	conf.NextProtos = []string{"h2"}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	return nil
}
