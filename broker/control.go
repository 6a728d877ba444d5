package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchyard/control"
)

// Admin control of sessions and users (the admin API, behind the same
// guard as /status and /drain; changes by POST only; every use audited
// with the caller's identity):
//
//	GET  /sessions?user=U&server=S           SessionsView
//	POST /kill/{id}?reason=TEXT              KillView
//	POST /kick/{user}?reason=TEXT            KillView
//	POST /lock/{user}?until=RFC3339&reason=T "ok"
//	POST /unlock/{user}                      "ok"
//	GET  /audit?user=U&session=ID&since=RFC3339&max=N&conns=C,C&local=1  AuditView
//	     (local=1: this broker's own events only)

// ErrNoSession is returned by Kill for an id the broker does not know.
var ErrNoSession = errors.New("no such session")

// errAmbiguous is returned by Kill for an id prefix several sessions share.
var errAmbiguous = errors.New("session id prefix is ambiguous")

// SessionsView is the answer to GET /sessions.
type SessionsView struct {
	Sessions []control.SessionInfo `json:"sessions"`
}

// KillView is the answer to /kill and /kick: the sessions ended, and
// those that could not be (with why).
type KillView struct {
	Killed []control.SessionInfo `json:"killed"`
	Failed []KillFailure         `json:"failed,omitempty"`
}

// KillFailure is a session a kill could not end.
type KillFailure struct {
	Session control.SessionInfo `json:"session"`
	Error   string              `json:"error"`
}

// controlRoutes adds the admin control endpoints to mux.
func (b *Broker) controlRoutes(mux *http.ServeMux, a AdminAccess) {
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		b.auditAdmin(r, a, "sessions", "", q.Get("user"), "server", q.Get("server"))
		writeJSON(w, SessionsView{Sessions: b.Sessions(q.Get("user"), q.Get("server"))})
	})
	mux.HandleFunc("POST /kill/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, reason := r.PathValue("id"), r.URL.Query().Get("reason")
		s, err := b.Kill(r.Context(), id, reason, a.caller(r))
		b.auditAdmin(r, a, "kill", cmpOr(s.ID, id), s.User, "reason", reason, "server", s.Server, "pid", s.PID,
			"outcome", errText(err))
		if err != nil {
			http.Error(w, err.Error(), killStatus(err))
			return
		}
		writeJSON(w, KillView{Killed: []control.SessionInfo{s}})
	})
	mux.HandleFunc("POST /kick/{user}", func(w http.ResponseWriter, r *http.Request) {
		user, reason := r.PathValue("user"), r.URL.Query().Get("reason")
		v := b.Kick(r.Context(), user, reason, a.caller(r))
		b.auditAdmin(r, a, "kick", "", user, "reason", reason, "killed", len(v.Killed), "failed", len(v.Failed))
		writeJSON(w, v)
	})
	lock := func(on bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			user, q := r.PathValue("user"), r.URL.Query()
			var until time.Time
			var err error
			if u := q.Get("until"); on && u != "" {
				if until, err = time.Parse(time.RFC3339, u); err != nil {
					http.Error(w, "until: not an RFC 3339 time: "+err.Error(), http.StatusBadRequest)
					return
				}
			}
			err = b.LockBy(r.Context(), user, on, a.caller(r), until, q.Get("reason"))
			event := map[bool]string{true: "lock", false: "unlock"}[on]
			b.auditAdmin(r, a, event, "", user, "until", until, "reason", q.Get("reason"), "outcome", errText(err))
			if err != nil {
				code := http.StatusServiceUnavailable
				if errors.Is(err, ErrUnknownUser) {
					code = http.StatusNotFound
				}
				http.Error(w, err.Error(), code)
				return
			}
			w.Write([]byte("ok\n"))
		}
	}
	mux.HandleFunc("POST /lock/{user}", lock(true))
	mux.HandleFunc("POST /unlock/{user}", lock(false))
	mux.HandleFunc("GET /audit", func(w http.ResponseWriter, r *http.Request) {
		q, err := auditQuery(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		local := r.URL.Query().Get("local") == "1"
		kv := []any{"local", local}
		if !q.Since.IsZero() { // left out, not year 1, when the query has none
			kv = append(kv, "since", q.Since)
		}
		b.auditAdmin(r, a, "audit", q.Session, q.User, kv...)
		if local {
			writeJSON(w, b.ownAudit(q))
			return
		}
		writeJSON(w, b.GatherAudit(r.Context(), q))
	})
}

