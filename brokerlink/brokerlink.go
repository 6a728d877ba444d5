// Package brokerlink is a node's side of its control links to the
// brokers: Links builds them from the cluster config, following each
// broker's address and key through reloads, and Placer is the gateway's
// broker client over them (sshgate.Placer).
package brokerlink

import (
	"context"
	"log/slog"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"switchyard/config"
	"switchyard/control"
	"switchyard/transport"
)

// Links builds a node's links to every broker of cfg. Each link reads its
// broker's address and key from the config current at each dial, so it
// follows reloads; the set of brokers is the one at start (adding one
// takes a restart). Reconnections back off up to the report interval, so
// that a restarted broker hears from every node within about one.
// handler serves the calls brokers make (appd's pre-launch, audit reads);
// onConnect runs on each new connection (a first report at once). Run the
// result to keep the links up.
func Links(cfg *atomic.Pointer[config.Config], id transport.Identity, log *slog.Logger,
	handler control.Handler, onConnect func(context.Context, *control.Peer)) *transport.Brokers {
	c := cfg.Load()
	b := &transport.Brokers{Links: map[string]*transport.Link{}, Order: c.BrokerNames()}
	for _, name := range b.Order {
		b.Links[name] = &transport.Link{Identity: id, Peer: name, Logger: log, Handler: handler,
			MaxBackoff: c.Broker.ReportInterval, OnConnect: onConnect,
			Key:  func(n string) (ssh.PublicKey, error) { return cfg.Load().NodeKey(n) },
			Addr: func() string { return cfg.Load().BrokerListen(name) }}
	}
	return b
}

// Placer is the gateway's broker client (sshgate.Placer): calls go to
// the leading broker (see transport.Brokers.Call), notifications to every
// broker whose link is up. A broker's refusal comes back as the
// *control.RemoteError it sent.
type Placer struct {
	Brokers *transport.Brokers
}

// Place asks the broker where req's app runs.
func (p Placer) Place(ctx context.Context, req control.PlaceRequest) (control.Placement, error) {
	var pl control.Placement
	err := p.Brokers.Call(ctx, control.MethodPlace, req, &pl)
	return pl, err
}

// SessionStarted tells the brokers about a new session.
func (p Placer) SessionStarted(ctx context.Context, s control.SessionInfo) error {
	return p.Brokers.Notify(ctx, control.MethodSessionStarted, s)
}

// SessionEnded tells the brokers a session ended.
func (p Placer) SessionEnded(ctx context.Context, s control.SessionEnded) error {
	return p.Brokers.Notify(ctx, control.MethodSessionEnded, s)
}

// SessionDetached tells the brokers a session detached.
func (p Placer) SessionDetached(ctx context.Context, s control.SessionInfo) error {
	return p.Brokers.Notify(ctx, control.MethodSessionDetached, s)
}

// Sessions asks the broker for user's sessions.
func (p Placer) Sessions(ctx context.Context, user string) ([]control.SessionInfo, error) {
	var l control.SessionList
	err := p.Brokers.Call(ctx, control.MethodSessionsList, control.UserRequest{User: user}, &l)
	return l.Sessions, err
}

// Apps asks the broker for the apps user may run.
func (p Placer) Apps(ctx context.Context, user string) ([]control.AppInfo, error) {
	var l control.AppList
	err := p.Brokers.Call(ctx, control.MethodAppsList, control.UserRequest{User: user}, &l)
	return l.Apps, err
}
