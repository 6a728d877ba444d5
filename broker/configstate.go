package broker

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"switchyard/safelog"
)

// SetConfigState records the config this broker runs: its hash
// (config.Config.Hash) and the keys a refused reload changed that only a
// restart applies. Status shows both, and flags every node that reports
// another hash.
func (b *Broker) SetConfigState(hash string, restartNeeded []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.configHash, b.restartNeeded = hash, slices.Clone(restartNeeded)
}

// problems lists what makes st degraded: a server or gateway down, a
// node on another config than the answering broker, a restart needed.
// Empty when the cluster is whole.
func problems(st *Status) []string {
	out := []string{}
	if len(st.RestartNeeded) > 0 {
		out = append(out, "broker: restart needed: "+strings.Join(st.RestartNeeded, ", "))
	}
	node := func(kind, name, health string, hash string, restart []string) {
		name = safelog.Text(name, safelog.Max)
		if health != "up" {
			out = append(out, fmt.Sprintf("%s %s %s", kind, name, strings.ToLower(health)))
		}
		if mismatch(st.ConfigHash, hash) {
			out = append(out, fmt.Sprintf("%s %s runs config %s, the broker %s", kind, name, safelog.Text(hash, 64), st.ConfigHash))
		}
		if len(restart) > 0 {
			out = append(out, fmt.Sprintf("%s %s: restart needed: %s", kind, name, safelog.Text(strings.Join(restart, ", "), 512)))
		}
	}
	for _, g := range st.Gateways {
		node("gateway", g.Name, health(g.Healthy), g.ConfigHash, g.RestartNeeded)
	}
	for _, s := range st.Servers {
		node("server", s.Name, serverHealth(s), s.ConfigHash, s.RestartNeeded)
	}
	return out
}

// mismatch reports whether a node's reported config hash differs from
// the broker's; a node that reported none (not yet, or an older version)
// is not counted.
func mismatch(broker, node string) bool {
	return broker != "" && node != "" && node != broker
}

// configCell is a node's CONFIG cell: its hash, flagged when it differs
// from the broker's or a restart is needed.
func configCell(broker, hash string, restart []string) string {
	s := cell(safelog.Text(hash, 64))
	if mismatch(broker, hash) {
		s += " MISMATCH"
	}
	if len(restart) > 0 {
		s += " (restart needed: " + safelog.Text(strings.Join(restart, ", "), 512) + ")"
	}
	return s
}

// writeProblems prints the answering broker's config and, when the
// cluster is degraded, each problem.
func writeProblems(w io.Writer, st Status) {
	fmt.Fprintf(w, "CONFIG %s", cell(st.ConfigHash))
	if len(st.RestartNeeded) > 0 {
		fmt.Fprintf(w, " (restart needed: %s)", safelog.Text(strings.Join(st.RestartNeeded, ", "), 512))
	}
	fmt.Fprintln(w)
	if len(st.Problems) == 0 {
		fmt.Fprintln(w, "cluster OK")
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "DEGRADED: %d problem(s)\n", len(st.Problems))
	for _, p := range st.Problems {
		fmt.Fprintf(w, "  %s\n", safelog.Text(p, maxReason))
	}
	fmt.Fprintln(w)
}
