package selection

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrNoGateway is returned (wrapped, with a one-line reason) when no gateway
// can carry a session to its server.
var ErrNoGateway = errors.New("no gateway available")

// RedirectMargin is how much worse (in score units, where Weights.Load = 1
// makes 0.1 ten points of gateway utilisation) the requesting gateway may
// score than the best one and still keep the session. A redirect costs the
// client a second connection and handshake; it is worth it for a nearer
// gateway (the near-region step is 0.3 at default weights) or a much less
// busy one, not for a few sessions' difference.
const RedirectMargin = 0.1

// Gateway is one gateway (the patent's load balancing slave) as the broker
// sees it.
type Gateway struct {
	Name     string
	Region   string   // where it runs; "" if not configured
	Healthy  bool     // heartbeat fresh and link up
	Reach    []string // names of the servers it can reach
	Sessions int      // sessions it carries
	Capacity int      // max sessions; 0 means no limit
}

// GatewayRequest asks which gateway should carry a session to Server for a
// client that connected to Requesting.
type GatewayRequest struct {
	Requesting   string   // gateway the client is connected to
	Server       string   // the server chosen by Place
	ClientRegion string   // region of the client's address; "" when unknown
	Near         []string // regions near ClientRegion, in preference order
	Seed         uint64   // breaks ties among other gateways
}

// PickGateway chooses the gateway to carry a session: healthy, reaching
// req.Server, with room; the best on locality to the client and load
// (Sessions/Capacity) wins. The requesting gateway wins ties and is kept
// whenever it qualifies and scores at most RedirectMargin below the best, so
// clients are redirected only when it matters. The error wraps ErrNoGateway.
func (p Policy) PickGateway(req GatewayRequest, gws []Gateway) (Decision, error) {
	w := p.weights()
	loc := locator{client: req.ClientRegion, near: req.Near}
	var ex tally
	best, own := -1, -1
	ownWhy := why(nWhy) // nWhy: the requesting gateway is not in gws
	var bestParts, ownParts parts
	for i := range gws {
		g := &gws[i]
		isOwn := g.Name == req.Requesting
		why := excludeGateway(g, req.Server)
		if isOwn {
			ownWhy = why
		}
		if why != eligible {
			ex.add(why, g.Name)
			continue
		}
		gp := parts{locality: loc.score(g.Region), load: 1 - gatewayUtilisation(g)}
		gp.total = w.Locality*gp.locality + w.Load*gp.load
		if isOwn {
			own, ownParts = i, gp
		}
		if best >= 0 {
			c := cmpScore(gp.total, bestParts.total)
			if c < 0 || c == 0 && !isOwn && (gws[best].Name == req.Requesting ||
				tieHashOf(g.Name, req.Seed) >= tieHashOf(gws[best].Name, req.Seed)) {
				continue
			}
		}
		best, bestParts = i, gp
	}
	if best < 0 {
		return Decision{}, noGateway(req.Server, gws)
	}
	if own >= 0 && ownParts.total >= bestParts.total-RedirectMargin {
		return Decision{Server: gws[own].Name, Reason: gatewayReason(&gws[own], &gws[best], req, w, ownParts, bestParts, ownWhy, len(gws), &ex)}, nil
	}
	return Decision{Server: gws[best].Name, Reason: gatewayReason(&gws[best], nil, req, w, bestParts, ownParts, ownWhy, len(gws), &ex)}, nil
}

// excludeGateway says why g cannot carry a session to server.
func excludeGateway(g *Gateway, server string) why {
	switch {
	case !g.Healthy:
		return unhealthy
	case g.Capacity > 0 && g.Sessions >= g.Capacity:
		return full
	case !offers(g.Reach, server):
		return unreachable
	}
	return eligible
}

// gatewayUtilisation is Sessions/Capacity in [0, 1], 0 without a limit.
func gatewayUtilisation(g *Gateway) float64 {
	if g.Capacity <= 0 || g.Sessions <= 0 {
		return 0
	}
	return min(1, float64(g.Sessions)/float64(g.Capacity))
}

