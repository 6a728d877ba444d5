package daemon

import (
	"context"
	"net"
	"os"
	"time"
)

// gatewayRun serves a gateway's user-facing listener until the daemon is
// stopped, or until SIGUSR2 hands its listeners to a new process.
type gatewayRun struct {
	g           *gatewayNode
	env         Env
	args        []string
	ln          net.Listener
	internalLn  net.Listener // nil without an internal listener
	adminLn     net.Listener // nil without an admin listener
	admin       *adminServers
	stopReports func()
}

// serve runs the server; on an upgrade signal it starts the successor
// and, once that serves, drains (see drain). A failed upgrade is logged
// and this process serves on.
func (r *gatewayRun) serve(ctx context.Context) error {
	srv := r.g.srv
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(r.ln) }()
	for {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			srv.Close()
			<-errc
			return nil
		case <-r.env.Upgrade:
			started := time.Now()
			pid, err := startSuccessor(ctx, r.env.Exe, r.args, r.listeners(), r.g.log)
			if err != nil {
				r.g.log.Error("upgrade failed; this process keeps serving", "err", err)
				continue
			}
			r.g.log.Info("upgrade: the new gateway process serves; this one drains", "new_pid", pid,
				"took", time.Since(started).Round(time.Millisecond), "sessions", srv.Sessions())
			r.drain(ctx)
			<-errc
			return nil
		}
	}
}

func (r *gatewayRun) listeners() []namedListener {
	lns := []namedListener{{"listen", r.ln}}
	if r.internalLn != nil {
		lns = append(lns, namedListener{"internal", r.internalLn})
	}
	if r.adminLn != nil {
		lns = append(lns, namedListener{"admin", r.adminLn})
	}
	return lns
}

// drain stops accepting (the listeners live on in the successor) and
// serves the established connections until they end or the drain
// deadline, when their sessions are detached and their users told how to
// resume. The broker hears no more reports from this process: the
// successor's are the gateway's.
func (r *gatewayRun) drain(ctx context.Context) {
	r.stopReports()
	r.admin.close() // the successor serves the admin listener
	if r.internalLn != nil {
		r.internalLn.Close() // relayed sessions go on until the internal server closes
	}
	limit := r.g.cfg.Load().Gateways[r.g.name].Drain()
	r.g.log.Info("gateway draining", "pid", os.Getpid(), "deadline", limit.String())
	dctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if n := r.g.srv.Drain(dctx); n > 0 {
		r.g.log.Info("gateway drain deadline passed; sessions detached, users told how to resume", "sessions", n)
		return
	}
	r.g.log.Info("gateway drained: every connection ended")
}
