package broker

import (
	"context"
	"errors"
	"fmt"
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
	d.Server, d.Reason, d.Micros = pl.Server, pl.Reason, time.Since(start).Microseconds()
	if err != nil {
		d.Reason = err.Error()
	}
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
	d, err := selection.LeastSessions(selection.Request{User: req.User, App: req.App, Seed: b.seq}, b.candidates(now))
	if errors.Is(err, selection.ErrNoServer) {
		return control.Placement{}, control.NewError(control.CodeNoServer, err.Error())
	}
	if err != nil {
		return control.Placement{}, err
	}
	b.pending = append(b.pending, pending{server: d.Server, at: now})
	return control.Placement{Server: d.Server, Addr: c.Servers[d.Server].Addr, Reason: d.Reason}, nil
}

// candidates is the selection input: every configured server, sorted by
// name so decisions do not depend on map order. Callers hold b.mu.
func (b *Broker) candidates(now time.Time) []selection.Server {
	load := b.load(now)
	out := make([]selection.Server, 0, len(b.cluster.Servers))
	for name, spec := range b.cluster.Servers {
		out = append(out, selection.Server{
			Name:     name,
			Healthy:  b.healthy(b.servers[name], now),
			Draining: spec.Draining,
			Apps:     spec.Apps,
			Sessions: load[name],
			Max:      spec.MaxSessions,
		})
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
