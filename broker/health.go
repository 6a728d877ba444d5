package broker

import (
	"context"
	"maps"
	"slices"
	"time"
)

// nodeHealth is what the health log knows of one node at a sweep.
type nodeHealth struct {
	kind, name string        // "server" or "gateway", and its node name
	healthy    bool          // connected, reports fresh
	linked     bool          // a control link is up
	age        time.Duration // since its last report; -1 if none
}

// WatchHealth logs every change of a node's health until ctx ends, once
// per report interval: "server up" and "gateway up" when a node becomes
// healthy (a link up and a report within three intervals), "server down"
// and "gateway down" (with why) when it stops being. A node is down,
// silently, until first seen up.
func (b *Broker) WatchHealth(ctx context.Context) {
	last := map[string]bool{}
	t := time.NewTicker(b.interval())
	defer t.Stop()
	for {
		b.logHealth(last)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logHealth logs the nodes whose health differs from last, and records
// it there (kind+" "+name → healthy).
func (b *Broker) logHealth(last map[string]bool) {
	log := b.logger()
	now := map[string]bool{}
	for _, h := range b.health() {
		key := h.kind + " " + h.name
		now[key] = h.healthy
		if h.healthy == last[key] {
			continue
		}
		if h.healthy {
			log.Info(h.kind+" up", h.kind, h.name)
			continue
		}
		attrs := []any{h.kind, h.name, "cause", "no report for three intervals", "report_age", h.age}
		switch {
		case !h.linked:
			attrs[3] = "control link down"
		case h.age < 0:
			attrs[3], attrs[5] = "no report yet", "never"
		}
		log.Warn(h.kind+" down", attrs...)
	}
	clear(last)
	for k, v := range now {
		last[k] = v
	}
}

// health is every configured node's health now.
func (b *Broker) health() []nodeHealth {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	now := b.now()
	var out []nodeHealth
	for _, name := range b.allServers() {
		st := b.servers[name]
		h := nodeHealth{kind: "server", name: name, healthy: b.healthy(st, now), age: -1}
		if st != nil {
			h.linked = st.links > 0
			if !st.lastReport.IsZero() {
				h.age = now.Sub(st.lastReport)
			}
		}
		out = append(out, h)
	}
	for _, name := range slices.Sorted(maps.Keys(b.cluster.Gateways)) {
		g := b.gateways[name]
		h := nodeHealth{kind: "gateway", name: name, healthy: b.gatewayHealthy(g, now), age: -1}
		if g != nil {
			h.linked = g.links > 0
			if !g.lastReport.IsZero() {
				h.age = now.Sub(g.lastReport)
			}
		}
		out = append(out, h)
	}
	return out
}
