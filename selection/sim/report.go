package sim

import (
	"fmt"
	"strings"
)

var provision = map[string]string{ProvisionObserved: "observed", ProvisionMix: "expected"}

// Markdown is the comparison as a Markdown table, one row per policy, after
// a line describing the workload.
func (s Summary) Markdown() string {
	var b strings.Builder
	c := s.Config
	switch c.Workload {
	case WorkloadSkewed:
		fmt.Fprintf(&b, "Workload: skewed, seed %d, %d servers (%d session slots), %d users, %d sessions over %v "+
			"(measured after %v), offered load %.0f%%, regions not sized to their demand, reports every %v.\n\n",
			c.Seed, s.Servers, s.Capacity, s.Users, s.Sessions, c.Duration, c.Warmup, 100*c.Utilisation, c.Report)
	default:
		fmt.Fprintf(&b, "Workload: planned, seed %d, %d servers (%d session slots), %d users, %d sessions over %v "+
			"(measured after %v), offered load %.0f%%, regions provisioned to the %s demand, reports every %v.\n\n",
			c.Seed, s.Servers, s.Capacity, s.Users, s.Sessions, c.Duration, c.Warmup, 100*c.Utilisation, provision[c.Provision], c.Report)
	}
	b.WriteString("| Policy | Imbalance (peak/mean) | Mean utilisation | Servers ≥95% full | CPU-overloaded servers | Local | Affinity | Rejected: no room | Rejected: no server |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range s.Results {
		fmt.Fprintf(&b, "| %s | %.3f | %.1f%% | %.2f%% | %.2f%% | %.1f%% | %.1f%% | %d (%.2f%%) | %d |\n",
			r.Policy, r.Imbalance, 100*r.MeanUtil, 100*r.Full, 100*r.CPUOver, 100*r.Local, 100*r.Affinity,
			r.NoRoom, 100*float64(r.NoRoom)/float64(max(1, r.Requests)), r.NoServer)
	}
	return b.String()
}
