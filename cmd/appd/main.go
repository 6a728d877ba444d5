// Command appd runs on each app server: it spawns the apps its config
// defines, in PTYs or with pipes, for gateways. See the README.
package main

import "switchyard/daemon"

func main() {
	daemon.AppdKeeper() // first: run with appd.KeeperArg, this process is the keeper
	daemon.Main("appd", daemon.Appd)
}
