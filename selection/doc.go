// Package selection is the placement policy of the broker: pure,
// deterministic functions that choose an app server for a session
// (Policy.Place) and a gateway to carry it (Policy.PickGateway) from a
// snapshot of the cluster. It does no I/O, reads no clock and uses no global
// random source; callers pass everything in, including a seed that breaks
// ties, so the same inputs always give the same decision.
//
// This is the "selection means" of EP1180886 (claims 3, 9 and 24): the
// processing server is chosen on the requested application, the server's
// health and capacity, the client's location against the server's location,
// the client's identity (affinity to servers already running the user's
// sessions) and the load the servers report at regular intervals; the
// gateway ("load balancing slave") on its reachability of the chosen server,
// its location against the client's and its load.
//
// A decision is made in two steps. The filter drops servers that cannot take
// the session at all: unhealthy, draining, not offering the app, or full.
// The survivors are scored, higher is better:
//
//	score = Weights.Locality*locality + Weights.Affinity*affinity + Weights.Load*loadPart(utilisation)
//
// where utilisation is the larger of the session ratio with this session
// counted, (Sessions+1)/Max, and the CPU load per core, not capped at 1,
// and loadPart is 1-utilisation up to the fill
// level (the cluster's mean fill plus 3%, between 3/4 of Policy.SpillAt
// and SpillAt), 41 times steeper past it and 441 times past 0.9: so a
// region gives way to its neighbours once past the cluster's mean, and a
// server past its cores scores worse the further past it is.
//
// and the best score wins; exact ties go to the server with fewer sessions,
// then to a hash of the server name seeded by Request.Seed, so equal servers
// share the work with no bias toward the first or the lowest name, and
// only between servers of the same name to the first in the list. This is
// a total order, so the decision does not depend on the order in which
// the servers are read. See DefaultWeights for why the weights are what
// they are.
//
// Every decision explains itself in one line (Decision.Reason): the score
// parts of the chosen server and the unhealthy, draining and full servers,
// counted per reason with a couple of names each. When nothing qualifies,
// the error wraps ErrNoServer and says why in words a user can read,
// counting every server, those not offering the app included.
//
// A user's running sessions are read once per decision, not for each
// candidate: Place sorts their servers, PlaceTable marks them in a bitset
// by position, a run of sessions on one server costing one lookup. A
// caller that keeps each user's sessions counted by server index in a
// Marks (the broker) passes it in Request.Marks instead, and PlaceTable
// marks each of the user's servers with no lookup: a decision costs what
// the user's distinct servers cost, a nanosecond or so each, whatever
// their session count.
//
// Place reads each server's struct once and skips, without reading its app
// list, region or name, any server too busy to beat the best score so far
// even with the best locality and affinity; it scores a sample first so the
// bar is high from the start. A decision over 10,000 servers takes tens of
// microseconds (a few hundred when thousands tie for the best score, as on
// an idle cluster: each tie hashes a name) and allocates only its reason
// (and, for a user with more than 16 sessions, the list of their servers).
//
// A caller that decides often over the same servers (the broker) keeps them
// in a Table instead: built once by NewTable, updated in place as reports
// and placements arrive (SetSessions, AddSession, SetLoad, SetHealthy,
// SetDraining, SetMax), and decided over by Policy.PlaceTable, which makes
// exactly Place's decision (server, reason and error) over the equivalent
// []Server. It scans one utilisation per server, and not even that in
// blocks of servers that cannot win, which keeping them grouped by region
// and app list makes most of those of far regions; with each name's hash
// kept too, a tie costs one finaliser. A decision over 10,000 servers
// takes a few microseconds, and 10-20 when a quarter of them tie for the
// best score.
//
// Subpackage sim is a discrete-event simulation that compares this policy
// with round-robin, random, least-connections and power-of-two-choices on
// the same synthetic workload; selection/cmd/sim prints the comparison.
package selection
