package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"switchyard/audit"
	"switchyard/control"
	"switchyard/safelog"
)

// auditCallTimeout bounds one node's answer to an audit read.
const auditCallTimeout = 10 * time.Second

// AuditView is the answer to GET /audit: the matching events of every
// node that answered, in time order, and a note for each node that did
// not (or cannot read its events back).
type AuditView struct {
	Events []audit.Event `json:"events"`
	Notes  []string      `json:"notes,omitempty"`
}

// GatherAudit reads the events that pass q, over their control links,
// from every server and gateway linked to this broker, then from its own
// audit file (ReadAudit), and merges them in time order. For a session,
// the broker's placements on the connections the nodes' events name
// ("conn") are included.
func (b *Broker) GatherAudit(ctx context.Context, q control.AuditQuery) AuditView {
	type answer struct {
		node string
		evs  control.AuditEvents
		err  error
	}
	peers := b.auditPeers()
	answers := make([]answer, len(peers)+1)
	var wg sync.WaitGroup
	i := 0
	for node, p := range peers {
		i++
		i := i
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, auditCallTimeout)
			defer cancel()
			a := answer{node: node}
			if err := p.Call(cctx, control.MethodAuditRead, q, &a.evs); err != nil {
				a.err = fmt.Errorf("call %s on %s: %w", control.MethodAuditRead, node, err)
			}
			answers[i] = a
		})
	}
	wg.Wait()
	lists := make([][]audit.Event, len(answers))
	for i, a := range answers {
		lists[i] = parseEvents(a.evs.Events)
		for _, ev := range lists[i] {
			// The gateways' connections of a session: the broker's
			// placements for them belong to the session's trail.
			if c := audit.ConnOf(ev); q.Session != "" && c != "" && !slices.Contains(q.Conns, c) {
				q.Conns = append(q.Conns, c)
			}
		}
	}
	answers[0].node = b.name()
	if b.ReadAudit != nil {
		answers[0].evs, answers[0].err = b.ReadAudit(q)
	} else {
		answers[0].evs.Note = "no audit log"
	}
	lists[0] = parseEvents(answers[0].evs.Events)
	var v AuditView
	for i, a := range answers {
		switch {
		case a.err != nil:
			v.Notes = append(v.Notes, safelog.Text(a.node, 0)+": "+safelog.Text(a.err.Error(), maxReason))
			lists[i] = nil
		case a.evs.Note != "":
			v.Notes = append(v.Notes, safelog.Text(a.node, 0)+": "+safelog.Text(a.evs.Note, maxReason))
		}
	}
	sort.Strings(v.Notes)
	v.Events = audit.Merge(lists...)
	if v.Events == nil {
		v.Events = []audit.Event{}
	}
	return v
}

// ownAudit reads this broker's own events that pass q.
func (b *Broker) ownAudit(q control.AuditQuery) AuditView {
	v := AuditView{Events: []audit.Event{}}
	if b.ReadAudit == nil {
		v.Notes = []string{safelog.Text(b.name(), 0) + ": no audit log"}
		return v
	}
	evs, err := b.ReadAudit(q)
	switch {
	case err != nil:
		v.Notes = []string{safelog.Text(b.name(), 0) + ": " + safelog.Text(err.Error(), maxReason)}
	case evs.Note != "":
		v.Notes = []string{safelog.Text(b.name(), 0) + ": " + safelog.Text(evs.Note, maxReason)}
	}
	v.Events = append(v.Events, parseEvents(evs.Events)...)
	return v
}

// parseEvents decodes a node's audit lines, skipping any that do not
// parse, and orders them by time.
func parseEvents(raw []json.RawMessage) []audit.Event {
	out := make([]audit.Event, 0, len(raw))
	for _, r := range raw {
		if ev, ok := audit.Parse(r); ok {
			out = append(out, ev)
		}
	}
	return audit.Merge(out)
}

// auditPeers are the control links to every server and gateway, by node.
func (b *Broker) auditPeers() map[string]*control.Peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	out := map[string]*control.Peer{}
	for name, st := range b.servers {
		if st.peer != nil {
			out[name] = st.peer
		}
	}
	for name, st := range b.gateways {
		if st.peer != nil {
			out[name] = st.peer
		}
	}
	return out
}
