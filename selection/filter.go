package selection

// why is the first reason a server or gateway cannot be chosen.
type why uint8

const (
	eligible why = iota
	unhealthy
	draining
	full
	noApp
	unreachable
	nWhy
)

// exclude says why s cannot take a session of app, cheapest checks first.
func exclude(s *Server, app string) why {
	if w := state(s.Healthy, s.Draining, s.Sessions, s.Max); w != eligible {
		return w
	}
	if !offers(s.Apps, app) {
		return noApp
	}
	return eligible
}

// state says why a server cannot take any session (unhealthy, draining or
// full, the first that applies), or eligible.
func state(healthy, drained bool, sessions, limit int) why {
	switch {
	case !healthy:
		return unhealthy
	case drained:
		return draining
	case limit > 0 && sessions >= limit:
		return full
	}
	return eligible
}

func offers(apps []string, app string) bool {
	for _, a := range apps {
		if len(a) == len(app) && equalShort(a, app) {
			return true
		}
	}
	return false
}

// equalShort says whether a and b are equal. Short ones (app and region
// names) are compared inline, last byte first since names tend to share
// prefixes, which is cheaper than the runtime call that == makes (see
// "Placement" in the README).
func equalShort(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) > 16 {
		return a == b
	}
	b = b[:len(a)]
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// within says whether s is at most cut utilised, without a division:
// the larger of its CPU load and session ratio with the new session
// counted, as utilisation computes it.
func within(s *Server, cut float64) bool {
	return !(min(s.Load, maxUtil) > cut) && !(s.Max > 0 && float64(s.Sessions+1) > cut*float64(s.Max))
}
