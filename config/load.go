package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"switchyard/control"
)

// Defaults Load fills in where the file leaves a value empty or zero.
const (
	defaultStateDir     = "/var/lib/switchyard"
	defaultBrokerListen = "127.0.0.1:7000"
	defaultBrokerAdmin  = DefaultAdmin
	defaultMaxSessions  = 100
)

// Load reads the cluster file at path and returns it with defaults filled
// in, or an *Error listing every problem with its file:line:col.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: load: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for a file already read; name is used in messages and
// becomes Config.Path. The decode is strict: a key the Config does not
// define is a problem. On any problem Parse returns a nil Config and an
// *Error holding them all.
func Parse(name string, data []byte) (*Config, error) {
	c, probs, err := parse(name, data)
	if err != nil {
		return nil, err
	}
	if err := newError(probs); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadAll is Load for check: when the file decodes (its syntax is sound,
// whatever its values), it returns the Config beside its problems, so
// that the checks of what the file names (keys files, node keys, a
// node's programs) can run and be reported with them in one list. A file
// that cannot be decoded gives a nil Config and an *Error.
func LoadAll(path string) (*Config, []Problem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: load: %w", err)
	}
	return parse(path, data)
}

// parse decodes data and returns it with every problem found in it; an
// error, and no Config, only when it cannot be decoded.
func parse(name string, data []byte) (*Config, []Problem, error) {
	src := string(data)
	pos := scanPositions(src)
	c, md, typeProbs, err := decode(name, src, pos)
	if err != nil {
		return nil, nil, err
	}
	c.Path, c.pos = name, pos
	c.Hash = hashOf(data)
	c.fillDefaults(md)
	typeProbs = append(typeProbs, bareDurations(c, md)...)
	typeProbs = append(typeProbs, zeroLimits(c, md)...)
	probs := append(typeProbs, unknownKeys(name, md.Undecoded(), pos)...)
	probs = append(probs, withoutKeys(c.problems(), typeProbs)...)
	sortProblems(probs)
	return c, probs, nil
}

// hashOf is the short content hash every node reports for the file it
// runs: the first 12 hex digits of its SHA-256.
func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// fillDefaults fills the per-node defaults Parse cannot set before the
// decode, since the nodes do not exist yet.
func (c *Config) fillDefaults(md toml.MetaData) {
	c.Etcd.fillDefaults()
	if c.Policy.Affinity == "" {
		c.Policy.Affinity = defaultAffinity
	}
	for name, g := range c.Gateways {
		if g.Address == "" {
			g.Address = g.Listen
		}
		// capacity = 0 means no limit, as every limit key (zerolimits.go);
		// left out, it is control.DefaultGatewayCapacity.
		if g.Capacity == 0 && !md.IsDefined("gateway", name, "capacity") {
			g.Capacity = control.DefaultGatewayCapacity
		}
		if g.HostKey == "" {
			g.HostKey = "keys/" + name + "_host"
		}
		if g.Redirect == "" {
			g.Redirect = RedirectHint
		}
		c.Gateways[name] = g
	}
	apps := sortedKeys(c.Apps)
	for name, s := range c.Servers {
		// max_sessions = 0 means no limit, as every limit key
		// (zerolimits.go) and in appd, the broker and selection; left
		// out, it is defaultMaxSessions.
		if s.MaxSessions == 0 && !md.IsDefined("server", name, "max_sessions") {
			s.MaxSessions = defaultMaxSessions
		}
		if len(s.Apps) == 0 {
			s.Apps = slices.Clone(apps)
		}
		c.Servers[name] = s
	}
}

// unknownKeys reports each key the decode left unused, once per unknown
// name: an unknown table is one problem, not one per key inside it.
func unknownKeys(file string, keys []toml.Key, pos *positions) []Problem {
	var probs []Problem
	reported := map[string]bool{}
	for _, k := range keys {
		part, known := unknownPart(k)
		name := part.String()
		if len(part) == 0 || reported[name] {
			continue
		}
		reported[name] = true
		line, col := pos.find(part)
		msg := "unknown key " + name + hint(part[len(part)-1], known)
		probs = append(probs, Problem{File: file, Line: line, Col: col, Msg: msg})
	}
	return probs
}

// unknownPart returns k's shortest prefix that the Config does not
// define, with the keys that prefix's table does define; k and nil when
// the Config defines k.
func unknownPart(k toml.Key) (toml.Key, []string) {
	t, n := walkKey(k)
	switch {
	case n == len(k):
		return k, nil
	case t.Kind() == reflect.Struct:
		return k[:n+1], fieldKeys(t)
	}
	return k[:n+1], nil
}

// walkKey follows k through the Config type. When the Config defines k
// it returns the type of k's value and len(k); otherwise the type of the
// table where the walk stopped and the index of the first part that
// table does not define.
func walkKey(k toml.Key) (reflect.Type, int) {
	t := reflect.TypeFor[Config]()
	for i, part := range k {
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByKey(t, part)
			if !ok {
				return t, i
			}
			t = f.Type
		default:
			return t, i
		}
	}
	return t, len(k)
}

