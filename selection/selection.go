// Package selection is the placement policy: pure, deterministic functions
// that choose an app server for a session from a snapshot of the cluster.
// It does no I/O and reads no clock; callers pass everything in.
package selection

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
)

// Server is one app server as the broker sees it at decision time.
type Server struct {
	Name     string
	Healthy  bool     // heartbeat fresh and link up
	Draining bool     // admin asked for no new sessions
	Apps     []string // apps offered
	Sessions int      // running plus placed-but-not-yet-reported sessions
	Max      int      // max sessions; 0 means no limit
}

// Request is what is being placed.
type Request struct {
	User string
	App  string
	Seed uint64 // breaks ties; the same seed gives the same choice
}

// Decision is the chosen server and why.
type Decision struct {
	Server string
	Reason string // one line: why this server and what was excluded
}

// ErrNoServer is returned (wrapped) when no server can take the session.
var ErrNoServer = errors.New("no server available")

// LeastSessions picks the eligible server with the fewest sessions: healthy,
// not draining, offering the app, with room. Ties go to a seeded hash of
// the name, so equal servers share the load without bias.
func LeastSessions(req Request, servers []Server) (Decision, error) {
	var best *Server
	var excluded []string
	for i := range servers {
		s := &servers[i]
		if why := ineligible(s, req.App); why != "" {
			excluded = append(excluded, s.Name+" "+why)
			continue
		}
		if best == nil || better(s, best, req.Seed) {
			best = s
		}
	}
	sort.Strings(excluded)
	if best == nil {
		return Decision{}, fmt.Errorf("%w for app %q (%s)", ErrNoServer, req.App, summary(excluded))
	}
	reason := fmt.Sprintf("%s: fewest sessions (%d/%s)", best.Name, best.Sessions, capacity(best.Max))
	if len(excluded) > 0 {
		reason += "; excluded " + summary(excluded)
	}
	return Decision{Server: best.Name, Reason: reason}, nil
}

// ineligible says why s cannot take app, or "" if it can.
func ineligible(s *Server, app string) string {
	switch {
	case !s.Healthy:
		return "unhealthy"
	case s.Draining:
		return "draining"
	case !offers(s.Apps, app):
		return "does not offer " + app
	case s.Max > 0 && s.Sessions >= s.Max:
		return fmt.Sprintf("full (%d/%d)", s.Sessions, s.Max)
	}
	return ""
}

func offers(apps []string, app string) bool {
	for _, a := range apps {
		if a == app {
			return true
		}
	}
	return false
}

func better(a, b *Server, seed uint64) bool {
	if a.Sessions != b.Sessions {
		return a.Sessions < b.Sessions
	}
	return tieHash(a.Name, seed) < tieHash(b.Name, seed)
}

func tieHash(name string, seed uint64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seed >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(name))
	return h.Sum64()
}

func capacity(max int) string {
	if max == 0 {
		return "unlimited"
	}
	return fmt.Sprint(max)
}

func summary(excluded []string) string {
	const shown = 5
	switch {
	case len(excluded) == 0:
		return "no servers"
	case len(excluded) > shown:
		return fmt.Sprintf("%s and %d more", strings.Join(excluded[:shown], ", "), len(excluded)-shown)
	}
	return strings.Join(excluded, ", ")
}
