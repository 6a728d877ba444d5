// Package transport carries every internal hop (gateway→broker,
// gateway→appd, appd→broker, and gateway→gateway for relayed sessions)
// over SSH with mutual authentication by node keys: a server admits only
// keys the cluster lists and learns the peer's node name from its key; a
// client accepts only the host key listed for the node it dials.
// Connections are persistent and multiplexed: a new user session opens a
// channel, not a TCP connection. What a gateway does with the relay
// channels other gateways open on it is sshgate's (sshgate.Relay).
package transport
