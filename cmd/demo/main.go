// Command demo runs a whole Switchyard cluster on this machine, from
// config.toml.example: `go run ./cmd/demo`. It prints the ssh line to try.
package main

import "switchyard/daemon"

func main() {
	daemon.AppdKeeper() // first: the demo's app servers share one keeper
	daemon.Main("demo", daemon.Local)
}
