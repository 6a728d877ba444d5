// Package transport carries every internal hop (gateway→broker,
// gateway→appd, appd→broker, and gateway→gateway for relayed sessions)
// over SSH with mutual authentication by node keys: a server admits only
// keys the cluster lists and learns the peer's node name from its key; a
// client accepts only the host key listed for the node it dials.
// Connections are persistent and multiplexed: a new user session opens a
// channel, not a TCP connection.
//
// Splice joins two SSH channels both ways (data, stderr, EOF, every
// request with its reply, close); Relay serves a gateway's internal
// listener with it, so that a gateway can carry a session to a server it
// does not reach through one that does.
package transport
