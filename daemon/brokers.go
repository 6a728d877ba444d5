package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"switchyard/config"
	"switchyard/control"
	"switchyard/transport"
)

// brokerLinks builds a node's links to every broker of cfg. Each link
// follows its broker's address through reloads; the set of brokers is
// the one at start. handler serves the calls brokers make (appd's
// pre-launch), onConnect sends a first report at once.
func brokerLinks(cfg *atomic.Pointer[config.Config], id transport.Identity, log *slog.Logger,
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
