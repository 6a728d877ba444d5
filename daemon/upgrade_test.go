package daemon

import (
	"maps"
	"testing"
)

func TestListenFDsRoundTrip(t *testing.T) {
	spec := formatFDs([]string{"listen", "internal", "ready"})
	if spec != "listen=3,internal=4,ready=5" {
		t.Fatalf("formatFDs: %q", spec)
	}
	got, err := parseFDs(spec)
	if err != nil || !maps.Equal(got, map[string]int{"listen": 3, "internal": 4, "ready": 5}) {
		t.Fatalf("parseFDs(%q) = %v, %v", spec, got, err)
	}
	for _, bad := range []string{"", "listen", "listen=x", "listen=2", "=3", "listen=3,listen=4"} {
		if _, err := parseFDs(bad); err == nil {
			t.Errorf("parseFDs(%q): no error", bad)
		}
	}
}
