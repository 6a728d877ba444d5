// Package safelog makes client-controlled text safe to show: in logs, in
// the tables admins read, and in the lines users get. It escapes control
// characters (so nothing a client sends can retitle, clear or move an
// admin's terminal), caps the length (so a 100 KB app name costs a log a
// few hundred bytes), and summarises repeated events per source (so a
// flood produces a line every few seconds, not thousands).
//
// It imports nothing of this module.
package safelog

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Max is the default cap, in bytes of the original text, of a field a
// client controls (a login, an app name, an argument, a client version).
const Max = 128

// Text returns s with every control character, format character (such as
// the bidirectional overrides) and invalid UTF-8 byte escaped in Go's
// notation (\x1b, \u202e, \xff), cut after max bytes of s with a note of
// how much was left out. Printable text, spaces included, is unchanged.
// A max of 0 or less means Max.
func Text(s string, max int) string {
	if max <= 0 {
		max = Max
	}
	if len(s) <= max && clean(s) {
		return s
	}
	var b strings.Builder
	cut := s[:min(len(s), max)]
	for k := 0; k < utf8.UTFMax-1 && len(cut) < len(s) && len(cut) > 0 && !utf8.RuneStart(s[len(cut)]); k++ {
		cut = cut[:len(cut)-1] // do not split a rune at the cap
	}
	for i := 0; i < len(cut); {
		r, n := utf8.DecodeRuneInString(cut[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, cut[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			b.WriteString(escapeRune(r))
		default:
			b.WriteString(cut[i : i+n])
		}
		i += n
	}
	if left := len(s) - len(cut); left > 0 {
		fmt.Fprintf(&b, "...(%d more bytes)", left)
	}
	return b.String()
}

// String is a slog attribute of client-controlled text, escaped and capped
// at Max.
func String(key, value string) slog.Attr { return slog.String(key, Text(value, Max)) }

// Strings is a slog attribute of client-controlled words (arguments): each
// escaped and capped at Max, at most 16 of them, the rest counted.
func Strings(key string, values []string) slog.Attr {
	const most = 16
	out := make([]string, 0, min(len(values), most+1))
	for i, v := range values {
		if i == most {
			out = append(out, fmt.Sprintf("...(%d more)", len(values)-most))
			break
		}
		out = append(out, Text(v, Max))
	}
	return slog.Any(key, out)
}

// clean reports whether s needs no escaping.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			return cleanSlow(s[i:])
		}
	}
	return true
}

func cleanSlow(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || unsafeRune(r) {
			return false
		}
	}
	return true
}

// unsafeRune reports whether r must be escaped: C0 and C1 controls, DEL,
// and format characters (bidirectional overrides, zero-width joiners).
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

func escapeRune(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x100 {
		return fmt.Sprintf(`\x%02x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}
