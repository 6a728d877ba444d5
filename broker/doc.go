// Package broker is the load-balancing master: it keeps a picture of the
// cluster built from the configuration and from the reports every appd and
// gateway sends, and answers gateways' selection requests with a server
// and the gateway to carry the session.
//
// The server comes first (selection.Policy.Place over the servers some
// gateway can carry the session to; when that is every server, the usual
// case, PlaceTable over a selection.Table the broker keeps in step with its
// picture, so that a decision does not read every server), then the gateway
// (selection.Policy.PickGateway: healthy, reaching the server, with room,
// near the client, not busy; the requesting gateway is kept unless it is
// clearly worse). When the choice is another gateway, a gateway configured
// to relay carries the session through it (Placement.Via); one that hints
// gets a redirect for its client (Placement.Redirect), and for a terminal
// session the broker first asks appd on the server to pre-launch the app
// and records a reservation. A client arriving with a reservation (the
// patent's claim 8) gets its pre-launched session (Placement.Claim) when
// that is still sound, else a new decision for the gateway it reached; it
// is never redirected twice. Nor is a running session: a gateway listing
// its user's sessions (UserSessions) is told, for each on a server it does
// not reach, the gateway to relay through to resume it.
//
// What a restart must not forget (admins' drains, reservations, the
// session registry) goes to a brokerstate.Store when one is set (Store):
// drains and reservations before the admin or the client hears of them,
// sessions through a queue that Keep writes outside the placement path.
// Restore reads it back before serving and whenever this broker becomes
// leader (Leadership); only a leader places. The rest of the picture is
// soft: each node sends a full report as soon as its link is up, so
// servers, loads and running sessions are confirmed within one report
// interval, and no running session depends on the broker.
package broker
