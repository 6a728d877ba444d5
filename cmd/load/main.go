// Command load measures SSH sessions against a Switchyard gateway or any
// SSH server on loopback: session setup, keystroke echo, bulk throughput,
// many held sessions with the servers' memory, and the stock ssh client.
// See package loadgen and bench/sidebyside.sh.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"switchyard/daemon"
	"switchyard/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := loadgen.Run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, loadgen.ErrVersion):
		fmt.Print(daemon.VersionText("load"))
	case errors.Is(err, loadgen.ErrUsage):
		fmt.Fprintf(os.Stderr, "load: %v\n%s\n", err, loadgen.Usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(1)
	}
}
