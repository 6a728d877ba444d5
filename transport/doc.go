// Package transport carries every internal hop (gateway→broker,
// gateway→appd, appd→broker) over SSH with mutual authentication by node
// keys: a server admits only keys the cluster lists and learns the peer's
// node name from its key; a client accepts only the host key listed for the
// node it dials. Connections are persistent and multiplexed: a new user
// session opens a channel, not a TCP connection.
package transport
