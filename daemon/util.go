package daemon

import (
	"context"
	"errors"
	"net"
	"sort"
	"time"
)

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// every calls f each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// serveUntil runs serve in the background and returns its error, or
// calls stop once ctx ends and then waits for serve to return.
func serveUntil(ctx context.Context, serve func() error, stop func()) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		stop()
		<-errc
		return nil
	}
}

// isClosed reports whether err only says a listener was closed.
func isClosed(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed)
}
