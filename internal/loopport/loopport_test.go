package loopport

import (
	"net"
	"strconv"
	"testing"
)

// TestPickIsBelowTheEphemeralRange: the ports are distinct, bindable, and
// drawn from below the range outgoing connections take theirs from.
func TestPickIsBelowTheEphemeralRange(t *testing.T) {
	addrs, err := Pick(20)
	if err != nil {
		t.Fatal(err)
	}
	hi := ephemeralStart()
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Errorf("%s picked twice", a)
		}
		seen[a] = true
		_, p, _ := net.SplitHostPort(a)
		if port, _ := strconv.Atoi(p); port < lowest || port >= hi {
			t.Errorf("%s: want a port in [%d, %d)", a, lowest, hi)
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("picked %s, but it cannot be bound: %v", a, err)
			continue
		}
		ln.Close()
	}
}

func TestParseRange(t *testing.T) {
	if lo, err := parseRange("32768\t60999\n"); err != nil || lo != 32768 {
		t.Errorf("got %d, %v", lo, err)
	}
	if _, err := parseRange("garbage"); err == nil {
		t.Error("garbage parsed")
	}
}
