package tui

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// screen is a minimal terminal emulator for tests: enough of VT100/xterm
// to replay what bubbletea's renderer writes (text, CR, LF, cursor
// position and movement, erase in line and display), so a test can check
// that the bytes Run wrote to a raw PTY draw the intended picture. Like a
// raw terminal, it does not turn LF into CR LF: a renderer that ends lines
// with a bare "\n" draws a staircase here as it would for the user.
// Colours, modes and OSC strings are ignored.
type screen struct {
	w, h     int
	cells    [][]rune
	row, col int
	wrap     bool // the last column was written: the next rune wraps
	scrolled int  // lines scrolled off the top, which a full-screen view never causes
}

func newScreen(w, h int) *screen {
	s := &screen{w: w, h: h}
	s.cells = make([][]rune, h)
	for i := range s.cells {
		s.cells[i] = []rune(strings.Repeat(" ", w))
	}
	return s
}

// lines returns the screen's rows with trailing spaces removed.
func (s *screen) lines() []string {
	out := make([]string, s.h)
	for i, r := range s.cells {
		out[i] = strings.TrimRight(string(r), " ")
	}
	return out
}

func (s *screen) lineFeed() {
	if s.row == s.h-1 {
		copy(s.cells, s.cells[1:])
		s.cells[s.h-1] = []rune(strings.Repeat(" ", s.w))
		s.scrolled++
		return
	}
	s.row++
}

// write replays b.
func (s *screen) write(b []byte) {
	for len(b) > 0 {
		switch c := b[0]; {
		case c == '\r':
			s.col, s.wrap = 0, false
			b = b[1:]
		case c == '\n':
			s.lineFeed()
			s.wrap = false
			b = b[1:]
		case c == 0x1b && len(b) > 1 && b[1] == '[':
			b = s.csi(b[2:])
		case c == 0x1b && len(b) > 1 && b[1] == ']':
			end := strings.IndexAny(string(b), "\a\x1b\\")
			if end < 0 {
				return
			}
			b = b[end+1:]
		case c == 0x1b:
			b = b[min(2, len(b)):]
		case c < 0x20:
			b = b[1:]
		default:
			r, n := utf8.DecodeRune(b)
			b = b[n:]
			if s.wrap {
				s.col, s.wrap = 0, false
				s.lineFeed()
			}
			s.cells[s.row][s.col] = r
			if s.col == s.w-1 {
				s.wrap = true
			} else {
				s.col++
			}
		}
	}
}

// csi handles one control sequence whose body starts b, and returns the
// rest.
func (s *screen) csi(b []byte) []byte {
	i := 0
	for i < len(b) && (b[i] < 0x40 || b[i] > 0x7e) {
		i++
	}
	if i == len(b) {
		return nil
	}
	params, final := string(b[:i]), b[i]
	rest := b[i+1:]
	if strings.HasPrefix(params, "?") {
		return rest // private modes: alt screen, cursor, paste
	}
	var n []int
	for _, p := range strings.Split(params, ";") {
		v, _ := strconv.Atoi(p)
		n = append(n, v)
	}
	arg := func(i, def int) int {
		if i < len(n) && n[i] > 0 {
			return n[i]
		}
		return def
	}
	s.wrap = false
	switch final {
	case 'H', 'f':
		s.row = min(arg(0, 1), s.h) - 1
		s.col = min(arg(1, 1), s.w) - 1
	case 'A':
		s.row = max(0, s.row-arg(0, 1))
	case 'B':
		s.row = min(s.h-1, s.row+arg(0, 1))
	case 'C':
		s.col = min(s.w-1, s.col+arg(0, 1))
	case 'D':
		s.col = max(0, s.col-arg(0, 1))
	case 'K':
		from, to := s.col, s.w
		switch arg(0, 0) {
		case 1:
			from, to = 0, s.col+1
		case 2:
			from = 0
		}
		for x := from; x < to; x++ {
			s.cells[s.row][x] = ' '
		}
	case 'J':
		switch arg(0, 0) {
		case 0:
			for x := s.col; x < s.w; x++ {
				s.cells[s.row][x] = ' '
			}
			for y := s.row + 1; y < s.h; y++ {
				s.cells[y] = []rune(strings.Repeat(" ", s.w))
			}
		case 2:
			for y := range s.h {
				s.cells[y] = []rune(strings.Repeat(" ", s.w))
			}
		}
	}
	return rest
}
