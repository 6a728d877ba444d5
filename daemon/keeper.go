package daemon

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"switchyard/appd"
	"switchyard/config"
)

// selfExe is this process's own binary, even if the file was replaced or
// removed since it started.
const selfExe = "/proc/self/exe"

// keeperEnabled is set once AppdKeeper was called: this binary can be a
// keeper.
var keeperEnabled atomic.Bool

// AppdKeeper must be called first thing in main by every binary that runs
// Appd. Run with appd.KeeperArg as its first argument, the process is
// appd's keeper (see appd.StartKeeper): it waits for its appd to go away,
// kills the apps appd left, and exits; AppdKeeper then never returns.
// Otherwise it returns at once, and the first Appd of the process starts a
// keeper from this very binary, which every Appd of the process shares.
//
// A program that runs Appd without calling AppdKeeper (tests) gets no
// keeper: its apps' leaders still die with it (Pdeathsig), their process
// groups do not.
func AppdKeeper() {
	AppdExecShim()
	if len(os.Args) < 2 || os.Args[1] != appd.KeeperArg {
		keeperEnabled.Store(true)
		return
	}
	n, err := appd.RunKeeper()
	if n > 0 {
		fmt.Fprintf(os.Stderr, "switchyard keeper: appd is gone; killed what was left of %d app(s)\n", n)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchyard keeper: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// processKeeper returns the process's keeper, starting it on first use, or
// nil if AppdKeeper was not called.
// It connects to the keeper of node's earlier appd, if one still holds
// its sessions, and returns them too.
func processKeeper(log *slog.Logger, cfg *config.Config, node string) (*appd.Keeper, []appd.HeldApp, error) {
	if !keeperEnabled.Load() {
		return nil, nil, nil
	}
	hold := cmp.Or(cfg.Servers[node].Handover, appd.DefaultKeeperHold)
	k, held, err := appd.ConnectKeeper(appd.KeeperPath(cfg.Resolve(""), node), selfExe, hold, log)
	if err != nil {
		return nil, nil, err
	}
	log.Info("keeper connected", "keeper_pid", k.PID(), "keeper_protocol", k.Version(), "held_sessions", len(held), "hold", hold)
	return k, held, nil
}

var (
	shimEnabled atomic.Bool // AppdExecShim was called: this binary can be the exec shim
	shimOnce    sync.Once
	shim        *appd.Shim
	shimErr     error
)

// AppdExecShim must be called first thing in main by a binary that runs
// Appd and wants each app's limits to hold before the app runs (AppdKeeper
// calls it). Run with appd.ExecArg as its first argument, the process is
// the exec shim (see appd.RunExec) and AppdExecShim never returns;
// otherwise it returns at once, and Appd starts apps through this binary.
// Without it, an app's limits are set just after it started.
func AppdExecShim() {
	if len(os.Args) > 1 && os.Args[1] == appd.ExecArg {
		appd.RunExec()
	}
	shimEnabled.Store(true)
}

// processShim returns the process's exec shim, opening it on first use,
// or nil if AppdExecShim was not called.
func processShim() (*appd.Shim, error) {
	if !shimEnabled.Load() {
		return nil, nil
	}
	shimOnce.Do(func() { shim, shimErr = appd.OpenShim(selfExe) })
	return shim, shimErr
}

var (
	cgroupsOnce sync.Once
	cgroups     *appd.Cgroups
)

// processCgroups finds, once per process, where the sessions' control
// groups go (see appd.DiscoverCgroups); nil, logged, if nowhere.
func processCgroups(log *slog.Logger) *appd.Cgroups {
	cgroupsOnce.Do(func() {
		var err error
		cgroups, err = appd.DiscoverCgroups()
		if err != nil {
			log.Warn("session memory, cpu and tasks limits will not be enforced", "err", err)
			return
		}
		log.Info("session control groups", "where", cgroups.String())
	})
	return cgroups
}
