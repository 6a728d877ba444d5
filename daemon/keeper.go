package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"switchyard/appd"
)

// selfExe is this process's own binary, even if the file was replaced or
// removed since it started.
const selfExe = "/proc/self/exe"

var (
	keeperEnabled atomic.Bool // AppdKeeper was called: this binary can be a keeper
	keeperOnce    sync.Once
	keeper        *appd.Keeper
	keeperErr     error
)

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
func processKeeper(log *slog.Logger) (*appd.Keeper, error) {
	if !keeperEnabled.Load() {
		return nil, nil
	}
	keeperOnce.Do(func() {
		keeper, keeperErr = appd.StartKeeper(selfExe, log)
		if keeperErr == nil {
			log.Info("keeper started", "keeper_pid", keeper.PID())
		}
	})
	return keeper, keeperErr
}
