package sshgate

import (
	"reflect"
	"testing"
)

func TestParseModes(t *testing.T) {
	tests := []struct {
		in   string
		want map[uint8]uint32
	}{
		{"", nil},
		{"\x00", nil},
		{"\x03\x00\x00\x00\x08\x2a\x00\x00\x00\x01\x00", map[uint8]uint32{3: 8, 42: 1}},
		// a later value replaces an earlier one
		{"\x26\x00\x00\x00\x01\x26\x00\x00\x00\x00\x00", map[uint8]uint32{38: 0}},
		// no TTY_OP_END: stop at the end
		{"\x81\x00\x00\x96\x00", map[uint8]uint32{129: 38400}},
		// an undefined opcode stops the parse; so does a truncated pair
		{"\x03\x00\x00\x00\x08\xa0\x00\x00\x00\x01\x2a\x00\x00\x00\x01", map[uint8]uint32{3: 8}},
		{"\x03\x00\x00\x00\x08\x2a\x00\x00", map[uint8]uint32{3: 8}},
	}
	for _, tt := range tests {
		if got := parseModes(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseModes(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
