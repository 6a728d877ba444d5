package broker

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the broker's Prometheus metrics. Event counters are updated
// as things happen; cluster-state gauges are computed at scrape time from
// Status by stateCollector.
type metrics struct {
	reg        *prometheus.Registry
	placements *prometheus.CounterVec // by outcome and reason code
	latency    prometheus.Histogram
	reports    *prometheus.CounterVec // by node kind
	routes     *prometheus.CounterVec // placements by route
}

func newMetrics(b *Broker) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_placements_total",
			Help: "Selection requests answered, by outcome (placed or refused) and reason code.",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchyard_selection_seconds",
			Help:    "Time the broker took to decide a placement.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10), // 1µs .. 262ms
		}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_reports_total",
			Help: "Load reports received, by node kind.",
		}, []string{"kind"}),
		routes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_routes_total",
			Help: "Placements by route: direct, relay (through another gateway), redirect (hint to another gateway), claim (of a pre-launched app).",
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.placements, m.latency, m.reports, m.routes, stateCollector{b}, haCollector{b},
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.reg.MustRegister(b.Collectors...)
	return m
}

func (m *metrics) placed(code string, took time.Duration) {
	outcome := "placed"
	if code != "ok" {
		outcome = "refused"
	}
	m.placements.WithLabelValues(outcome, code).Inc()
	m.latency.Observe(took.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

var (
	descSessions = prometheus.NewDesc("switchyard_sessions",
		"Sessions the broker knows, by state.", []string{"state"}, nil)
	descServerUp = prometheus.NewDesc("switchyard_server_up",
		"1 if the server gets placements (link up, reports fresh), else 0.", []string{"server"}, nil)
	descServerDraining = prometheus.NewDesc("switchyard_server_draining",
		"1 if the server is draining.", []string{"server"}, nil)
	descServerLoad = prometheus.NewDesc("switchyard_server_load",
		"Reported 1-minute load average per CPU.", []string{"server"}, nil)
	descServerSessions = prometheus.NewDesc("switchyard_server_sessions",
		"Sessions on the server, including placements not yet reported.", []string{"server"}, nil)
	descServerMax = prometheus.NewDesc("switchyard_server_max_sessions",
		"Configured session capacity of the server.", []string{"server"}, nil)
	descGatewayUp = prometheus.NewDesc("switchyard_gateway_connected",
		"1 if the gateway's link to the broker is up.", []string{"gateway"}, nil)
	descGatewaySessions = prometheus.NewDesc("switchyard_gateway_sessions",
		"Sessions the gateway reported.", []string{"gateway"}, nil)
	descAuthFailures = prometheus.NewDesc("switchyard_gateway_auth_failures_total",
		"Failed logins at the gateway since it started (wrong passwords, connections that tried and never logged in), as it reported.", []string{"gateway"}, nil)
	descReservations = prometheus.NewDesc("switchyard_reservations",
		"Redirected clients awaited, with or without a pre-launched app, by gateway they were sent to.", []string{"gateway"}, nil)
)

// stateCollector turns a Status snapshot into gauges at scrape time.
type stateCollector struct{ b *Broker }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descServerUp, descServerDraining, descServerLoad,
		descServerSessions, descServerMax, descGatewayUp, descGatewaySessions, descAuthFailures, descReservations} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Status()
	gauge := func(d *prometheus.Desc, v float64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label)
	}
	states := map[string]float64{"attached": 0, "detached": 0}
	for _, s := range st.Sessions {
		state := s.State
		if state == "" {
			state = "attached" // a session a gateway announced before appd reported it
		}
		states[state]++
	}
	for state, n := range states {
		gauge(descSessions, n, state)
	}
	for _, s := range st.Servers {
		gauge(descServerUp, b2f(s.Healthy), s.Name)
		gauge(descServerDraining, b2f(s.Draining), s.Name)
		gauge(descServerLoad, s.Load, s.Name)
		gauge(descServerSessions, float64(s.Sessions), s.Name)
		gauge(descServerMax, float64(s.Max), s.Name)
	}
	for _, g := range st.Gateways {
		gauge(descGatewayUp, b2f(g.Connected), g.Name)
		gauge(descGatewaySessions, float64(g.Sessions), g.Name)
		ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(g.AuthFailures), g.Name)
		n := 0
		for _, r := range st.Reservations {
			if r.Gateway == g.Name {
				n++
			}
		}
		gauge(descReservations, float64(n), g.Name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