func gatewayLabel(w why) string {
	switch w {
	case unhealthy:
		return "unhealthy"
	case full:
		return "full"
	case unreachable:
		return "not reaching the server"
	case nWhy:
		return "unknown"
	}
	return "excluded"
}

// gatewayReason explains the choice of g in one line. When g is the
// requesting gateway, other is the best gateway overall and op its score;
// otherwise op is the requesting gateway's score and ownWhy why it lost.
func gatewayReason(g, other *Gateway, req GatewayRequest, w Weights, gp, op parts, ownWhy why, total int, ex *tally) string {
	var buf [512]byte
	b := append(buf[:0], g.Name...)
	switch {
	case other != nil:
		b = append(b, ": stay on the requesting gateway"...)
	case req.Requesting == "":
		b = append(b, ": chosen"...)
	default:
		b = append(b, ": redirect from "...)
		b = append(b, req.Requesting...)
	}
	b = append(b, ", score "...)
	b = appendFloat(b, gp.total)
	b = append(b, " = locality "...)
	b = appendFloat(b, w.Locality*gp.locality)
	b = append(b, " ("...)
	loc := locator{client: req.ClientRegion, near: req.Near}
	b = loc.appendRegion(b, g.Region)
	b = append(b, ") + load "...)
	b = appendFloat(b, w.Load*gp.load)
	b = append(b, " ("...)
	b = strconv.AppendInt(b, int64(g.Sessions), 10)
	b = append(b, '/')
	if g.Capacity > 0 {
		b = strconv.AppendInt(b, int64(g.Capacity), 10)
	} else {
		b = append(b, "unlimited"...)
	}
	b = append(b, " sessions); "...)
	switch {
	case other != nil && other != g:
		b = append(b, "best other "...)
		b = append(b, other.Name...)
		b = append(b, " scores "...)
		b = appendFloat(b, op.total)
		b = append(b, ", within the redirect margin "...)
		b = appendFloat(b, RedirectMargin)
	case other != nil:
		b = append(b, "best of all"...)
	case req.Requesting == "":
		b = append(b, "no requesting gateway"...)
	case ownWhy == eligible:
		b = append(b, req.Requesting...)
		b = append(b, " scores "...)
		b = appendFloat(b, op.total)
		b = append(b, ", more than "...)
		b = appendFloat(b, RedirectMargin)
		b = append(b, " worse"...)
	default:
		b = append(b, req.Requesting...)
		b = append(b, " is "...)
		b = append(b, gatewayLabel(ownWhy)...)
	}
	b = append(b, "; "...)
	b = strconv.AppendInt(b, int64(total-ex.total()), 10)
	b = append(b, " of "...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, " gateways eligible"...)
	if ex.total() > 0 {
		b = append(b, "; excluded "...)
		b = strconv.AppendInt(b, int64(ex.total()), 10)
		b = append(b, ':')
		b = appendCounts(b, ex, gatewayLabel)
	}
	return string(b)
}

// noGateway explains why no gateway can carry a session to server,
// classifying by reach first. It runs only when the choice failed.
func noGateway(server string, gws []Gateway) error {
	var t tally
	for i := range gws {
		g := &gws[i]
		switch {
		case !offers(g.Reach, server):
			t.add(unreachable, g.Name)
		case !g.Healthy:
			t.add(unhealthy, g.Name)
		default:
			t.add(full, g.Name)
		}
	}
	reaching := len(gws) - t.n[unreachable]
	switch {
	case len(gws) == 0:
		return fmt.Errorf("%w: no gateways are known", ErrNoGateway)
	case reaching == 0:
		return fmt.Errorf("%w: no gateway reaches server %s", ErrNoGateway, server)
	case t.n[unhealthy] == reaching:
		return fmt.Errorf("%w: all %d gateways reaching server %s are unhealthy", ErrNoGateway, reaching, server)
	case t.n[full] == reaching:
		return fmt.Errorf("%w: all %d gateways reaching server %s are full", ErrNoGateway, reaching, server)
	}
	t.n[unreachable] = 0
	return fmt.Errorf("%w: none of the %d gateways reaching server %s can carry it:%s",
		ErrNoGateway, reaching, server, appendCounts(nil, &t, gatewayLabel))
}
