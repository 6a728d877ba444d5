package daemon

import (
	"errors"
	"testing"
)

// An unreadable or unparsable load average counts as busy, never as idle.
func TestParseLoadavg(t *testing.T) {
	for _, tt := range []struct {
		name string
		b    string
		err  error
		cpus int
		want float64
	}{
		{"normal", "3.00 2.00 1.00 1/100 42\n", nil, 2, 1.5},
		{"idle", "0.00 0.01 0.05 1/100 42\n", nil, 4, 0},
		{"unreadable", "", errors.New("permission denied"), 2, unknownLoad},
		{"empty", "", nil, 2, unknownLoad},
		{"garbage", "x y z", nil, 2, unknownLoad},
		{"negative", "-1 0 0", nil, 2, unknownLoad},
	} {
		if got := parseLoadavg([]byte(tt.b), tt.err, tt.cpus); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
