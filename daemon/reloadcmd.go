package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ErrReloadRefused is the reload command's answer when the node refused
// the file: it keeps its running config, and the command exits 1.
var ErrReloadRefused = errors.New("reload refused")

// reloadCommand runs `BIN reload -config FILE [-node NAME]`, systemd's
// ExecReload: it sends the running node SIGHUP and waits for its answer,
// through the node's reload state file, so that a refused reload fails
// the command (and `systemctl reload`) with the reason. bin is the
// binary's name ("broker", "slave", "appd"), defNode the default -node.
func reloadCommand(ctx context.Context, bin, defNode string, args []string, env Env) error {
	var c common
	fs := flag.NewFlagSet(bin+" reload", flag.ContinueOnError)
	c.register(fs)
	node := fs.String("node", defNode, "the node `name` to reload")
	pid := fs.Int("pid", 0, "the node's process id (systemd's $MAINPID); checked against the one it recorded")
	wait := fs.Duration("timeout", 30*time.Second, "how long to wait for the node's answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *node == "" {
		return fmt.Errorf("%w: %s reload needs -node NAME", ErrUsage, bin)
	}
	cfg, err := c.load()
	if err != nil {
		// The node would refuse it as well; it is not asked.
		return fmt.Errorf("%w: %s is invalid; the running config is kept:\n%w", ErrReloadRefused, c.configPath, err)
	}
	before, err := readReloadState(reloadFile(cfg, *node))
	if err != nil {
		return fmt.Errorf("%s reload: is node %s running with state dir %s? %w", bin, *node, cfg.StateDir, err)
	}
	if err := checkReloadPID(before.PID, *pid, bin); err != nil {
		return err
	}
	if err := syscall.Kill(before.PID, syscall.SIGHUP); err != nil {
		return fmt.Errorf("%s reload: signal pid %d: %w", bin, before.PID, err)
	}
	after, err := awaitReload(ctx, reloadFile(cfg, *node), before, *wait)
	if err != nil {
		return fmt.Errorf("%s reload: node %s (pid %d): %w", bin, *node, before.PID, err)
	}
	if !after.OK {
		return fmt.Errorf("%w by node %s; it keeps running config %s: %s", ErrReloadRefused, *node, after.Hash, reloadText(after))
	}
	fmt.Fprintf(env.stdout(), "%s: reloaded; runs config %s\n", *node, after.Hash)
	return nil
}

// checkReloadPID makes sure the recorded pid is the node's process, so
// that a stale state file never has another process signalled: it must
// be want (-pid) when given, else a process of binary bin.
func checkReloadPID(recorded, want int, bin string) error {
	if want != 0 {
		if recorded != want {
			return fmt.Errorf("%s reload: the node recorded pid %d, not %d: is it running?", bin, recorded, want)
		}
		return nil
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", recorded))
	if err != nil {
		return fmt.Errorf("%s reload: the node recorded pid %d, which is not running: %w", bin, recorded, err)
	}
	if base := strings.TrimSuffix(filepath.Base(exe), " (deleted)"); base != bin {
		return fmt.Errorf("%s reload: the node recorded pid %d, which now runs %s, not %s", bin, recorded, base, bin)
	}
	return nil
}

// awaitReload polls the state file until it records a reload after
// before (or a restarted node), for at most wait.
func awaitReload(ctx context.Context, path string, before reloadState, wait time.Duration) (reloadState, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if st, err := readReloadState(path); err == nil && (st.PID != before.PID || st.Seq > before.Seq) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return reloadState{}, fmt.Errorf("no answer within %s", wait)
		case <-t.C:
		}
	}
}
