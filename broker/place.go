package broker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"switchyard/control"
	"switchyard/selection"
)

// keptDecisions is how many recent decisions the status view shows.
const keptDecisions = 50

// Decision is one placement the broker made (or refused), for the log and
// the status view.
type Decision struct {
	Time    time.Time `json:"time"`
	User    string    `json:"user"`
	App     string    `json:"app"`
	Client  string    `json:"client"`
	Gateway string    `json:"gateway"`
	Server  string    `json:"server,omitempty"`
	Reason  string    `json:"reason"`
	Micros  int64     `json:"micros"` // time taken to decide
}

// Place chooses a server for a new session. Errors are control.RemoteError
// with a code the gateway maps to a line for the user.
func (b *Broker) Place(ctx context.Context, req control.PlaceRequest) (control.Placement, error) {
	start := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	d := Decision{Time: b.now(), User: req.User, App: req.App, Client: req.ClientAddr, Gateway: req.Gateway}
	pl, err := b.place(req, d.Time)
	took := time.Since(start)
	d.Server, d.Reason, d.Micros = pl.Server, pl.Reason, took.Microseconds()
	code := "ok"
	if err != nil {
		d.Reason, code = err.Error(), control.ErrorCode(err)
	}
	b.metrics.placed(code, took)
	b.remember(d)
	b.logger().Info("placement", "user", d.User, "app", d.App, "client", d.Client,
		"gateway", d.Gateway, "server", d.Server, "reason", d.Reason, "us", d.Micros)
	return pl, err
}

// place decides; callers hold b.mu.
func (b *Broker) place(req control.PlaceRequest, now time.Time) (control.Placement, error) {
	c := b.cluster
	if !c.Apps[req.App] {
		return control.Placement{}, control.NewError(control.CodeUnknownApp, fmt.Sprintf("no app named %q", req.App))
	}
	if c.Allowed == nil || !c.Allowed(req.User, req.App) {
		return control.Placement{}, control.NewError(control.CodeForbidden, fmt.Sprintf("user %s may not run %s", req.User, req.App))
	}
	b.seq++
	region := b.clientRegion(req)
	sreq := selection.Request{User: req.User, App: req.App, ClientRegion: region, Near: c.Near[region],
		Existing: b.placed(req.User), Seed: b.seq}
	d, err := c.Policy.Place(sreq, b.candidates(now))
	if errors.Is(err, selection.ErrNoServer) {
		return control.Placement{}, control.NewError(control.CodeNoServer, err.Error())
	}
	if err != nil {
		return control.Placement{}, err
	}
	b.pending = append(b.pending, pending{server: d.Server, at: now})
	reason := d.Reason
	if region != "" {
		reason = "client in " + region + "; " + reason
	}
	return control.Placement{Server: d.Server, Addr: c.Servers[d.Server].Addr, Reason: reason}, nil
}

// clientRegion is the region the client named, if configured, else the
// region of its address. Callers hold b.mu.
func (b *Broker) clientRegion(req control.PlaceRequest) string {
	if _, ok := b.cluster.Near[req.RegionHint]; ok && req.RegionHint != "" {
		return req.RegionHint
	}
	if b.cluster.RegionOf == nil {
		return ""
	}
	ap, err := netip.ParseAddrPort(req.ClientAddr)
	if err != nil {
		return ""
	}
	return b.cluster.RegionOf(ap.Addr())
}

// placed lists the user's running sessions, for affinity. Callers hold b.mu.
func (b *Broker) placed(user string) []selection.Placed {
	var out []selection.Placed
	for _, s := range b.sessions {
		if s.info.User == user {
			out = append(out, selection.Placed{Server: s.info.Server, App: s.info.App})
		}
	}
	return out
}

// candidates is the selection input: every configured server, sorted by
// name so decisions do not depend on map order. Callers hold b.mu.
func (b *Broker) candidates(now time.Time) []selection.Server {
	load := b.load(now)
	out := make([]selection.Server, 0, len(b.cluster.Servers))
	for name, spec := range b.cluster.Servers {
		s := selection.Server{
			Name:     name,
			Region:   spec.Region,
			Healthy:  b.healthy(b.servers[name], now),
			Draining: b.draining(name),
			Apps:     spec.Apps,
			Sessions: load[name],
			Max:      spec.MaxSessions,
		}
		if st := b.servers[name]; st != nil {
			s.Load = st.report.Load
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (b *Broker) remember(d Decision) {
	if len(b.recent) == keptDecisions {
		copy(b.recent, b.recent[1:])
		b.recent = b.recent[:keptDecisions-1]
	}
	b.recent = append(b.recent, d)
}

// draining reports whether a server is drained by config or by command.
// Callers hold b.mu.
func (b *Broker) draining(name string) bool {
	return b.cluster.Servers[name].Draining || b.drained[name]
}

// ErrUnknownServer is returned by Drain for a name the config lacks.
var ErrUnknownServer = errors.New("no such server")

// Drain stops (on) or resumes (off) new placements on a server. Running
// sessions continue. A drain set here lasts until undone or the broker
// restarts; draining = true in the config lasts until the config changes.
func (b *Broker) Drain(server string, on bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	if _, ok := b.cluster.Servers[server]; !ok {
		return fmt.Errorf("drain %q: %w", server, ErrUnknownServer)
	}
	if on {
		b.drained[server] = true
	} else {
		delete(b.drained, server)
	}
	b.logger().Info("drain", "server", server, "on", on, "config_draining", b.cluster.Servers[server].Draining)
	return nil
}
