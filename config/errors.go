package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a config file, at the key responsible.
// Line and Col are 1-based (Col counts bytes); 0 when unknown.
type Problem struct {
	File      string
	Line, Col int
	Msg       string
}

// String formats p as file:line:col: msg, leaving out what is unknown.
func (p Problem) String() string {
	var at string
	switch {
	case p.Line > 0 && p.Col > 0:
		at = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	case p.Line > 0:
		at = fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		at = p.File
	}
	if at == "" {
		return p.Msg
	}
	return at + ": " + p.Msg
}

// Error is every problem found in a config file, sorted by position.
// Load, Parse and Validate return it.
type Error struct {
	Problems []Problem
}

// Error returns each problem on its own line, as file:line:col: msg.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// newError sorts probs by position (problems without one first) and wraps
// them; nil if there are none.
func newError(probs []Problem) error {
	if len(probs) == 0 {
		return nil
	}
	sortProblems(probs)
	return &Error{Problems: probs}
}

// sortProblems orders probs by position, problems without one first, and
// those at one position by message, so that the same file always gives
// the same list whatever order the checks ran in.
func sortProblems(probs []Problem) {
	sort.SliceStable(probs, func(i, j int) bool {
		a, b := probs[i], probs[j]
		switch {
		case a.Line != b.Line:
			return a.Line < b.Line
		case a.Col != b.Col:
			return a.Col < b.Col
		case a.Msg != b.Msg:
			return a.Msg < b.Msg
		}
		return a.File < b.File
	})
}

// typeErr matches the plain errors the toml decoder returns for values of
// the wrong type: toml: line 3 (last key "server.s1.max_sessions"): ...
var typeErr = regexp.MustCompile(`(?s)^toml: line (\d+) \(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)

// decodeProblem turns an error from toml.Decode into a Problem: a
// toml.ParseError carries its position; a type error names its line and
// key, and pos supplies the column. A value error (a ParseError met while
// decoding a well-formed file, such as an invalid duration) is placed at
// its key, and named by it, like any problem with a key.
func decodeProblem(file string, err error, pos *positions, value bool) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) && value && pe.LastKey != "" {
		line, col := pos.exact(pe.LastKey)
		return Problem{File: file, Line: line, Col: col, Msg: pe.LastKey + ": " + valueMsg(pe.LastKey, pe.Message)}
	}
	if errors.As(err, &pe) {
		// The byte offset is more reliable than the toml package's line
		// and column, which are one line late for errors at a newline.
		line, col, ok := pos.offset(pe.Position.Start)
		if !ok {
			line, col = pe.Position.Line, pe.Position.Col
		}
		return Problem{File: file, Line: line, Col: col, Msg: pe.Message}
	}
	p := Problem{File: file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	m := typeErr.FindStringSubmatch(err.Error())
	if m == nil {
		return p
	}
	key, qerr := strconv.Unquote(m[2])
	if qerr != nil {
		return p
	}
	p.Line, _ = strconv.Atoi(m[1])
	p.Msg = key + ": " + valueMsg(key, m[3])
	if line, col := pos.exact(key); line == p.Line {
		p.Col = col
	}
	return p
}

// ProblemAt is a problem with msg at key, or at its nearest enclosing
// table if the file does not set it, the message prefixed with the key;
// for checks outside this package, such as those of one node's host.
func (c *Config) ProblemAt(msg string, key ...string) Problem {
	k := toml.Key(key)
	line, col := c.pos.find(k)
	if len(k) > 0 {
		msg = k.String() + ": " + msg
	}
	return Problem{File: c.Path, Line: line, Col: col, Msg: msg}
}

// Sorted returns probs in file order, as Error lists them.
func Sorted(probs []Problem) []Problem {
	probs = slices.Clone(probs)
	sortProblems(probs)
	return probs
}

// Problems wraps probs, sorted by position, in an *Error; nil if there
// are none.
func Problems(probs []Problem) error { return newError(probs) }
