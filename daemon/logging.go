package daemon

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/config"
)

// logAttr is the loggers' ReplaceAttr: a duration is written as Go
// spells it ("1.5s"), in JSON as in text, not as nanoseconds.
func logAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// lifecycle logs a daemon's start, with its version, build and config,
// and its shutdown: "shutting down" when ctx ends (SIGINT, SIGTERM),
// "stopped" when the returned function is called, as the daemon returns.
func lifecycle(ctx context.Context, log *slog.Logger, cfg *config.Config) func() {
	attrs := []any{"version", Version, "go", runtime.Version(), "config", cfg.Path, "config_hash", cfg.Hash}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				attrs = append(attrs, "revision", kv.Value)
			}
		}
	}
	log.Info("starting", attrs...)
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { log.Info("shutting down") })
	return func() {
		stop()
		log.Info("stopped", "uptime", time.Since(start).Round(time.Millisecond))
	}
}

// ensureKey is config.EnsureKey, logging a key it had to create (a new
// node or host key that other parties must learn).
func ensureKey(log *slog.Logger, path string) (ssh.Signer, error) {
	signer, created, err := config.EnsureKeyCreated(path)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("key generated", "path", path, "fingerprint", ssh.FingerprintSHA256(signer.PublicKey()),
			"public_key", path+".pub")
	}
	return signer, nil
}
