package daemon

import "io"

// termFilter passes a session's terminal output on to an admin's terminal
// (broker replay, broker watch) without the sequences that reach beyond
// the screen: operating system commands (OSC: clipboard writes, titles,
// colour queries), device control, SOS, PM and APC strings, and window
// manipulation (CSI ... t, whose reports a terminal would type into the
// admin's shell once the command has ended). Screen drawing (cursor
// movement, SGR colours, erasing, modes) passes unchanged. It keeps its
// state across writes: a sequence may be split between two.
type termFilter struct {
	w     io.Writer
	state byte   // one of the filter* states
	csi   []byte // the CSI sequence being collected
	out   []byte // reused output buffer
}

// States of termFilter.
const (
	filterGround byte = iota
	filterEsc         // after ESC
	filterCSI         // inside ESC [ ...
	filterString      // inside a dropped string, until BEL or ESC \
	filterStrEsc      // ESC inside a dropped string
)

// maxCSI bounds a CSI sequence the filter holds; a longer one is passed
// on as it is (no terminal takes one that long).
const maxCSI = 64

func newTermFilter(w io.Writer) *termFilter { return &termFilter{w: w} }

// Write filters p; it reports all of p written unless w fails.
func (f *termFilter) Write(p []byte) (int, error) {
	out := f.out[:0]
	for _, c := range p {
		out = f.step(out, c)
	}
	f.out = out
	if len(out) > 0 {
		if _, err := f.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// step feeds one byte through the filter, appending what passes to out.
func (f *termFilter) step(out []byte, c byte) []byte {
	switch f.state {
	case filterEsc:
		return f.afterEsc(out, c)
	case filterCSI:
		f.csi = append(f.csi, c)
		if c >= 0x40 && c <= 0x7e || len(f.csi) >= maxCSI {
			f.state = filterGround
			if c != 't' {
				out = append(out, f.csi...)
			}
		}
		return out
	case filterString:
		switch c {
		case 0x07:
			f.state = filterGround
		case 0x1b:
			f.state = filterStrEsc
		}
		return out
	case filterStrEsc:
		if c == '\\' {
			f.state = filterGround
			return out
		}
		return f.afterEsc(out, c) // an ESC ends the string; c starts what follows
	}
	if c == 0x1b {
		f.state = filterEsc
		return out
	}
	return append(out, c)
}

// afterEsc handles the byte after an ESC.
func (f *termFilter) afterEsc(out []byte, c byte) []byte {
	switch c {
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC
		f.state = filterString
	case '[':
		f.state = filterCSI
		f.csi = append(f.csi[:0], 0x1b, '[')
	case 0x1b:
		out = append(out, 0x1b) // the first ESC led nowhere; the second starts anew
	default:
		f.state = filterGround
		out = append(out, 0x1b, c)
	}
	return out
}
