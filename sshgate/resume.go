package sshgate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"switchyard/control"
)

var (
	errNoSuchSession = &failure{Status: exitNoSession, Line: "no such session"}
	errNoDetached    = &failure{Status: exitNoSession, Line: "no detached session to resume"}
	errResumeNoPty   = &failure{Status: exitUsage, Line: "resume needs a terminal; try: ssh -t HOST resume"}
	errResumeUsage   = &failure{Status: exitUsage, Line: "usage: resume [SESSION-ID]"}
	errSessionsUsage = &failure{Status: exitUsage, Line: "sessions takes no arguments"}
)

// listSessions answers `ssh gw sessions`: a plain table of the user's
// sessions on stdout, exit 0.
func (s *Server) listSessions(ctx context.Context, ss *session, args []string) {
	if len(args) > 0 {
		ss.fail(errSessionsUsage)
		return
	}
	list, f := s.userSessions(ctx, ss)
	if f != nil {
		s.failUnlessGone(ctx, ss, f)
		return
	}
	table := sessionTable(list, time.Now())
	ss.client.Write([]byte(strings.ReplaceAll(table, "\n", ss.eol())))
	ss.exit(0)
}

// sessionTable formats sessions for people and scripts: one header line,
// then one line per session, columns separated by spaces. AGE is the time
// since the session started; IDLE the time since it was detached ("-"
// while attached).
func sessionTable(list []control.SessionInfo, now time.Time) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAPP\tSERVER\tSTATE\tAGE\tIDLE")
	for _, si := range list {
		state, idle := stateOf(si), "-"
		if state == control.StateDetached && !si.Detached.IsZero() {
			idle = ago(now.Sub(si.Detached))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", si.ID, si.App, si.Server, state, ago(now.Sub(si.Started)), idle)
	}
	tw.Flush()
	return b.String()
}

// stateOf is a session's state, attached when unset.
func stateOf(si control.SessionInfo) string {
	if si.State == "" {
		return control.StateAttached
	}
	return si.State
}

