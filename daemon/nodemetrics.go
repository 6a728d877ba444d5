package daemon

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeStats is what a gateway or appd tracks for its metrics and
// readiness besides its config: when a broker last took its report.
type nodeStats struct {
	lastReport atomic.Int64 // unix nanoseconds; 0 before the first
}

func newNodeStats() *nodeStats { return &nodeStats{} }

// reported records a report a broker took now.
func (s *nodeStats) reported() { s.lastReport.Store(time.Now().UnixNano()) }

// reportAge is the time since the last report a broker took, and false
// before the first.
func (s *nodeStats) reportAge() (time.Duration, bool) {
	at := s.lastReport.Load()
	if at == 0 {
		return 0, false
	}
	return time.Since(time.Unix(0, at)), true
}

var (
	descBuildInfo = prometheus.NewDesc("switchyard_build_info",
		"Always 1; the labels say which Switchyard version and Go runtime this process runs.", []string{"version", "goversion"}, nil)
	descConfigInfo = prometheus.NewDesc("switchyard_config_info",
		"Always 1; hash is the content hash of the config file this process runs (broker status compares it across nodes).", []string{"hash"}, nil)
	descReloadOK = prometheus.NewDesc("switchyard_config_last_reload_successful",
		"1 if the last config reload applied (or none was tried), 0 if it was refused.", nil, nil)
	descReloadTime = prometheus.NewDesc("switchyard_config_last_reload_success_timestamp_seconds",
		"Unix time the running config was loaded: at start, or by the last reload that applied.", nil, nil)
	descRestartNeeded = prometheus.NewDesc("switchyard_config_restart_needed",
		"Keys the last, refused, reload changed that only a restart applies; 0 when none.", nil, nil)
	descReportAge = prometheus.NewDesc("switchyard_report_age_seconds",
		"Seconds since a broker last took this node's load report; absent before the first.", nil, nil)
)

// nodeCollector serves a node's build, config and reload metrics, its
// report age (gateways and appds), and what extra adds, at scrape time.
type nodeCollector struct {
	conf  *nodeConfig
	stats *nodeStats // nil for a broker
	descs []*prometheus.Desc
	extra func(ch chan<- prometheus.Metric)
}

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append([]*prometheus.Desc{descBuildInfo, descConfigInfo, descReloadOK, descReloadTime, descRestartNeeded, descReportAge}, c.descs...) {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := c.conf.state()
	gauge(descBuildInfo, 1, Version, runtime.Version())
	gauge(descConfigInfo, 1, st.Hash)
	gauge(descReloadOK, b2f(st.OK))
	gauge(descReloadTime, float64(st.Loaded.UnixNano())/1e9)
	gauge(descRestartNeeded, float64(len(st.RestartNeeded)))
	if c.stats != nil {
		if age, ok := c.stats.reportAge(); ok {
			gauge(descReportAge, age.Seconds())
		}
	}
	if c.extra != nil {
		c.extra(ch)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var (
	descGwConns = prometheus.NewDesc("switchyard_gateway_open_connections",
		"Client connections open now, authenticated or not.", nil, nil)
	descGwSessions = prometheus.NewDesc("switchyard_gateway_active_sessions",
		"Sessions holding a capacity slot now.", nil, nil)
	descGwAuthFailures = prometheus.NewDesc("switchyard_gateway_login_failures_total",
		"Failed logins since start, by reason: wrong_password, password_disabled, no_login (tried and never logged in).", []string{"reason"}, nil)
	descGwBlocked = prometheus.NewDesc("switchyard_gateway_blocked_addresses",
		"Client addresses refused now for too many failed logins.", nil, nil)

	descAppdSessions = prometheus.NewDesc("switchyard_appd_sessions",
		"Sessions running now, by state (attached, detached).", []string{"state"}, nil)
	descAppdPTYs = prometheus.NewDesc("switchyard_appd_ptys",
		"Pseudo-terminals open now, one per terminal session.", nil, nil)
	descAppdSpawnFailures = prometheus.NewDesc("switchyard_appd_spawn_failures_total",
		"Spawns and pre-launches refused or failed since start, by the code the gateway got.", []string{"code"}, nil)
)

// gatewayCollector is a gateway's node metrics with its connections,
// sessions, failed logins and blocked addresses.
func (g *gatewayNode) collector() prometheus.Collector {
	return nodeCollector{conf: g.conf, stats: g.stats,
		descs: []*prometheus.Desc{descGwConns, descGwSessions, descGwAuthFailures, descGwBlocked},
		extra: func(ch chan<- prometheus.Metric) {
			st := g.srv.Stats()
			ch <- prometheus.MustNewConstMetric(descGwConns, prometheus.GaugeValue, float64(st.Connections))
			ch <- prometheus.MustNewConstMetric(descGwSessions, prometheus.GaugeValue, float64(st.Sessions))
			ch <- prometheus.MustNewConstMetric(descGwBlocked, prometheus.GaugeValue, float64(st.Blocked))
			for reason, n := range st.AuthFailures {
				ch <- prometheus.MustNewConstMetric(descGwAuthFailures, prometheus.CounterValue, float64(n), reason)
			}
		}}
}

// collector is appd's node metrics with its sessions, PTYs and refused
// spawns.
func (a *appdNode) collector() prometheus.Collector {
	return nodeCollector{conf: a.conf, stats: a.stats,
		descs: []*prometheus.Desc{descAppdSessions, descAppdPTYs, descAppdSpawnFailures},
		extra: func(ch chan<- prometheus.Metric) {
			st := a.mgr.Stats()
			ch <- prometheus.MustNewConstMetric(descAppdSessions, prometheus.GaugeValue, float64(st.Attached), "attached")
			ch <- prometheus.MustNewConstMetric(descAppdSessions, prometheus.GaugeValue, float64(st.Detached), "detached")
			ch <- prometheus.MustNewConstMetric(descAppdPTYs, prometheus.GaugeValue, float64(st.PTYs))
			for code, n := range st.SpawnFailures {
				ch <- prometheus.MustNewConstMetric(descAppdSpawnFailures, prometheus.CounterValue, float64(n), code)
			}
		}}
}
