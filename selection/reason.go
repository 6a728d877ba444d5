package selection

import (
	"fmt"
	"strconv"
)

// namesKept is how many names a reason line shows per exclusion reason.
const namesKept = 2

// tally counts exclusions per reason and keeps the first few names of each,
// so a decision over 10,000 servers does not build 10,000 strings.
type tally struct {
	n     [nWhy]int
	names [nWhy][namesKept]string
}

func (t *tally) add(w why, name string) {
	if k := t.n[w]; k < namesKept {
		t.names[w][k] = name
	}
	t.n[w]++
}

func (t *tally) total() int {
	sum := 0
	for _, k := range t.n {
		sum += k
	}
	return sum
}

// appendCounts writes " 3 unhealthy (a, b, ...), 4 full (c, d, ...)" with
// label naming each reason.
func appendCounts(b []byte, t *tally, label func(why) string) []byte {
	first := true
	for w := why(1); w < nWhy; w++ {
		k := t.n[w]
		if k == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, ' ')
		b = append(b, label(w)...)
		b = appendNames(b, t.names[w][:min(k, namesKept)], k)
	}
	return b
}

// appendNames writes " (a, b)" or " (a, b, ...)" when there are more than shown.
func appendNames(b []byte, names []string, count int) []byte {
	b = append(b, " ("...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, n...)
	}
	if count > len(names) {
		b = append(b, ", ..."...)
	}
	return append(b, ')')
}

func serverLabel(w why) string {
	switch w {
	case unhealthy:
		return "unhealthy"
	case draining:
		return "draining"
	case full:
		return "full"
	case noApp:
		return "without the app"
	}
	return "excluded"
}

// appendFloat writes f with three decimals.
func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'f', 3, 64)
}

// placeReason is the one-line reason for choosing s: its score parts, then
// how many servers there were and which were excluded.
//
// The counts cover the unhealthy, draining and full servers; Place does
// not read every app list (see Place).
func placeReason(s *Server, req Request, p Policy, pl *placer, total int) string {
	w, sp, ex := pl.w, pl.bestParts, &pl.ex
	var buf [512]byte
	b := append(buf[:0], s.Name...)
	b = append(b, ": score "...)
	b = appendFloat(b, sp.total)
	b = append(b, " = locality "...)
	b = appendFloat(b, w.Locality*sp.locality)
	b = append(b, " ("...)
	loc := locator{client: req.ClientRegion, near: req.Near}
	b = loc.appendRegion(b, s.Region)
	b = append(b, ") + affinity "...)
	b = appendFloat(b, w.Affinity*sp.affinity)
	switch {
	case p.Affinity == AffinityNone:
		b = append(b, " (off)"...)
	case sp.affinity > 0 && p.Affinity == AffinityUserApp:
		b = append(b, " (user runs "...)
		b = append(b, req.App...)
		b = append(b, " here)"...)
	case sp.affinity > 0:
		b = append(b, " (user has a session here)"...)
	}
	b = append(b, " + load "...)
	b = appendFloat(b, w.Load*sp.load)
	b = append(b, " ("...)
	b = strconv.AppendInt(b, int64(s.Sessions), 10)
	b = append(b, '/')
	if s.Max > 0 {
		b = strconv.AppendInt(b, int64(s.Max), 10)
	} else {
		b = append(b, "unlimited"...)
	}
	b = append(b, " sessions, cpu "...)
	b = strconv.AppendFloat(b, s.Load, 'f', 2, 64)
	if utilisation(s) > pl.spill {
		b = append(b, ", past the fill level "...)
		b = strconv.AppendFloat(b, pl.spill, 'f', 2, 64)
	}
	b = append(b, "); of "...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, " servers"...)
	if ex.total() == 0 {
		b = append(b, ", none unhealthy, draining or full"...)
	} else {
		b = append(b, ':')
		b = appendCounts(b, ex, serverLabel)
	}
	return string(b)
}

// noServer explains why no server of n can take a session of app, each
// server i classified by class (see failure) so "no server offers X" is
// exact. It runs only when placement failed.
func noServer(app string, n int, class func(i int) (why, string)) error {
	if n == 0 {
		return fmt.Errorf("%w: no servers are known", ErrNoServer)
	}
	var t tally
	for i := range n {
		t.add(class(i))
	}
	offering := n - t.n[noApp]
	if offering == 0 {
		return fmt.Errorf("%w: no server offers app %q", ErrNoServer, app)
	}
	t.n[noApp] = 0
	for _, w := range [...]why{unhealthy, draining, full} {
		if t.n[w] != offering {
			continue
		}
		if offering == 1 {
			return fmt.Errorf("%w: the only server offering %q (%s) is %s", ErrNoServer, app, t.names[w][0], serverLabel(w))
		}
		return fmt.Errorf("%w: all %d servers offering %q are %s", ErrNoServer, offering, app, serverLabel(w))
	}
	return fmt.Errorf("%w: none of the %d servers offering %q can take it:%s",
		ErrNoServer, offering, app, appendCounts(nil, &t, serverLabel))
}

// noServerIn is noServer over a list of servers.
func noServerIn(app string, servers []Server) error {
	return noServer(app, len(servers), func(i int) (why, string) {
		s := &servers[i]
		return failure(offers(s.Apps, app), s.Healthy, s.Draining), s.Name
	})
}

// failure is why a server that cannot take a session is out, for noServer:
// by the app first, then by health, draining and room.
func failure(offersApp, healthy, drained bool) why {
	switch {
	case !offersApp:
		return noApp
	case !healthy:
		return unhealthy
	case drained:
		return draining
	}
	return full
}
