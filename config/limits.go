package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Limits bound what one session of an app may use. The [limits] table sets
// them for every app; an app's [app.NAME.limits] overrides them key by key;
// a key set nowhere has the default shown (see AppResources).
//
// Each is a Limit: a whole number (open_files = 1024), a string with a unit
// (memory = "256M", cpu = "150%"), or "unlimited".
type Limits struct {
	OpenFiles     Limit `toml:"open_files"`      // soft RLIMIT_NOFILE; 1024
	OpenFilesHard Limit `toml:"open_files_hard"` // hard RLIMIT_NOFILE; 4096 (never below open_files)
	Processes     Limit `toml:"processes"`       // RLIMIT_NPROC, counted per Unix user across sessions; "unlimited"
	Core          Limit `toml:"core"`            // RLIMIT_CORE, a size; 0 (no core dumps)
	Memory        Limit `toml:"memory"`          // memory of the session's cgroup, a size; "unlimited"
	CPU           Limit `toml:"cpu"`             // CPU time of the session's cgroup, "100%" being one CPU; "unlimited"
	Tasks         Limit `toml:"tasks"`           // processes and threads in the session's cgroup; 512
}

// Limit is one resource limit as the file gives it: a TOML integer, a
// string, or nothing (unset). Validate checks it; AppResources reads it.
type Limit struct {
	v any // nil (unset), int64 or string; anything else is a problem for Validate
}

// UnmarshalTOML keeps whatever value the file has; Validate judges it, so
// that a wrong value is reported with the others, at its line.
func (l *Limit) UnmarshalTOML(v any) error {
	l.v = v
	return nil
}

// LimitOf makes a Limit in code: an int, int64 or string.
func LimitOf(v any) Limit {
	if n, ok := v.(int); ok {
		v = int64(n)
	}
	return Limit{v: v}
}

// IsSet reports whether the file gave this limit.
func (l Limit) IsSet() bool { return l.v != nil }

// Unlimited is a resolved limit that does not limit.
const Unlimited = math.MaxUint64

// Resources are one app's limits, resolved: each a number, or Unlimited.
type Resources struct {
	OpenFiles     uint64 // soft RLIMIT_NOFILE
	OpenFilesHard uint64 // hard RLIMIT_NOFILE, at least OpenFiles
	Processes     uint64 // RLIMIT_NPROC
	Core          uint64 // RLIMIT_CORE, bytes
	Memory        uint64 // cgroup memory limit, bytes
	CPU           uint64 // cgroup CPU limit, percent of one CPU
	Tasks         uint64 // cgroup tasks limit
}

// DefaultResources are the limits of an app when neither [limits] nor
// its own table sets them.
var DefaultResources = Resources{
	OpenFiles: 1024, OpenFilesHard: 4096, Processes: Unlimited, Core: 0,
	Memory: Unlimited, CPU: Unlimited, Tasks: 512,
}

// limitKind says how a limit's value reads.
type limitKind int

const (
	kindCount   limitKind = iota // a whole number
	kindSize                     // bytes, with a unit: "256M"
	kindPercent                  // "150%"
)

// limitField is one key of Limits: its name, kind, and where it goes.
type limitField struct {
	key  string
	kind limitKind
	min  uint64 // smallest value allowed
	get  func(*Limits) Limit
	set  func(*Resources, uint64)
}

var limitFields = []limitField{
	{"open_files", kindCount, 1, func(l *Limits) Limit { return l.OpenFiles }, func(r *Resources, v uint64) { r.OpenFiles = v }},
	{"open_files_hard", kindCount, 1, func(l *Limits) Limit { return l.OpenFilesHard }, func(r *Resources, v uint64) { r.OpenFilesHard = v }},
	{"processes", kindCount, 1, func(l *Limits) Limit { return l.Processes }, func(r *Resources, v uint64) { r.Processes = v }},
	{"core", kindSize, 0, func(l *Limits) Limit { return l.Core }, func(r *Resources, v uint64) { r.Core = v }},
	{"memory", kindSize, 1 << 20, func(l *Limits) Limit { return l.Memory }, func(r *Resources, v uint64) { r.Memory = v }},
	{"cpu", kindPercent, 1, func(l *Limits) Limit { return l.CPU }, func(r *Resources, v uint64) { r.CPU = v }},
	{"tasks", kindCount, 1, func(l *Limits) Limit { return l.Tasks }, func(r *Resources, v uint64) { r.Tasks = v }},
}

