package appd

import "testing"

func TestAltScreenAfter(t *testing.T) {
	for _, tt := range []struct {
		out      string
		was, now bool
	}{
		{"plain text", false, false},
		{"plain text", true, true},
		{"\x1b[?1049h\x1b[H\x1b[2J", false, true},
		{"\x1b[?1049l", true, false},
		{"\x1b[?47h", false, true},
		{"\x1b[?1047h", false, true},
		{"\x1b[?25l\x1b[?1h", false, false},   // cursor and keypad modes only
		{"\x1b[?1h;\x1b[?1049h", false, true}, // htop's start, more or less
		{"\x1b[?1049h...\x1b[?1049l", false, false},
		{"\x1b[?1049l...\x1b[?1049h", true, true},
		{"\x1b[?25;1049h", false, true}, // several modes in one sequence
		{"\x1b[?1049;25l", true, false},
		{"\x1b[?10490h", false, false},
		{"\x1b[?99999999999999999999h", false, false},
		{"\x1b[?1049", false, false}, // cut short
		{"\x1b[1049h", false, false}, // not a private mode
	} {
		if got := altScreenAfter([]byte(tt.out), tt.was); got != tt.now {
			t.Errorf("altScreenAfter(%q, %v) = %v, want %v", tt.out, tt.was, got, tt.now)
		}
	}
}
