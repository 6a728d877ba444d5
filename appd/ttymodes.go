package appd

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// The terminal modes of RFC 4254 section 8 (and IUTF8, RFC 8160) that Linux
// has. VDSUSP (11), VFLUSH (15) and VSTATUS (17) have no Linux counterpart
// and are ignored, as sshd on Linux does.
var (
	// ttyChars maps a special-character opcode to its c_cc index.
	ttyChars = map[uint8]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL,
		5: unix.VEOF, 6: unix.VEOL, 7: unix.VEOL2, 8: unix.VSTART,
		9: unix.VSTOP, 10: unix.VSUSP, 12: unix.VREPRINT, 13: unix.VWERASE,
		14: unix.VLNEXT, 16: unix.VSWTC, 18: unix.VDISCARD,
	}
	ttyIflags = map[uint8]uint32{
		30: unix.IGNPAR, 31: unix.PARMRK, 32: unix.INPCK, 33: unix.ISTRIP,
		34: unix.INLCR, 35: unix.IGNCR, 36: unix.ICRNL, 37: unix.IUCLC,
		38: unix.IXON, 39: unix.IXANY, 40: unix.IXOFF, 41: unix.IMAXBEL,
		42: unix.IUTF8,
	}
	ttyLflags = map[uint8]uint32{
		50: unix.ISIG, 51: unix.ICANON, 52: unix.XCASE, 53: unix.ECHO,
		54: unix.ECHOE, 55: unix.ECHOK, 56: unix.ECHONL, 57: unix.NOFLSH,
		58: unix.TOSTOP, 59: unix.IEXTEN, 60: unix.ECHOCTL, 61: unix.ECHOKE,
		62: unix.PENDIN,
	}
	ttyOflags = map[uint8]uint32{
		70: unix.OPOST, 71: unix.OLCUC, 72: unix.ONLCR, 73: unix.OCRNL,
		74: unix.ONOCR, 75: unix.ONLRET,
	}
	ttyCflags = map[uint8]uint32{92: unix.PARENB, 93: unix.PARODD}
)

const (
	ttyOpCS7    = 90
	ttyOpCS8    = 91
	ttyOpISpeed = 128
	ttyOpOSpeed = 129
	// vdisable is what a client sends for a disabled special character;
	// Linux disables one with 0 (_POSIX_VDISABLE).
	vdisable = 255
)

// ttySpeeds maps a speed in bits per second to its Linux CBAUD value. 0
// (B0, hang up) is left out: a new session's line is never hung up.
var ttySpeeds = map[uint32]uint32{
	50: unix.B50, 75: unix.B75, 110: unix.B110, 134: unix.B134,
	150: unix.B150, 200: unix.B200, 300: unix.B300, 600: unix.B600,
	1200: unix.B1200, 1800: unix.B1800, 2400: unix.B2400, 4800: unix.B4800,
	9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400,
	57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400,
	460800: unix.B460800, 500000: unix.B500000, 576000: unix.B576000,
	921600: unix.B921600, 1000000: unix.B1000000, 1152000: unix.B1152000,
	1500000: unix.B1500000, 2000000: unix.B2000000, 2500000: unix.B2500000,
	3000000: unix.B3000000, 3500000: unix.B3500000, 4000000: unix.B4000000,
}

// applyModes sets the client's terminal modes on the tty (the PTY's slave
// side) before the app starts. Opcodes Linux lacks, special characters
// above 255 and speeds Linux cannot express are ignored.
func applyModes(tty int, modes map[uint8]uint32) error {
	if len(modes) == 0 {
		return nil
	}
	t, err := unix.IoctlGetTermios(tty, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("ioctl TCGETS: %w", err)
	}
	setModes(t, modes)
	if err := unix.IoctlSetTermios(tty, unix.TCSETS, t); err != nil {
		return fmt.Errorf("ioctl TCSETS: %w", err)
	}
	return nil
}

// setModes changes t as modes say.
func setModes(t *unix.Termios, modes map[uint8]uint32) {
	for op, v := range modes {
		if i, ok := ttyChars[op]; ok {
			setChar(t, i, v)
		}
		setFlag(&t.Iflag, ttyIflags, op, v)
		setFlag(&t.Lflag, ttyLflags, op, v)
		setFlag(&t.Oflag, ttyOflags, op, v)
		setFlag(&t.Cflag, ttyCflags, op, v)
	}
	setSize(t, modes)
	setSpeed(t, modes)
}

func setChar(t *unix.Termios, i int, v uint32) {
	switch {
	case v == vdisable:
		t.Cc[i] = 0
	case v < vdisable:
		t.Cc[i] = uint8(v)
	}
}

func setFlag(field *uint32, flags map[uint8]uint32, op uint8, v uint32) {
	bit, ok := flags[op]
	if !ok {
		return
	}
	if v != 0 {
		*field |= bit
	} else {
		*field &^= bit
	}
}

// setSize sets the character size. CS7 and CS8 share the CSIZE bits, so
// they are not flags: CS8 wins when both are on; both off keeps the size.
func setSize(t *unix.Termios, modes map[uint8]uint32) {
	var size uint32
	switch {
	case modes[ttyOpCS8] != 0:
		size = unix.CS8
	case modes[ttyOpCS7] != 0:
		size = unix.CS7
	default:
		return
	}
	t.Cflag = t.Cflag&^unix.CSIZE | size
}

// setSpeed sets the line speed from the output speed (the input speed
// when the client sent only that). A Linux tty keeps one speed for both
// directions unless CIBAUD is set, which a PTY has no use for.
func setSpeed(t *unix.Termios, modes map[uint8]uint32) {
	v, ok := modes[ttyOpOSpeed]
	if !ok {
		v, ok = modes[ttyOpISpeed]
	}
	b, known := ttySpeeds[v]
	if !ok || !known {
		return
	}
	t.Cflag = t.Cflag&^(unix.CBAUD|unix.CIBAUD) | b
	t.Ispeed, t.Ospeed = v, v
}
