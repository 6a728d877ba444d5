// Command demo runs a whole Switchyard cluster on this machine, from
// config.toml.example: `go run ./cmd/demo`. It prints the ssh line to try.
// With -ha it also starts an embedded three-member etcd and three brokers
// on it, each its own process, so the leader can be killed by hand.
package main

import (
	"switchyard/daemon"
	"switchyard/internal/etcdembed"
)

func main() {
	daemon.AppdKeeper() // first: the demo's app servers share one keeper
	daemon.Main("demo", daemon.Demo(startEtcd))
}

// startEtcd starts the -ha demo's etcd in this process.
func startEtcd(dir string, n int) ([]string, func(), error) {
	// No fsync: the demo makes its etcd afresh on every start anyway, and
	// fsync costs seconds on a busy disk.
	c, err := etcdembed.Start(dir, n, etcdembed.Options{NoFsync: true})
	if err != nil {
		return nil, nil, err
	}
	return c.Endpoints(), c.Close, nil
}
