// Package daemon wires Switchyard's binaries: flags, config, keys, logging,
// listeners and reload signals around the broker, gateway and appd packages.
// cmd/broker, cmd/slave and cmd/appd call Broker, Slave and Appd; tests and
// the single-host demo call the same functions in-process with an Env whose
// listeners are already open.
package daemon