// hint suggests the known key closest to name or, if none is close,
// lists the known keys.
func hint(name string, known []string) string {
	if len(known) == 0 {
		return ""
	}
	best, dist := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < dist && d < len(name) {
			best, dist = k, d
		}
	}
	if best != "" {
		return " (did you mean " + best + "?)"
	}
	return " (known keys: " + strings.Join(known, ", ") + ")"
}

// fieldKeys lists the keys struct type t decodes, in declaration order.
func fieldKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if name := tomlName(f); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if tomlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// tomlName is the key a struct field decodes from; "" if none.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// maxTypeProblems bounds how many wrong values decode reports before it
// gives up on the rest of the file.
const maxTypeProblems = 50

// decode decodes src onto the defaults. A syntax error ends the decode:
// after one, what follows cannot be trusted. A value the Config cannot take
// (a wrong type, an invalid duration, a number out of range) stops the
// TOML decoder at once, which would hide every other problem, and which
// one it meets first varies from run to run; so its key = value is blanked
// and the decode tried again, until none is left, and every such value
// comes back as a problem beside the rest.
func decode(name, src string, pos *positions) (*Config, toml.MetaData, []Problem, error) {
	if err := syntaxError(src); err != nil {
		return nil, toml.MetaData{}, nil, newError([]Problem{decodeProblem(name, err, pos, false)})
	}
	var probs []Problem
	for {
		c := &Config{
			StateDir: defaultStateDir,
			Broker: Broker{
				Listen:         defaultBrokerListen,
				Admin:          defaultBrokerAdmin,
				ReportInterval: control.DefaultReportInterval,
				Reservation:    control.DefaultReservation,
			},
		}
		md, err := toml.Decode(src, c)
		if err == nil {
			return c, md, probs, nil
		}
		p := decodeProblem(name, err, pos, true)
		probs = append(probs, p)
		blanked, ok := blankValue(src, valueKey(err), p.Line, pos)
		if !ok || syntaxError(blanked) != nil || len(probs) >= maxTypeProblems {
			return nil, md, nil, newError(probs)
		}
		src = blanked
	}
}

// syntaxError is the error decoding src into no particular type returns:
// one of TOML syntax, not of the Config's types.
func syntaxError(src string) error {
	var any map[string]any
	_, err := toml.Decode(src, &any)
	return err
}

// valueKey is the key a decode error is about, spelled as toml.Key.String
// spells it; "" if it names none.
func valueKey(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.LastKey
	}
	if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
		if key, qerr := strconv.Unquote(m[2]); qerr == nil {
			return key
		}
	}
	return ""
}

// blankValue overwrites the key = value defining key with spaces, keeping
// every other byte where it was; failing that (a key the scanner did not
// record), it empties line n. False if there was nothing to blank.
func blankValue(src, key string, n int, pos *positions) (string, bool) {
	if start, end, ok := pos.span(key); ok && end <= len(src) {
		blank := strings.Map(func(r rune) rune {
			if r == '\n' {
				return r
			}
			return ' '
		}, src[start:end])
		return src[:start] + blank + src[end:], true
	}
	return blankLine(src, n)
}

// blankLine empties line n (1-based) of src, keeping the line count.
func blankLine(src string, n int) (string, bool) {
	lines := strings.SplitAfter(src, "\n")
	if n < 1 || n > len(lines) || strings.TrimSpace(lines[n-1]) == "" {
		return src, false
	}
	lines[n-1] = "\n"
	return strings.Join(lines, ""), true
}

// withoutKeys drops the problems about keys that already have a type
// problem (an app whose argv had the wrong type is not also "missing argv").
func withoutKeys(probs, typeProbs []Problem) []Problem {
	out := probs[:0:0]
	for _, p := range probs {
		dup := false
		for _, tp := range typeProbs {
			key, _, _ := strings.Cut(tp.Msg, ": ")
			dup = dup || key != "" && strings.HasPrefix(p.Msg, key+":")
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}
