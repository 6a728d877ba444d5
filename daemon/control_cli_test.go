package daemon

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestControlFlagsBeforeAndAfterOperands(t *testing.T) {
	f := newControlFlags("kill")
	reason := f.fs.String("reason", "", "")
	ops, err := f.parse([]string{"-config", "c.toml", "abcdef12", "-reason", "two words", "-node", "b2"}, 1)
	if err != nil || !slices.Equal(ops, []string{"abcdef12"}) || *reason != "two words" || *f.node != "b2" {
		t.Fatalf("ops %q, reason %q, node %q, err %v", ops, *reason, *f.node, err)
	}
	for _, args := range [][]string{{}, {"a", "b"}, {"-bogus"}} {
		if _, err := newControlFlags("kill").parse(args, 1); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestTimeArg(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		sign int
		want time.Time
		bad  bool
	}{
		{"", 1, time.Time{}, false},
		{"2h", 1, now.Add(2 * time.Hour), false},
		{"30m", -1, now.Add(-30 * time.Minute), false},
		{"2026-12-24T18:00:00Z", 1, time.Date(2026, 12, 24, 18, 0, 0, 0, time.UTC), false},
		{"tomorrow", 1, time.Time{}, true},
		{"-2h", 1, time.Time{}, true},
	} {
		got, err := timeArg(c.in, now, c.sign)
		if (err != nil) != c.bad || !got.Equal(c.want) {
			t.Errorf("timeArg(%q, %d) = %v, %v; want %v (error %v)", c.in, c.sign, got, err, c.want, c.bad)
		}
	}
}