// ago formats a duration briefly: "42s", "5m", "2h05m", "3d04h".
func ago(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// resume answers `ssh -t gw resume [ID]`: re-attach the session named, or
// the user's most recently detached one, and relay it.
func (s *Server) resume(ctx context.Context, ss *session, args []string) {
	switch {
	case !ss.hasPty():
		ss.fail(errResumeNoPty)
		return
	case len(args) > 1:
		ss.fail(errResumeUsage)
		return
	}
	id := ""
	if len(args) == 1 {
		id = args[0]
	}
	s.resumeAndServe(ctx, ss, id)
}

// resumeAndServe re-attaches session id ("" for the latest detached one)
// and relays it.
func (s *Server) resumeAndServe(ctx context.Context, ss *session, id string) {
	r, f := s.reattach(ctx, ss, id)
	if f != nil {
		s.failUnlessGone(ctx, ss, f)
		return
	}
	s.serve(ctx, ss, r)
}

// reattach finds the session among the user's, as the broker knows them,
// and opens an attach channel to it on its server. The user is the
// authenticated one, never something the client typed; appd checks the
// owner again.
func (s *Server) reattach(ctx context.Context, ss *session, id string) (*running, *failure) {
	list, f := s.userSessions(ctx, ss)
	if f != nil {
		return nil, f
	}
	target, f := chooseSession(list, id)
	if f != nil {
		return nil, f
	}
	// Via is set when this gateway does not reach the server and another
	// relays for it.
	pl := control.Placement{Server: target.Server, Addr: target.Addr, Via: target.Via, Reason: "resume"}
	extra, err := json.Marshal(control.AttachRequest{ID: target.ID, User: ss.id.User, Pty: ss.ptySpec(), Gateway: s.relayedFor(pl)})
	if err != nil {
		return nil, internal(fmt.Errorf("encode attach request: %w", err))
	}
	if pl.Server == "" || pl.Addr == "" {
		return nil, internal(fmt.Errorf("resume: the broker gave no address for session %s: %+v", target.ID, target))
	}
	r, f := s.open(ctx, pl, control.ChannelAttach, extra, target.App)
	var u unreachable
	if f != nil && pl.Via == nil && errors.As(f.Err, &u) {
		// Without Via, the broker found that this gateway reaches the
		// server or that no gateway can relay there: either way, the
		// server is not reachable from here.
		f = &failure{Status: exitUnavailable, Err: f.Err,
			Line: fmt.Sprintf("server %s of this session is not reachable from this gateway (%s), try another gateway or later", pl.Server, s.Name)}
	}
	if f != nil {
		return nil, f
	}
	r.Resumed = &target
	return r, nil
}

// minIDPrefix is the shortest prefix of a session id resume accepts in
// place of the whole id (`broker status` shows 12 characters).
const minIDPrefix = 6

// fullID returns the id in list that id names: itself, or the one id
// that starts with it when it is at least minIDPrefix long. The list is
// the user's own sessions, so a prefix never reaches another's.
func fullID(list []control.SessionInfo, id string) string {
	match := ""
	for _, si := range list {
		switch {
		case si.ID == id:
			return id
		case len(id) >= minIDPrefix && strings.HasPrefix(si.ID, id):
			if match != "" {
				return id // not unique: no session by that name
			}
			match = si.ID
		}
	}
	if match == "" {
		return id
	}
	return match
}

// chooseSession returns the session id names in list (by its whole id or
// a unique prefix), or, for "", the most recently detached one. A session
// whose server the broker finds unreachable cannot be resumed: naming it
// fails with exitUnavailable.
func chooseSession(list []control.SessionInfo, id string) (control.SessionInfo, *failure) {
	if id != "" {
		id = fullID(list, id)
	}
	var best control.SessionInfo
	found := false
	for _, si := range list {
		switch {
		case id != "" && si.ID == id && stateOf(si) == control.StateUnreachable:
			return si, &failure{Status: exitUnavailable,
				Line: fmt.Sprintf("session %s is on server %s, which is unreachable; try again later", si.ID, si.Server)}
		case id != "" && si.ID == id:
			return si, nil
		case id == "" && stateOf(si) == control.StateDetached && (!found || si.Detached.After(best.Detached)):
			best, found = si, true
		}
	}
	switch {
	case found:
		return best, nil
	case id == "":
		return best, errNoDetached
	}
	return best, errNoSuchSession
}

// userSessions asks the broker for the authenticated user's sessions,
// bounded by PlaceTimeout.
func (s *Server) userSessions(ctx context.Context, ss *session) ([]control.SessionInfo, *failure) {
	ctx, cancel := context.WithTimeout(ctx, s.placeTimeout())
	defer cancel()
	list, err := s.Placer.Sessions(ctx, ss.id.User)
	if err != nil {
		return nil, placeFailure("", fmt.Errorf("list sessions: %w", err))
	}
	mine := list[:0:0]
	for _, si := range list {
		if si.User == ss.id.User { // the broker filters too; never show another user's
			mine = append(mine, si)
		}
	}
	return mine, nil
}

// menu gathers what the picker offers: the user's detached sessions and
// the apps the user may run.
func (s *Server) menu(ctx context.Context, ss *session) (Menu, *failure) {
	list, f := s.userSessions(ctx, ss)
	if f != nil {
		return Menu{}, f
	}
	var m Menu
	for _, si := range list {
		if stateOf(si) == control.StateDetached {
			m.Sessions = append(m.Sessions, si)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.placeTimeout())
	defer cancel()
	apps, err := s.Placer.Apps(ctx, ss.id.User)
	if err != nil {
		return Menu{}, placeFailure("", fmt.Errorf("list apps: %w", err))
	}
	m.Apps = apps
	return m, nil
}

// pick runs NoApp (the picker) on the client's terminal, then launches
// the app or resumes the session it chose, in this same session. The
// session's input pump feeds the picker, then the app: after the picker
// the session runs as one that named its app.
func (s *Server) pick(ctx context.Context, ss *session) {
	m, f := s.menu(ctx, ss)
	if f != nil {
		s.failUnlessGone(ctx, ss, f)
		return
	}
	in := ss.input()
	defer in.stop() // no app took the input (serve stops it first otherwise)
	lent := lendInput()
	in.set(lent)
	c, err := s.NoApp(ctx, ss.terminal(lent), m)
	ss.setOnResize(nil, nil)
	in.set(nil) // what the client types now waits for the app
	lent.end()  // takes the input back from the picker
	switch {
	case errors.Is(err, io.EOF) && ctx.Err() == nil:
		ss.exit(0) // the input ended (ssh -tt ... </dev/null): nothing chosen, nothing wrong
	case err != nil:
		s.failUnlessGone(ctx, ss, asFailure(c.App, err))
	case c.Resume != "":
		s.resumeAndServe(ctx, ss, c.Resume)
	case c.App != "":
		s.launchAndServe(ctx, ss, c.App, c.Args)
	case ctx.Err() == nil:
		ss.exit(0) // the user left the picker
	}
}
