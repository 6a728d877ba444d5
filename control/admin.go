package control

import (
	"encoding/json"
	"time"
)

// Admin control: calls the broker makes on the nodes' existing control
// links on behalf of an admin (broker kill, broker audit).
const (
	// MethodSessionKill asks appd to end one session (broker → appd,
	// call). Body KillRequest, no reply body; CodeNoSession when appd
	// runs no such session. The attached user, if any, reads one line
	// ("switchyard: session ended by an administrator: REASON") and the
	// session ends with ExitKilled; the app's whole process group is
	// hung up, then killed.
	MethodSessionKill = "session.kill"
	// MethodAuditRead asks a node for the events of its audit file that
	// pass a filter (broker → appd, broker → gateway, call). Body
	// AuditQuery, reply AuditEvents.
	MethodAuditRead = "audit.read"
)

// CodeLocked: an administrator has locked the user out; the Message is
// the line the user reads ("user locked by an administrator: REASON").
const CodeLocked = "locked"

// Exit statuses a session gets from an administrator's action (README's
// status table). Both are sysexits' EX_NOPERM.
const (
	ExitKilled = 77 // the session was ended by an administrator (broker kill, kick)
	ExitLocked = 77 // the user is locked by an administrator (broker lock)
)

// KillRequest is the body of MethodSessionKill.
type KillRequest struct {
	ID     string `json:"id"`     // session id
	Reason string `json:"reason"` // shown to the user; may be ""
	By     string `json:"by"`     // the admin, for the audit log
}

// AuditQuery is the body of MethodAuditRead; empty fields select all.
type AuditQuery struct {
	User    string    `json:"user,omitempty"`
	Session string    `json:"session,omitempty"` // a session id, or a prefix of at least 6 characters
	Since   time.Time `json:"since,omitzero"`
	Max     int       `json:"max,omitempty"` // the latest Max events; the node's default bound if 0
	// Conns adds, to a Session query, the events of these connections
	// (the "conn" field a gateway gives its logins, placements and
	// sessions).
	Conns []string `json:"conns,omitempty"`
}

// AuditEvents is the reply to MethodAuditRead: the node's matching audit
// lines, each one JSON object, oldest first. Note says why there are none
// when the node cannot read them back (its audit sink is stdout, or off).
type AuditEvents struct {
	Events []json.RawMessage `json:"events"`
	Note   string            `json:"note,omitempty"`
}