// auditAdmin records an admin's use of the API: event "admin.NAME", the
// caller, and the fields; it is written out before the admin is answered.
func (b *Broker) auditAdmin(r *http.Request, a AdminAccess, name, session, user string, kv ...any) {
	b.Audit.Emit("admin."+name, session, user, append([]any{"by", a.caller(r)}, kv...)...)
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	b.Audit.Flush(ctx)
}

func errText(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func killStatus(err error) int {
	switch {
	case errors.Is(err, ErrNoSession):
		return http.StatusNotFound
	case errors.Is(err, errAmbiguous):
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Sessions lists the sessions the broker knows, of user and on server
// when not empty, oldest first.
func (b *Broker) Sessions(user, server string) []control.SessionInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	now := b.now()
	out := []control.SessionInfo{}
	for _, s := range b.sessions {
		if user != "" && s.info.User != user || server != "" && s.info.Server != server {
			continue
		}
		info := s.info
		if !b.healthy(b.servers[info.Server], now) {
			info.State = control.StateUnreachable
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(x, y control.SessionInfo) int {
		if c := x.Started.Compare(y.Started); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out
}

// findSession returns the session with id, or the one whose id starts
// with id (at least 6 characters).
func (b *Broker) findSession(id string) (control.SessionInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	if s := b.sessions[id]; s != nil {
		return s.info, nil
	}
	var found []control.SessionInfo
	if len(id) >= 6 {
		for sid, s := range b.sessions {
			if strings.HasPrefix(sid, id) {
				found = append(found, s.info)
			}
		}
	}
	switch len(found) {
	case 0:
		return control.SessionInfo{}, fmt.Errorf("kill %q: %w", short(id), ErrNoSession)
	case 1:
		return found[0], nil
	}
	return control.SessionInfo{}, fmt.Errorf("kill %q: %w (%d sessions)", id, errAmbiguous, len(found))
}

// Kill ends a session for admin by: its appd tells the attached user
// why (reason), hangs up the app's process group and ends the session
// with control.ExitKilled. id is a session id or a unique prefix of at
// least 6 characters.
func (b *Broker) Kill(ctx context.Context, id, reason, by string) (control.SessionInfo, error) {
	s, err := b.findSession(id)
	if err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(ctx, appdCallTimeout)
	defer cancel()
	err = b.appd(ctx, s.Server, control.MethodSessionKill, control.KillRequest{ID: s.ID, Reason: reason, By: by}, nil)
	if control.ErrorCode(err) == control.CodeNoSession {
		err = fmt.Errorf("kill %s on %s: %w (it has ended)", short(s.ID), s.Server, ErrNoSession)
	}
	return s, err
}

// Kick ends every session of user, as Kill does each. A session that
// ended meanwhile (its appd no longer runs it) is left out.
func (b *Broker) Kick(ctx context.Context, user, reason, by string) KillView {
	v := KillView{Killed: []control.SessionInfo{}}
	for _, s := range b.Sessions(user, "") {
		if user == "" {
			break
		}
		_, err := b.Kill(ctx, s.ID, reason, by)
		if errors.Is(err, ErrNoSession) {
			continue
		}
		if err != nil {
			v.Failed = append(v.Failed, KillFailure{Session: s, Error: err.Error()})
			continue
		}
		v.Killed = append(v.Killed, s)
	}
	return v
}

// auditQuery reads GET /audit's parameters.
func auditQuery(r *http.Request) (control.AuditQuery, error) {
	q := r.URL.Query()
	aq := control.AuditQuery{User: q.Get("user"), Session: q.Get("session")}
	if c := q.Get("conns"); c != "" {
		aq.Conns = strings.Split(c, ",")
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return aq, fmt.Errorf("since: not an RFC 3339 time: %w", err)
		}
		aq.Since = t
	}
	if m := q.Get("max"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			return aq, fmt.Errorf("max: not a count: %q", m)
		}
		aq.Max = n
	}
	return aq, nil
}