// AppResources resolves app's limits: DefaultResources, then the [limits]
// table, then [app.NAME.limits]. Values Validate would refuse are skipped
// (a validated Config has none). The hard open-files limit is raised to
// the soft one if it is lower.
func (c *Config) AppResources(app string) Resources {
	r := DefaultResources
	a := c.Apps[app].Limits
	for _, f := range limitFields {
		for _, l := range []Limit{f.get(&c.Limits), f.get(&a)} {
			if v, err := l.parse(f.kind); l.IsSet() && err == nil {
				f.set(&r, v)
			}
		}
	}
	r.OpenFilesHard = max(r.OpenFilesHard, r.OpenFiles)
	return r
}

// resourceLimits checks the [limits] table and every [app.NAME.limits].
func (v *checker) resourceLimits() {
	v.limitTable(toml.Key{"limits"}, v.c.Limits)
	for _, name := range sortedKeys(v.c.Apps) {
		v.limitTable(toml.Key{"app", name, "limits"}, v.c.Apps[name].Limits)
	}
}

// limitTable checks one table of limits.
func (v *checker) limitTable(k toml.Key, l Limits) {
	for _, f := range limitFields {
		lim := f.get(&l)
		if !lim.IsSet() {
			continue
		}
		n, err := lim.parse(f.kind)
		switch {
		case err != nil:
			v.addf(sub(k, f.key), "%v", err)
		case n < f.min:
			v.addf(sub(k, f.key), "must be at least %s", formatLimit(f.min, f.kind))
		}
	}
	soft, errS := l.OpenFiles.parse(kindCount)
	hard, errH := l.OpenFilesHard.parse(kindCount)
	if l.OpenFiles.IsSet() && l.OpenFilesHard.IsSet() && errS == nil && errH == nil && hard < soft {
		v.addf(sub(k, "open_files_hard"), "is below open_files (%d): the hard limit bounds the soft one", soft)
	}
}

// sizeRE is a size with a unit: "256M", "1.5G", "512KiB", "100B".
var sizeRE = regexp.MustCompile(`(?i)^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$`)

// parse reads l as kind: a number, or Unlimited for "unlimited".
func (l Limit) parse(kind limitKind) (uint64, error) {
	switch v := l.v.(type) {
	case int64:
		return parseLimitInt(v, kind)
	case string:
		return parseLimitString(v, kind)
	case nil:
		return 0, fmt.Errorf("not set")
	}
	return 0, fmt.Errorf("must be %s, not %v", kindHelp(kind), l.v)
}

func parseLimitInt(v int64, kind limitKind) (uint64, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("must not be negative: %s", kindHelp(kind))
	case kind == kindSize && v != 0:
		return 0, fmt.Errorf("%d has no unit: write \"%dM\" for %d MiB, or \"%dB\" for bytes", v, v, v, v)
	case kind == kindPercent:
		return 0, fmt.Errorf("%d has no unit: write \"%d%%\" (100%% is one CPU)", v, v*100)
	}
	return uint64(v), nil
}

func parseLimitString(s string, kind limitKind) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "unlimited" {
		return Unlimited, nil
	}
	switch kind {
	case kindSize:
		if n, ok := ParseSize(t); ok {
			return n, nil
		}
	case kindPercent:
		if p, ok := strings.CutSuffix(t, "%"); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 32); err == nil {
				return n, nil
			}
		}
	case kindCount:
		if n, err := strconv.ParseUint(t, 10, 63); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("invalid value %q: must be %s", s, kindHelp(kind))
}

func kindHelp(kind limitKind) string {
	switch kind {
	case kindSize:
		return `a size such as "256M", "2G", "512K", "0", or "unlimited"`
	case kindPercent:
		return `a share of one CPU such as "50%" or "200%", or "unlimited"`
	}
	return `a whole number, or "unlimited"`
}

// formatLimit writes a limit for a message.
func formatLimit(n uint64, kind limitKind) string {
	switch {
	case n == Unlimited:
		return "unlimited"
	case kind == kindSize:
		return FormatSize(n)
	case kind == kindPercent:
		return fmt.Sprintf("%d%%", n)
	}
	return strconv.FormatUint(n, 10)
}

// ParseSize reads a size: a number and a binary unit, B, K, M, G or T
// (1024-based; "K", "KB" and "KiB" alike), "0" on its own. It reports
// false for anything else, a bare number included.
func ParseSize(s string) (uint64, bool) {
	if s == "0" {
		return 0, true
	}
	m := sizeRE.FindStringSubmatch(s)
	if m == nil || (m[2] == "" && m[3] == "") {
		return 0, false
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[strings.ToUpper(m[2])]
	v := f * float64(uint64(1)<<shift)
	if v >= float64(math.MaxUint64/2) {
		return 0, false
	}
	return uint64(v), true
}

// FormatSize writes n bytes in the largest binary unit that divides it
// evenly, like "256 MiB"; "unlimited" for Unlimited.
func FormatSize(n uint64) string {
	if n == Unlimited {
		return "unlimited"
	}
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
