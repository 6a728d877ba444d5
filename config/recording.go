package config

import (
	"time"

	"github.com/BurntSushi/toml"
)

// Values of App.Record and Recording.Default.
const (
	RecordOff    = "off"    // no recording
	RecordOutput = "output" // what the app writes to its terminal
	RecordInput  = "input"  // the output and what the user types
)

// Recording defaults.
const (
	defaultRecordDir       = "recordings"
	defaultRecordMaxSize   = 100 << 20
	defaultRecordRetention = 30 * 24 * time.Hour
)

// Recording configures session recording on every app server, and what
// the user is told when an administrator watches.
type Recording struct {
	// Default is the record mode of apps that set none: RecordOff,
	// RecordOutput or RecordInput. RecordOff if empty.
	Default string `toml:"default"`
	// Dir is where each appd writes its recordings, one asciicast v2 file
	// per session; relative to StateDir. "recordings" if empty.
	Dir string `toml:"dir"`
	// MaxSize is the most bytes one recording may hold; the recording
	// stops there with a final marker. 100 MiB if zero.
	MaxSize int64 `toml:"max_size"`
	// Retention is how long a recording is kept after it was last
	// written; older files are deleted at start and every hour. 720h (30
	// days) if zero.
	Retention time.Duration `toml:"retention"`
	// NotifyWatch tells the user, with one line on their terminal, that
	// an administrator has started watching the session. True if unset.
	NotifyWatch *bool `toml:"notify_watch"`
}

// RecordDir is the directory appd writes recordings to.
func (c *Config) RecordDir() string {
	if c.Recording.Dir == "" {
		return c.Resolve(defaultRecordDir)
	}
	return c.Resolve(c.Recording.Dir)
}

// RecordMaxSize is Recording.MaxSize, or its default.
func (r Recording) RecordMaxSize() int64 {
	if r.MaxSize <= 0 {
		return defaultRecordMaxSize
	}
	return r.MaxSize
}

// RecordRetention is Recording.Retention, or its default.
func (r Recording) RecordRetention() time.Duration {
	if r.Retention <= 0 {
		return defaultRecordRetention
	}
	return r.Retention
}

// Notify reports whether a watched user is told.
func (r Recording) Notify() bool { return r.NotifyWatch == nil || *r.NotifyWatch }

// RecordMode is the record mode of app name: its own, else the default,
// else RecordOff.
func (c *Config) RecordMode(name string) string {
	if m := c.Apps[name].Record; m != "" {
		return m
	}
	if c.Recording.Default != "" {
		return c.Recording.Default
	}
	return RecordOff
}

// recording checks [recording] and every app's record.
func (v *checker) recording() {
	r := v.c.Recording
	v.recordMode(toml.Key{"recording", "default"}, r.Default)
	if r.MaxSize < 0 {
		v.addf(toml.Key{"recording", "max_size"}, "must not be negative: bytes per recording, like 104857600")
	}
	if r.Retention < 0 {
		v.addf(toml.Key{"recording", "retention"}, `must not be negative: "720h" keeps recordings 30 days`)
	}
	for _, name := range sortedKeys(v.c.Apps) {
		v.recordMode(toml.Key{"app", name, "record"}, v.c.Apps[name].Record)
	}
}

func (v *checker) recordMode(k toml.Key, mode string) {
	switch mode {
	case "", RecordOff, RecordOutput, RecordInput:
	default:
		v.addf(k, `must be "off", "output" or "input" (output and input), not %q`, mode)
	}
}
