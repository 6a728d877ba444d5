package config

import (
	"strconv"
	"strings"
)

// The lexical half of the scanner: strings, blanks and line ends.

// isBare reports whether c may appear in a bare key. Bytes of multi-byte
// UTF-8 characters count, as TOML 1.1 allows Unicode letters.
func isBare(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c >= 0x80
}

// basic reads a "basic string" and returns its value. An unterminated
// string ends at the newline, which is left unread.
func (s *scanner) basic() string {
	s.i++
	var b strings.Builder
	for s.i < len(s.src) {
		switch c := s.src[s.i]; c {
		case '"':
			s.i++
			return b.String()
		case '\n':
			return b.String()
		case '\\':
			s.escape(&b)
		default:
			b.WriteByte(c)
			s.i++
		}
	}
	return b.String()
}

var (
	simpleEscapes = map[byte]byte{'b': '\b', 't': '\t', 'n': '\n', 'f': '\f', 'r': '\r',
		'e': 0x1b, '"': '"', '\\': '\\'}
	hexEscapes = map[byte]int{'x': 2, 'u': 4, 'U': 8} // digits after \x, \u, \U
)

// escape decodes the escape sequence at s.i into b; an invalid one is
// copied as it stands.
func (s *scanner) escape(b *strings.Builder) {
	if s.i+1 >= len(s.src) {
		b.WriteByte('\\')
		s.i++
		return
	}
	e := s.src[s.i+1]
	if r, ok := simpleEscapes[e]; ok {
		b.WriteByte(r)
		s.i += 2
		return
	}
	if n := hexEscapes[e]; n > 0 && s.i+2+n <= len(s.src) {
		if v, err := strconv.ParseUint(s.src[s.i+2:s.i+2+n], 16, 32); err == nil {
			b.WriteRune(rune(v))
			s.i += 2 + n
			return
		}
	}
	if e == '\n' {
		b.WriteByte('\\')
		s.i++
		return
	}
	b.WriteByte('\\')
	b.WriteByte(e)
	s.i += 2
}

// literal reads a 'literal string' and returns its value.
func (s *scanner) literal() string {
	s.i++
	start := s.i
	for s.i < len(s.src) && s.src[s.i] != '\'' && s.src[s.i] != '\n' {
		s.i++
	}
	v := s.src[start:s.i]
	if s.peek('\'') {
		s.i++
	}
	return v
}

// multiline skips a multi-line string opened by delim: three double or
// three single quotes. Up to two extra quotes may end it, as in """a "b"""".
func (s *scanner) multiline(delim string) {
	s.i += len(delim)
	for s.i < len(s.src) {
		if strings.HasPrefix(s.src[s.i:], delim) {
			s.i += len(delim)
			for n := 0; n < 2 && s.peek(delim[0]); n++ {
				s.i++
			}
			return
		}
		if delim[0] == '"' && s.src[s.i] == '\\' && s.i+1 < len(s.src) {
			s.i++
		}
		s.i++
	}
}

// skipBlank skips spaces, tabs, comments and, if newlines, line ends.
func (s *scanner) skipBlank(newlines bool) {
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			if !newlines {
				return
			}
			s.i++
		case '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// skipLine skips the rest of the line and its newline.
func (s *scanner) skipLine() {
	if j := strings.IndexByte(s.src[s.i:], '\n'); j >= 0 {
		s.i += j + 1
	} else {
		s.i = len(s.src)
	}
}

func (s *scanner) peek(c byte) bool { return s.i < len(s.src) && s.src[s.i] == c }
