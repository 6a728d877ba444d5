package appd

import "bytes"

// privateModePrefix starts a DEC private mode set (CSI ? Pn h) or reset
// (CSI ? Pn l).
var privateModePrefix = []byte("\x1b[?")

// altScreenAfter is whether a terminal that was on its alternate screen
// (alt) is on it after p: the last of the modes 47, 1047 and 1049 that p
// sets or resets decides, as in xterm. A full-screen app (htop, vim,
// less) enters the alternate screen at start and leaves it at exit. A
// sequence cut between two writes is missed; apps write one whole.
func altScreenAfter(p []byte, alt bool) bool {
	for {
		i := bytes.Index(p, privateModePrefix)
		if i < 0 {
			return alt
		}
		p = p[i+len(privateModePrefix):]
		isAlt, n := false, 0
		j := 0
	params:
		for ; j < len(p); j++ {
			switch c := p[j]; {
			case c >= '0' && c <= '9':
				n = n*10 + int(c-'0')
				if n > 1<<16 {
					break params
				}
			case c == ';':
				isAlt = isAlt || n == 47 || n == 1047 || n == 1049
				n = 0
			case c == 'h' || c == 'l':
				if isAlt || n == 47 || n == 1047 || n == 1049 {
					alt = c == 'h'
				}
				break params
			default:
				break params
			}
		}
		p = p[j:]
	}
}
