package sshgate

import "encoding/binary"

// RFC 4254 section 8: the encoded terminal modes are opcode/value pairs,
// ending at TTY_OP_END; opcodes 1-159 carry a uint32, 160 and above are
// undefined and stop the parse.
const (
	ttyOpEnd      = 0
	ttyOpFirstBad = 160
)

// parseModes decodes the terminal modes of a pty-req. It keeps what it read
// before a truncated pair or an undefined opcode (as sshd does), and nil for
// no modes. A later value of an opcode replaces an earlier one.
func parseModes(b string) map[uint8]uint32 {
	var modes map[uint8]uint32
	for len(b) >= 5 {
		op := b[0]
		if op == ttyOpEnd || op >= ttyOpFirstBad {
			break
		}
		if modes == nil {
			modes = make(map[uint8]uint32)
		}
		modes[op] = binary.BigEndian.Uint32([]byte(b[1:5]))
		b = b[5:]
	}
	return modes
}
