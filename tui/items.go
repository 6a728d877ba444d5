package tui

import (
	"fmt"
	"strings"
	"time"
)

// Session is a detached session the user may resume.
type Session struct {
	ID       string    // session id, returned as Choice.SessionID
	App      string    // app the session runs
	Server   string    // app server it runs on
	Started  time.Time // when the app started; age = now - Started
	Detached time.Time // when the client went away; idle = now - Detached
}

// App is an app the user may run.
type App struct {
	Name        string // returned as Choice.App
	Description string // one line; truncated with "…" to fit
	Available   bool   // false: shown dimmed and not selectable
	Hint        string // availability, e.g. "3 servers, low load" or "unavailable"
}

// Items is what the picker offers: sessions are listed before apps, each in
// the order given.
type Items struct {
	Sessions []Session
	Apps     []App
}

// Choice is what the user picked: exactly one of App or SessionID set; both
// empty when the user left (q, Esc or Ctrl-C).
type Choice struct {
	App       string // app to start
	SessionID string // session to resume
}

// entry is one selectable line of the list: a session or an app.
type entry struct {
	sess *Session // set for a session
	app  *App     // set for an app
}

// choosable reports whether Enter on the entry ends the picker.
func (e entry) choosable() bool { return e.sess != nil || e.app.Available }

// name is what the user recognises the entry by.
func (e entry) name() string {
	if e.sess != nil {
		return e.sess.App
	}
	return e.app.Name
}

// matches reports whether the entry passes the lower-cased filter f:
// sessions match on app and server, apps on name and description.
func (e entry) matches(f string) bool {
	if f == "" {
		return true
	}
	var fields [2]string
	if e.sess != nil {
		fields = [2]string{e.sess.App, e.sess.Server}
	} else {
		fields = [2]string{e.app.Name, e.app.Description}
	}
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}

// filterItems returns the entries matching filter, sessions first, and how
// many of them are sessions.
func filterItems(items Items, filter string) (entries []entry, sessions int) {
	f := strings.ToLower(filter)
	for i := range items.Sessions {
		if e := (entry{sess: &items.Sessions[i]}); e.matches(f) {
			entries = append(entries, e)
		}
	}
	sessions = len(entries)
	for i := range items.Apps {
		if e := (entry{app: &items.Apps[i]}); e.matches(f) {
			entries = append(entries, e)
		}
	}
	return entries, sessions
}

// since formats now-t in at most 6 cells ("45s", "12m", "3h05m", "2d04h",
// "621d"), or "-" for a zero time.
func since(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d < day:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	case d < 10*day:
		return fmt.Sprintf("%dd%02dh", d/day, d%day/time.Hour)
	default:
		return fmt.Sprintf("%dd", d/day)
	}
}
