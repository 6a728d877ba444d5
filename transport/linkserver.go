package transport

import (
	"context"
	"log/slog"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
)

// LinkServer is what a node that other nodes Link to (the broker)
// provides to ControlLinks.
type LinkServer interface {
	// LinkHandler returns what serves the calls node makes on its control
	// link, or an error, whose text the refused node reads, if node may
	// not link here.
	LinkHandler(node string) (control.Handler, error)
	// ServeLink runs node's link p: it calls p.Serve(ctx) and returns
	// when that does.
	ServeLink(ctx context.Context, node string, p *control.Peer)
}

// ControlLinks returns a ConnHandler for the listener other nodes Link
// to: every control channel (control.ChannelControl) is served as a
// control.Peer by ls, and every other channel type is refused.
func ControlLinks(ls LinkServer, log *slog.Logger) ConnHandler {
	if log == nil {
		log = slog.Default()
	}
	return EachChannel(func(ctx context.Context, node string, nc ssh.NewChannel) {
		if nc.ChannelType() != control.ChannelControl {
			nc.Reject(ssh.UnknownChannelType, "only control channels are accepted here")
			return
		}
		handler, err := ls.LinkHandler(node)
		if err != nil {
			nc.Reject(ssh.Prohibited, err.Error())
			return
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		ls.ServeLink(ctx, node, control.NewPeer(ch, handler, log))
	})
}
