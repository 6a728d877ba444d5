package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"switchyard/config"
	"switchyard/safelog"
)

// nodeConfig is what a node says of the config it runs: its hash, the
// keys a refused reload changed that only a restart applies, and how its
// last reload went. Reports, status, metrics and the reload command
// (through the state file) read it.
type nodeConfig struct {
	kind, name string
	log        *slog.Logger
	file       string // the reload state file, STATE/reload-NAME.json
	// changed, if set, hears the state after each reload, applied or not.
	changed func(reloadState)

	mu  sync.Mutex
	cur *config.Config
	st  reloadState
}

// reloadState is a node's reload state, as the state file holds it.
type reloadState struct {
	PID  int    `json:"pid"`
	Seq  int    `json:"seq"`  // reloads tried since start
	Hash string `json:"hash"` // config running
	// OK says whether the last reload applied (true at start); Error is
	// why it was refused.
	OK            bool      `json:"ok"`
	Error         string    `json:"error,omitempty"`
	RestartNeeded []string  `json:"restart_needed,omitempty"`
	Loaded        time.Time `json:"loaded"` // when the running config was loaded
}

// reloadFile is the path of node's reload state file in cfg's state dir.
func reloadFile(cfg *config.Config, node string) string {
	return cfg.Resolve("reload-" + node + ".json")
}

// newNodeConfig starts the record of node's config with the one it
// started on, and writes the state file.
func newNodeConfig(kind, node string, cfg *config.Config, log *slog.Logger) *nodeConfig {
	n := &nodeConfig{kind: kind, name: node, log: log, file: reloadFile(cfg, node), cur: cfg,
		st: reloadState{PID: os.Getpid(), Hash: cfg.Hash, OK: true, Loaded: time.Now()}}
	n.save()
	return n
}

// state returns a copy of the reload state.
func (n *nodeConfig) state() reloadState {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.st
	st.RestartNeeded = slices.Clone(st.RestartNeeded)
	return st
}

// reload loads the file again and applies it whole, or refuses it whole:
// an invalid file, one that changes a key only a restart applies, or one
// apply refuses leaves the running config as it is, and the log says
// "config reload refused" and nothing else.
func (n *nodeConfig) reload(c *common, apply func(*config.Config) error) {
	n.tryReload(c, apply)
	if n.changed != nil {
		n.changed(n.state())
	}
}

func (n *nodeConfig) tryReload(c *common, apply func(*config.Config) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.st.Seq++
	next, err := c.load()
	var restart []string
	if err == nil {
		if restart = restartNeeded(n.kind, n.name, n.cur, next); len(restart) > 0 {
			err = fmt.Errorf("restart needed: %s", strings.Join(restart, ", "))
		}
	}
	if err == nil {
		err = apply(next)
	}
	if err != nil {
		n.st.OK, n.st.Error, n.st.RestartNeeded = false, err.Error(), restart
		if len(restart) > 0 {
			n.log.Error("config reload refused; keeping the running config until a restart", "restart_needed", restart,
				"file", c.configPath, "running", n.st.Hash, "file_hash", next.Hash)
		} else {
			n.log.Error("config reload refused; keeping the running config", "err", err.Error())
		}
		n.save()
		return
	}
	n.cur = next
	n.st.OK, n.st.Error, n.st.RestartNeeded = true, "", nil
	n.st.Hash, n.st.Loaded = next.Hash, time.Now()
	n.log.Info("config reloaded", "file", c.configPath, "hash", next.Hash)
	n.save()
}

// save writes the state file (atomically); a failure is logged, not fatal.
// Callers hold n.mu.
func (n *nodeConfig) save() {
	b, err := json.Marshal(n.st)
	if err == nil {
		tmp := n.file + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, n.file)
		}
	}
	if err != nil {
		n.log.Warn("reload state not written; `reload` cannot wait for this node", "file", n.file, "err", err.Error())
	}
}

// reloadLoop reloads the config on each signal from env.Reload (see
// nodeConfig.reload).
func reloadLoop(ctx context.Context, env Env, c *common, n *nodeConfig, apply func(*config.Config) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-env.Reload:
			if !ok {
				return
			}
			n.reload(c, apply)
		}
	}
}

// readReloadState reads a node's reload state file.
func readReloadState(path string) (reloadState, error) {
	var st reloadState
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("read reload state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read reload state %s: %w", path, err)
	}
	return st, nil
}

// reloadText is a refused reload's reason for a terminal.
func reloadText(st reloadState) string { return safelog.Text(st.Error, 2048) }
