// Command broker is Switchyard's load-balancing master: it places every new
// session on an app server. See `broker -h` and the README.
package main

import "switchyard/daemon"

func main() { daemon.Main("broker", daemon.Broker) }
