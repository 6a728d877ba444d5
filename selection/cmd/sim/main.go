// Command sim compares switchyard's placement policy with round-robin,
// random, least-connections and power-of-two-choices on a synthetic
// workload, and prints a Markdown table. See package selection/sim for the
// workload and the metrics.
//
//	go run ./selection/cmd/sim [-workload planned|skewed] [-seed 1] [-servers 60] [-sessions 100000] [-duration 4h] [-util 0.7] [-provision observed|mix]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"switchyard/selection/sim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	var c sim.Config
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the workload and the random policies")
	fs.IntVar(&c.Servers, "servers", 60, "app servers")
	fs.IntVar(&c.Sessions, "sessions", 100000, "sessions requested over the duration")
	fs.DurationVar(&c.Duration, "duration", sim.DefaultDuration, "simulated time")
	fs.Float64Var(&c.Utilisation, "util", 0.7, "offered load as a share of total capacity")
	fs.StringVar(&c.Provision, "provision", sim.ProvisionObserved,
		"size regions to the observed demand (observed) or to the expected client mix (mix); planned workload only")
	fs.StringVar(&c.Workload, "workload", sim.WorkloadPlanned,
		"the workload family: planned (regions sized to demand) or skewed (see package selection/sim)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := sim.Run(c)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, s.Markdown())
	return err
}
