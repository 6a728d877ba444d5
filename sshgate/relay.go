package sshgate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"switchyard/control"
)

// maxRelayRequest bounds the extra data of a relay channel.
const maxRelayRequest = 64 << 10

// Relay serves a gateway's internal listener: other gateways open
// control.ChannelRelay channels on it to reach servers they cannot reach
// themselves. Each is spliced to a spawn or attach channel this gateway
// opens to the server. Only the two inner channel types are accepted, and
// only to servers Resolve names: the server's address comes from this
// gateway's own config, never from the request.
type Relay struct {
	Name        string                                     // this gateway's node name, for messages
	Opener      Opener                                     // opens the inner channel, required
	Resolve     func(server string) (addr string, ok bool) // the address of a server this gateway reaches, required
	Logger      *slog.Logger                               // slog.Default() if nil
	OpenTimeout time.Duration                              // bound on opening the inner channel; 10s if zero
	// Admit, if set, is asked before a relay is opened; false refuses it
	// as "gateway NAME is full". Done is called when an admitted relay
	// ends. The gateway counts relays against its capacity with them.
	Admit func() bool
	Done  func()
}

func (r *Relay) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

// ServeChannel serves one channel that gateway node opened on this
// gateway's internal listener: a relay channel is relayed until both its
// ends are closed; any other type is refused. It has the signature of
// transport.ChannelHandler.
func (r *Relay) ServeChannel(ctx context.Context, node string, nc gossh.NewChannel) {
	if nc.ChannelType() != control.ChannelRelay {
		nc.Reject(gossh.UnknownChannelType, "a gateway's internal listener accepts only relay channels")
		return
	}
	log := r.logger().With("peer", node)
	req, err := r.parse(nc.ExtraData())
	if err != nil {
		r.reject(log, nc, gossh.Prohibited, err.Error())
		return
	}
	addr, ok := r.Resolve(req.Server)
	if !ok {
		r.reject(log, nc, gossh.Prohibited, fmt.Sprintf("%s: server %s is not reachable through gateway %s",
			control.CodeNoServer, req.Server, r.Name))
		return
	}
	if r.Admit != nil {
		if !r.Admit() {
			r.reject(log, nc, gossh.ResourceShortage, fmt.Sprintf("%s: gateway %s is full", control.CodeNoServer, r.Name))
			return
		}
		if r.Done != nil {
			defer r.Done()
		}
	}
	inner, innerReqs, err := r.open(ctx, req, addr)
	if err != nil {
		var oce *gossh.OpenChannelError
		if errors.As(err, &oce) {
			r.reject(log, nc, oce.Reason, oce.Message) // the server's own answer, as is
			return
		}
		log.Warn("relay: server unreachable", "server", req.Server, "addr", addr, "err", err)
		r.reject(log, nc, gossh.ConnectionFailed, fmt.Sprintf("%s: server %s is unreachable from gateway %s",
			control.CodeNoServer, req.Server, r.Name))
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		inner.Close()
		go gossh.DiscardRequests(innerReqs)
		log.Warn("relay: accept failed", "server", req.Server, "err", err)
		return
	}
	start := time.Now()
	log.Info("relay started", "server", req.Server, "type", req.Type)
	splice(ctx, ch, reqs, inner, innerReqs)
	log.Info("relay ended", "server", req.Server, "type", req.Type, "duration", time.Since(start).Round(time.Millisecond))
}

// parse decodes and checks a relay request.
func (r *Relay) parse(extra []byte) (relayRequest, error) {
	if len(extra) > maxRelayRequest {
		return relayRequest{}, fmt.Errorf("%s: relay request is %d bytes, more than the %d allowed",
			control.CodeInternal, len(extra), maxRelayRequest)
	}
	req, err := decodeRelayRequest(extra)
	if err != nil {
		return req, fmt.Errorf("%s: %w", control.CodeInternal, err)
	}
	if req.Type != control.ChannelSpawn && req.Type != control.ChannelAttach {
		return req, fmt.Errorf("%s: relay of %q channels is not allowed", control.CodeInternal, req.Type)
	}
	return req, nil
}

// open opens the inner channel, bounded by OpenTimeout.
func (r *Relay) open(ctx context.Context, req relayRequest, addr string) (gossh.Channel, <-chan *gossh.Request, error) {
	timeout := r.OpenTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch, reqs, err := r.Opener.OpenChannel(ctx, req.Server, addr, req.Type, req.Extra)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: open %s on %s: %w", req.Type, req.Server, err)
	}
	return ch, reqs, nil
}

func (r *Relay) reject(log *slog.Logger, nc gossh.NewChannel, reason gossh.RejectionReason, msg string) {
	log.Info("relay rejected", "reason", msg)
	if err := nc.Reject(reason, msg); err != nil {
		log.Debug("relay reject failed", "err", err)
	}
}
