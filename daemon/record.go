package daemon

import (
	"switchyard/appd"
	"switchyard/config"
)

// recordingOf is appd's copy of [recording].
func recordingOf(cfg *config.Config) appd.Recording {
	r := cfg.Recording
	return appd.Recording{Dir: cfg.RecordDir(), MaxSize: r.RecordMaxSize(), Retention: r.RecordRetention(),
		NotifyWatch: r.Notify()}
}

// recordMode is app name's record mode as appd takes it.
func recordMode(cfg *config.Config, name string) string {
	switch cfg.RecordMode(name) {
	case config.RecordOutput:
		return appd.RecordOutput
	case config.RecordInput:
		return appd.RecordInput
	}
	return appd.RecordOff
}
