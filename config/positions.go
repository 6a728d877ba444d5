package config

import (
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// positions maps dotted key paths to where they are defined in a TOML text,
// because the toml package does not export key positions. Keys are spelled
// as toml.Key.String spells them: server.s1.listen, app."my app".argv.
type positions struct {
	lines []int           // byte offset where each line starts
	keys  map[string]mark // key path → its definition
	size  int             // length of the text
	bom   int             // length of the byte order mark the toml package skips
}

// mark is where a key or table is defined.
type mark struct {
	off      int  // byte offset of the key, or of the '[' of a header
	end      int  // for key = value, the byte offset just past the value; 0 otherwise
	explicit bool // defined by a header or key = value, not implied by a longer key
}

// maxDepth bounds nesting of arrays and inline tables; deeper input (only
// ever hostile) ends the scan rather than the stack.
const maxDepth = 100

// scanPositions records where every table header and key of src is defined.
// It never fails: on malformed input it records what it can.
func scanPositions(src string) *positions {
	p := &positions{lines: []int{0}, keys: map[string]mark{}, size: len(src)}
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if strings.HasPrefix(src, bom) {
			p.bom = len(bom)
		}
	}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			p.lines = append(p.lines, i+1)
		}
	}
	s := &scanner{src: src, i: p.bom, keys: p.keys}
	s.run()
	return p
}

// find returns the line and column (1-based, in bytes) of key k or, when k
// is not in the text, of its nearest ancestor; 0, 0 if none is.
func (p *positions) find(k toml.Key) (line, col int) {
	if p == nil {
		return 0, 0
	}
	for n := len(k); n > 0; n-- {
		if m, ok := p.keys[k[:n].String()]; ok {
			return p.lineCol(m.off)
		}
	}
	return 0, 0
}

// exact returns the position of the key spelled s, or 0, 0.
func (p *positions) exact(s string) (line, col int) {
	if p == nil {
		return 0, 0
	}
	if m, ok := p.keys[s]; ok {
		return p.lineCol(m.off)
	}
	return 0, 0
}

// span returns the byte range of the key = value that defines the key
// spelled s, after any byte order mark; false if there is none.
func (p *positions) span(s string) (start, end int, ok bool) {
	if p == nil {
		return 0, 0, false
	}
	m, found := p.keys[s]
	if !found || m.end <= m.off {
		return 0, 0, false
	}
	return m.off, m.end, true
}

// offset returns the line and column of a byte offset as the toml package
// counts them (after any byte order mark); ok is false if it is outside
// the text.
func (p *positions) offset(off int) (line, col int, ok bool) {
	if p == nil || off < 0 || p.bom+off > p.size {
		return 0, 0, false
	}
	line, col = p.lineCol(p.bom + off)
	return line, col, true
}

func (p *positions) lineCol(off int) (line, col int) {
	i := sort.Search(len(p.lines), func(j int) bool { return p.lines[j] > off }) - 1
	return i + 1, off - p.lines[i] + 1
}

// scanner walks TOML text just far enough to tell keys from values: it
// skips strings (all four kinds), arrays and comments, and descends into
// inline tables, whose keys it records too.
type scanner struct {
	src   string
	i     int
	depth int
	keys  map[string]mark
}

func (s *scanner) run() {
	var table toml.Key
	for s.i < len(s.src) {
		s.skipBlank(true)
		if s.i >= len(s.src) {
			break
		}
		if s.src[s.i] == '[' {
			table = s.header()
		} else {
			s.keyval(table)
		}
		s.skipLine()
	}
}

// header reads [a.b] or [[a.b]] and returns the table path.
func (s *scanner) header() toml.Key {
	start := s.i
	s.i++
	if s.peek('[') {
		s.i++
	}
	k := s.key()
	if len(k) > 0 {
		s.mark(k, start)
	}
	return k
}

// keyval reads key = value, recording the key under table.
func (s *scanner) keyval(table toml.Key) {
	start := s.i
	k := s.key()
	if k == nil {
		return
	}
	s.skipBlank(false)
	if !s.peek('=') {
		return
	}
	s.i++
	full := append(table[:len(table):len(table)], k...)
	s.mark(full, start)
	s.skipBlank(false)
	s.value(full)
	if m := s.keys[full.String()]; m.off == start && m.explicit {
		m.end = s.i
		s.keys[full.String()] = m
	}
}

// mark records k as defined at off, and its ancestors as implied there.
func (s *scanner) mark(k toml.Key, off int) {
	for n := 1; n < len(k); n++ {
		s.set(k[:n], off, false)
	}
	s.set(k, off, true)
}

// set keeps the first definition, except that an explicit one replaces an
// implied one.
func (s *scanner) set(k toml.Key, off int, explicit bool) {
	name := k.String()
	if m, ok := s.keys[name]; !ok || explicit && !m.explicit {
		s.keys[name] = mark{off: off, explicit: explicit}
	}
}

// key reads a dotted key (a . "b" . 'c'); nil if there is none.
func (s *scanner) key() toml.Key {
	var k toml.Key
	for {
		s.skipBlank(false)
		part, ok := s.keyPart()
		if !ok {
			return nil
		}
		k = append(k, part)
		s.skipBlank(false)
		if !s.peek('.') {
			return k
		}
		s.i++
	}
}

func (s *scanner) keyPart() (string, bool) {
	if s.i >= len(s.src) {
		return "", false
	}
	switch s.src[s.i] {
	case '"':
		return s.basic(), true
	case '\'':
		return s.literal(), true
	}
	start := s.i
	for s.i < len(s.src) && isBare(s.src[s.i]) {
		s.i++
	}
	return s.src[start:s.i], s.i > start
}

// value skips one value; inline tables' keys are recorded under path.
func (s *scanner) value(path toml.Key) {
	if s.i >= len(s.src) {
		return
	}
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxDepth {
		s.i = len(s.src)
		return
	}
	rest := s.src[s.i:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		s.multiline(`"""`)
	case strings.HasPrefix(rest, `'''`):
		s.multiline(`'''`)
	case rest[0] == '"':
		s.basic()
	case rest[0] == '\'':
		s.literal()
	case rest[0] == '[':
		s.array(path)
	case rest[0] == '{':
		s.inline(path)
	default: // number, bool, date-time (which may hold a space)
		for s.i < len(s.src) && !strings.ContainsRune(",]}#\n", rune(s.src[s.i])) {
			s.i++
		}
	}
}

func (s *scanner) array(path toml.Key) { s.items(']', func() { s.value(path) }) }

func (s *scanner) inline(path toml.Key) { s.items('}', func() { s.keyval(path) }) }

// items scans a bracketed list up to close, calling item for each element
// (newlines allowed: arrays, and inline tables in TOML 1.1).
func (s *scanner) items(close byte, item func()) {
	s.i++
	for s.i < len(s.src) {
		s.skipBlank(true)
		if s.i >= len(s.src) {
			return
		}
		switch s.src[s.i] {
		case close:
			s.i++
			return
		case ',':
			s.i++
		default:
			before := s.i
			item()
			if s.i == before {
				s.i++
			}
		}
	}
}
