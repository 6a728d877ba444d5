package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"switchyard/config"
)

// RunFunc is the shape of Broker, Slave and Appd.
type RunFunc func(ctx context.Context, args []string, env Env) error

// Main runs a daemon as a process: SIGINT and SIGTERM stop it (appd hands
// its sessions over on SIGTERM, see Env.Stop), SIGHUP reloads its config,
// SIGUSR2 upgrades a gateway in place (see Env.Upgrade; other daemons
// keep its default action), and the error becomes the exit status (see
// ExitCode).
func Main(name string, run RunFunc) {
	ctx, stop := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var interrupted chan os.Signal // appd: which signal stopped it, known before ctx ends
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	env := Env{Reload: hup}
	switch name {
	case "slave":
		usr2 := make(chan os.Signal, 1)
		signal.Notify(usr2, syscall.SIGUSR2)
		env.Upgrade, env.Exe = usr2, executable()
	case "appd":
		interrupted = make(chan os.Signal, 1)
		env.Stop = interrupted
	}
	go func() {
		if sig := <-sigs; sig == os.Interrupt && interrupted != nil {
			interrupted <- sig
		}
		stop()
	}()
	err := run(ctx, os.Args[1:], env)
	stop()
	os.Exit(Exit(name, err, os.Stdout, os.Stderr))
}

// Exit is ExitCode, except that help (-h, --help) and -version, which are
// not failures, go to stdout with status 0.
func Exit(name string, err error, stdout, stderr io.Writer) int {
	var h *helpRequest
	switch {
	case errors.As(err, &h):
		io.WriteString(stdout, help(h.fs))
		return 0
	case errors.As(err, new(versionRequest)):
		io.WriteString(stdout, VersionText(name))
		return 0
	}
	return ExitCode(name, err, stderr)
}

// ExitCode prints err for people and returns the process exit status:
// 0 success, 1 failure (a bad config prints every problem as
// file:line:col: what), 2 a command-line mistake, 3 `broker status` of a
// degraded cluster (ErrDegraded).
func ExitCode(name string, err error, w io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(w, "%s: %v\n", name, err)
		fmt.Fprintln(w, usageLine(name))
		return 2
	case isConfigError(err):
		// Every problem on its own line, file:line:col first, as
		// compilers print them, so that each line reads alone.
		fmt.Fprintln(w, err)
		return 1
	case errors.Is(err, ErrDegraded):
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return 3
	default:
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return 1
	}
}

// isConfigError reports whether err is a config file's list of problems
// itself, not wrapped in what was being done with the file.
func isConfigError(err error) bool {
	_, ok := err.(*config.Error)
	return ok
}
