package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// durationUnit is the reason a number is refused where a duration is
// expected: the toml package would take `report_interval = 2` as two
// nanoseconds.
const durationUnit = `a duration needs a unit`

// bareDurations reports every duration key of c whose value is a bare
// number (an integer: a float is already a type problem) instead of a
// string with a unit, suggesting the same number in seconds.
func bareDurations(c *Config, md toml.MetaData) []Problem {
	var probs []Problem
	for _, k := range md.Keys() {
		if !isDurationKey(k) || md.Type(k...) != "Integer" {
			continue
		}
		n := "N"
		if v, ok := valueAt(c, k); ok {
			n = fmt.Sprint(v.Int()) // nanoseconds, as the toml package took it
		}
		line, col := c.pos.find(k)
		probs = append(probs, Problem{File: c.Path, Line: line, Col: col,
			Msg: fmt.Sprintf("%s: a bare %s is not a duration: a duration needs a unit, e.g. %q", k, n, n+"s")})
	}
	return probs
}

// valueAt returns the value key k decoded into in c, pointers followed.
func valueAt(c *Config, k toml.Key) (reflect.Value, bool) {
	v := reflect.ValueOf(c).Elem()
	for _, part := range k {
		switch v.Kind() {
		case reflect.Map:
			v = v.MapIndex(reflect.ValueOf(part))
		case reflect.Struct:
			f, ok := fieldByKey(v.Type(), part)
			if !ok {
				return reflect.Value{}, false
			}
			v = v.FieldByIndex(f.Index)
		default:
			return reflect.Value{}, false
		}
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if !v.IsValid() {
			return reflect.Value{}, false
		}
	}
	return v, v.Kind() == reflect.Int64
}

// isDurationKey reports whether key k of the file decodes into a
// time.Duration (or a pointer to one) of the Config.
func isDurationKey(k toml.Key) bool {
	t, ok := keyType(k)
	if !ok {
		return false
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t == reflect.TypeFor[time.Duration]()
}

// keyType is the Go type k's value decodes into; false if the Config
// does not define k.
func keyType(k toml.Key) (reflect.Type, bool) {
	t, n := walkKey(k)
	return t, n == len(k)
}

// valueMsg adds the reason to the toml package's message about a value
// of a duration key: a float (`grace = 1.5`) or a string time.ParseDuration
// refuses. Other messages are returned as they are.
func valueMsg(key, msg string) string {
	if !isDurationKey((&scanner{src: key}).key()) {
		return msg
	}
	switch {
	case strings.HasPrefix(msg, "incompatible types"):
		return `not a duration: ` + durationUnit + `, in a string like "1.5s" or "1m30s"`
	case strings.HasPrefix(msg, "invalid duration"):
		return msg + `: want a number and a unit (ns, us, ms, s, m, h), like "2s" or "1m30s"`
	}
	return msg
}
