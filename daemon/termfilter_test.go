package daemon

import (
	"bytes"
	"testing"
)

func TestTermFilterDropsWhatReachesBeyondTheScreen(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain\r\ntext", "plain\r\ntext"},
		{"\x1b[2J\x1b[1;10H\x1b[1;32mgreen\x1b[0m", "\x1b[2J\x1b[1;10H\x1b[1;32mgreen\x1b[0m"},
		{"a\x1b]52;c;ZWNobyBwd25lZAo=\x07b", "ab"},              // clipboard write, BEL-terminated
		{"a\x1b]0;title\x1b\\b", "ab"},                          // title, ST-terminated
		{"a\x1bP$q\"p\x1b\\b", "ab"},                            // DECRQSS: the terminal would answer
		{"a\x1b_apc\x1b\\b\x1b^pm\x07c\x1bXsos\x1b\\d", "abcd"}, // APC, PM, SOS
		{"a\x1b[21tb\x1b[8;50;100tc", "abc"},                    // title report, resize
		{"\x1b(B\x1b=\x1b7\x1b8", "\x1b(B\x1b=\x1b7\x1b8"},      // charset, keypad, save/restore
		{"a\x1b]2;x\x1b[1mb", "a\x1b[1mb"},                      // an ESC ends a string
		{"\x1b\x1b[1m", "\x1b\x1b[1m"},
	}
	for _, tc := range cases {
		for split := 0; split <= len(tc.in); split++ { // a sequence cut between two writes
			var out bytes.Buffer
			f := newTermFilter(&out)
			f.Write([]byte(tc.in[:split]))
			f.Write([]byte(tc.in[split:]))
			if out.String() != tc.want {
				t.Fatalf("%q split at %d: got %q, want %q", tc.in, split, out.String(), tc.want)
			}
		}
	}
}
