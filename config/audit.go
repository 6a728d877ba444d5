package config

import (
	"slices"

	"github.com/BurntSushi/toml"
)

// Audit sinks ([audit] sink).
const (
	AuditFile   = "file"   // state_dir/audit-NODE.log, rotated by size (the default)
	AuditStdout = "stdout" // one JSON line per event on stdout, for journald
	AuditOff    = "off"    // no audit trail
)

// Defaults of [audit].
const (
	defaultAuditMaxSize = 64 // MiB
	defaultAuditKeep    = 5
)

// Audit is the [audit] table: where each node writes its audit trail.
type Audit struct {
	Sink    string `toml:"sink"`     // AuditFile, AuditStdout or AuditOff; AuditFile if empty
	MaxSize int    `toml:"max_size"` // MiB of the current file before it is rotated; 64 if zero
	Keep    int    `toml:"keep"`     // rotated files kept; 5 if zero
}

// SinkOrDefault is Sink, or AuditFile when empty.
func (a Audit) SinkOrDefault() string {
	if a.Sink == "" {
		return AuditFile
	}
	return a.Sink
}

// MaxBytes is the rotation size in bytes.
func (a Audit) MaxBytes() int64 {
	if a.MaxSize <= 0 {
		return defaultAuditMaxSize << 20
	}
	return int64(a.MaxSize) << 20
}

// KeepOrDefault is Keep, or 5 when zero.
func (a Audit) KeepOrDefault() int {
	if a.Keep <= 0 {
		return defaultAuditKeep
	}
	return a.Keep
}

// audit checks the [audit] table.
func (v *checker) audit() {
	a := v.c.Audit
	if a.Sink != "" && !slices.Contains([]string{AuditFile, AuditStdout, AuditOff}, a.Sink) {
		v.addf(toml.Key{"audit", "sink"}, "%q: use %q, %q or %q", a.Sink, AuditFile, AuditStdout, AuditOff)
	}
	if a.MaxSize < 0 {
		v.addf(toml.Key{"audit", "max_size"}, "must be positive (MiB)")
	}
	if a.Keep < 0 {
		v.addf(toml.Key{"audit", "keep"}, "must be positive")
	}
}
