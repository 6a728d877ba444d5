// Command slave is a Switchyard gateway: users connect to it with ssh, and
// it runs their app on the server the broker chose. See the README.
package main

import "switchyard/daemon"

func main() { daemon.Main("slave", daemon.Slave) }
