// Package broker is the load-balancing master: it keeps a picture of the
// cluster built from the configuration and from the reports every appd and
// gateway sends, and answers gateways' selection requests with a server.
//
// The picture is soft state. A restarted broker knows nothing until the
// components reconnect; each sends a full report as soon as its link is up,
// so the picture (servers, loads, running sessions with their PIDs) is back
// within one report interval and no running session depends on the broker.
package broker
