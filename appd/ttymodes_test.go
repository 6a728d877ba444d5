package appd

import (
	"regexp"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"switchyard/control"
)

// modesReq is ptyReq with the modes of a client that wants ^H to erase,
// no flow control and UTF-8 aware erasing.
func modesReq(app string) control.SpawnRequest {
	req := ptyReq(app)
	req.Pty.Modes = map[uint8]uint32{ssh.VERASE: 8, ssh.IXON: 0, ssh.IUTF8: 1, ssh.TTY_OP_OSPEED: 9600}
	return req
}

// TestPTYModesApplied checks, with stty run as the app, that the client's
// modes are on the PTY when the app starts, and that without modes the PTY
// keeps the kernel's defaults.
func TestPTYModesApplied(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"stty": sh(`stty -a`)})
	s := spawn(t, dialManager(t, m), modesReq("stty"))
	out, _, _ := s.waitEnd()
	for _, want := range []string{`erase = \^H;`, `(^|\s)-ixon\s`, `(^|\s)iutf8\s`, `speed 9600 baud`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("stty -a with modes lacks %q:\n%s", want, out)
		}
	}
	s = spawn(t, dialManager(t, m), ptyReq("stty"))
	out, _, _ = s.waitEnd()
	for _, want := range []string{`erase = \^\?;`, `(^|\s)ixon\s`, `(^|\s)-iutf8\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("stty -a without modes lacks %q:\n%s", want, out)
		}
	}
}

// TestPTYModesErase types "a é ^H x" into od -c: with the client's VERASE
// and IUTF8, the backspace erases both bytes of é.
func TestPTYModesErase(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, map[string]App{"od": sh(`stty -echo; echo ready; od -c`)})
	s := spawn(t, dialManager(t, m), modesReq("od"))
	s.waitOutput("ready")
	if _, err := s.ch.Write([]byte("a\u00e9\bx\r\x04")); err != nil {
		t.Fatal(err)
	}
	out, _, _ := s.waitEnd()
	if !regexp.MustCompile(`0000000 +a +x +\\n\r\n`).MatchString(out) {
		t.Errorf("od -c output %q, want a x \\n", out)
	}
}

func TestSetModes(t *testing.T) {
	base := unix.Termios{Cflag: unix.CS8 | unix.B38400 | unix.CREAD, Iflag: unix.ICRNL | unix.IXON}
	base.Cc[unix.VINTR] = 3
	tests := []struct {
		name  string
		modes map[uint8]uint32
		check func(t unix.Termios) bool
	}{
		{"cs7", map[uint8]uint32{ssh.CS7: 1, ssh.CS8: 0}, func(t unix.Termios) bool { return t.Cflag&unix.CSIZE == unix.CS7 }},
		{"cs8 wins", map[uint8]uint32{ssh.CS7: 1, ssh.CS8: 1}, func(t unix.Termios) bool { return t.Cflag&unix.CSIZE == unix.CS8 }},
		{"both off keeps", map[uint8]uint32{ssh.CS7: 0, ssh.CS8: 0}, func(t unix.Termios) bool { return t.Cflag&unix.CSIZE == unix.CS8 }},
		{"disabled char", map[uint8]uint32{ssh.VINTR: 255}, func(t unix.Termios) bool { return t.Cc[unix.VINTR] == 0 }},
		{"char too big", map[uint8]uint32{ssh.VINTR: 300}, func(t unix.Termios) bool { return t.Cc[unix.VINTR] == 3 }},
		{"unknown speed", map[uint8]uint32{ssh.TTY_OP_OSPEED: 12345}, func(t unix.Termios) bool { return t.Cflag&unix.CBAUD == unix.B38400 }},
		{"ispeed alone", map[uint8]uint32{ssh.TTY_OP_ISPEED: 115200}, func(t unix.Termios) bool { return t.Cflag&unix.CBAUD == unix.B115200 }},
		{"flags", map[uint8]uint32{ssh.ICRNL: 0, ssh.IUTF8: 1, ssh.ECHO: 0, ssh.OPOST: 1, ssh.PARENB: 1, 17: 1, 11: 1}, func(t unix.Termios) bool {
			return t.Iflag == unix.IXON|unix.IUTF8 && t.Lflag == 0 && t.Oflag == unix.OPOST && t.Cflag&unix.PARENB != 0
		}},
	}
	for _, tt := range tests {
		got := base
		setModes(&got, tt.modes)
		if !tt.check(got) {
			t.Errorf("%s: termios %+v", tt.name, got)
		}
	}
}
