package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"switchyard/broker"
)

// serveNodeAdmin serves a gateway's or appd's admin listener at addr, if
// set: GET /metrics (Prometheus: the node's collector, Go and process
// metrics), /healthz (the process serves) and /readyz (ready returns
// nil: it can do its job). The address is on loopback (config
// validation); no token is asked, and requests naming another Host or
// Origin are refused as on the broker's TCP admin.
// ln is the listener opened on addr; none is served when it is nil.
func serveNodeAdmin(ln net.Listener, addr string, c prometheus.Collector, ready func() error) *adminServers {
	a := &adminServers{}
	if ln == nil {
		return a
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	a.serve(ln, broker.AdminAccess{Hosts: adminHosts(addr, ln.Addr(), nil)}.Guard(mux))
	return a
}

// readyWhenReporting is a node's readiness: a broker took its report
// within three report intervals (as the broker counts a node healthy).
func readyWhenReporting(stats *nodeStats, interval func() time.Duration) func() error {
	return func() error {
		age, ok := stats.reportAge()
		switch {
		case !ok:
			return fmt.Errorf("no broker has taken a report yet")
		case age > 3*interval():
			return fmt.Errorf("no broker has taken a report for %s", age.Round(time.Millisecond))
		}
		return nil
	}
}

// notifyReady tells systemd (Type=notify) that the daemon serves.
func notifyReady(log *slog.Logger) {
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("systemd notify", "err", err)
	}
}

// watchdog pings systemd's watchdog (WATCHDOG=1) at half of
// WATCHDOG_USEC, while alive answers within that half, until ctx ends;
// without WATCHDOG_USEC, or when WATCHDOG_PID names another process, it
// returns at once. A node wedged on a lock stops pinging, and systemd
// restarts it (WatchdogSec in the units).
func watchdog(ctx context.Context, log *slog.Logger, alive func(limit time.Duration) error) {
	period, ok := watchdogPeriod(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
	if !ok {
		return
	}
	log.Debug("systemd watchdog", "every", period.String())
	ping := func() {
		if err := alive(period); err != nil {
			log.Warn("systemd watchdog not pinged", "err", err)
			return
		}
		if err := sdNotify("WATCHDOG=1"); err != nil {
			log.Warn("systemd watchdog", "err", err)
		}
	}
	ping()
	every(ctx, period, ping)
}

// responsive is the watchdog's liveness check: probe (nil: nothing)
// returns within limit. One probe runs at a time: while one is stuck,
// every later check fails at once rather than starting another.
func responsive(probe func()) func(limit time.Duration) error {
	if probe == nil {
		probe = func() {}
	}
	var busy atomic.Bool
	return func(limit time.Duration) error {
		if !busy.CompareAndSwap(false, true) {
			return errors.New("an earlier probe of the node's state has not returned")
		}
		done := make(chan struct{})
		go func() {
			defer busy.Store(false)
			probe()
			close(done)
		}()
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case <-done:
			return nil
		case <-t.C:
			return fmt.Errorf("a probe of the node's state took longer than %s", limit)
		}
	}
}

// watchdogPeriod is half the watchdog timeout systemd set, and whether
// this process (pid) should ping at all.
func watchdogPeriod(usec, wpid string, pid int) (time.Duration, bool) {
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	if wpid != "" && wpid != strconv.Itoa(pid) {
		return 0, false
	}
	return time.Duration(n) * time.Microsecond / 2, true
}
