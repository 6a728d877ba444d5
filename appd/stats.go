package appd

import (
	"maps"
	"sync"

	"switchyard/control"
)

// Stats is a snapshot of a Manager's counters, for appd's metrics.
type Stats struct {
	Attached, Detached int // running sessions by state
	PTYs               int // pseudo-terminals open: one per PTY session
	// SpawnFailures counts spawns and pre-launches refused or failed
	// since start, by the code the gateway got (control.Code*).
	SpawnFailures map[string]uint64
}

// Stats returns the manager's counters now.
func (m *Manager) Stats() Stats {
	st := Stats{SpawnFailures: m.failures.snapshot()}
	for _, s := range m.snapshot() {
		if s.term != nil {
			st.PTYs++
		}
		if s.view().State == control.StateDetached {
			st.Detached++
		} else {
			st.Attached++
		}
	}
	return st
}

// codeCounts counts refused spawns by code.
type codeCounts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *codeCounts) add(code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	c.m[code]++
}

// snapshot returns every code's count, spawn_failed included.
func (c *codeCounts) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]uint64{control.CodeSpawnFailed: 0}
	maps.Copy(out, c.m)
	return out
}
