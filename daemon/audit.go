package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"switchyard/audit"
	"switchyard/config"
	"switchyard/control"
)

// auditReader reads a node's own audit events back, filtered.
type auditReader func(control.AuditQuery) (control.AuditEvents, error)

// openAudit opens node's audit trail as [audit] says: a rotated file
// state_dir/audit-NODE.log (read back by the returned reader), stdout
// (for journald; not read back), or nothing. [audit] is read at start
// only.
func openAudit(cfg *config.Config, node string, env Env, log *slog.Logger) (*audit.Log, auditReader) {
	a := cfg.Audit
	switch a.SinkOrDefault() {
	case config.AuditOff:
		return nil, noteReader("audit is off ([audit] sink = \"off\")")
	case config.AuditStdout:
		l := audit.New(audit.Options{Node: node, Out: struct{ io.Writer }{env.stdout()}, Logger: log})
		return l, noteReader("audit events go to stdout ([audit] sink = \"stdout\"): read them from the journal")
	}
	path := cfg.Resolve(audit.FileName(node))
	r := &audit.Rotator{Path: path, MaxSize: a.MaxBytes(), Keep: a.KeepOrDefault()}
	l := audit.New(audit.Options{Node: node, Out: r, Logger: log})
	return l, func(q control.AuditQuery) (control.AuditEvents, error) {
		evs, err := audit.ReadFile(path, audit.Filter{User: q.User, Session: q.Session, Since: q.Since, Max: q.Max, Conns: q.Conns})
		out := auditReply(evs)
		if err != nil {
			out.Note = err.Error()
		}
		return out, nil
	}
}

// maxAuditReply bounds the events of one audit.read reply, in bytes, to
// fit a control frame (control.MaxFrame) with room to spare.
const maxAuditReply = control.MaxFrame * 3 / 4

// auditReply is the reply holding the latest of evs that fit in
// maxAuditReply, with a note of how many earlier ones were left out.
func auditReply(evs []audit.Event) control.AuditEvents {
	out := control.AuditEvents{Events: []json.RawMessage{}}
	size, first := 0, len(evs)
	raws := make([]json.RawMessage, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		raw, err := json.Marshal(evs[i])
		if err != nil {
			continue
		}
		if size+len(raw)+1 > maxAuditReply {
			break
		}
		raws[i], size, first = raw, size+len(raw)+1, i
	}
	for _, raw := range raws[first:] {
		if raw != nil {
			out.Events = append(out.Events, raw)
		}
	}
	if first > 0 {
		out.Note = fmt.Sprintf("%d earlier events left out (at most %d KiB a node); narrow with -since, -user or -session",
			first, maxAuditReply>>10)
	}
	return out
}

// noteReader answers every read with no events and note.
func noteReader(note string) auditReader {
	return func(control.AuditQuery) (control.AuditEvents, error) {
		return control.AuditEvents{Events: []json.RawMessage{}, Note: note}, nil
	}
}

// withAuditRead serves control.MethodAuditRead with read, and passes
// every other call to next (none served if nil).
func withAuditRead(read auditReader, next control.Handler) control.Handler {
	return func(ctx context.Context, method string, body json.RawMessage) (any, error) {
		if method == control.MethodAuditRead {
			var q control.AuditQuery
			if err := json.Unmarshal(body, &q); err != nil {
				return nil, fmt.Errorf("decode %s: %w", method, err)
			}
			return read(q)
		}
		if next == nil {
			return nil, control.NewError(control.CodeInternal, "this node does not serve "+method)
		}
		return next(ctx, method, body)
	}
}
